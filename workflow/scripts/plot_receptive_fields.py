"""Rule plot_receptive_fields: the winner's neurons as linear filters of the image."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # the mnist_mlp package

from mnist_mlp.figures import receptive_fields_stage
from mnist_mlp.jobs import start_job

start_job(snakemake.log[0])
receptive_fields_stage(
    snakemake.input.model,
    snakemake.output,
    snakemake.params.n_neurons,
    snakemake.params.output_neurons,
)
