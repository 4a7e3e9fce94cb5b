"""Rule plot_receptive_fields: the winner's neurons as linear filters of the image."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # the mnist_mlp package

from mnist_mlp.jobs import start_job

# before the stage's imports (torch, skorch: seconds): the watch on Snakemake is armed first
start_job(snakemake.log[0], snakemake.output)

from mnist_mlp.figures import plot_receptive_fields_stage

plot_receptive_fields_stage(
    snakemake.input.model,
    snakemake.output,
    snakemake.params.n_neurons,
    snakemake.params.output_neurons,
)
