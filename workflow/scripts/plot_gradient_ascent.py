"""Rule plot_gradient_ascent: images that maximise each of the winner's neurons."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # the mnist_mlp package

from mnist_mlp.jobs import start_job

# before the stage's imports (torch, skorch: seconds): the watch on Snakemake is armed first
start_job(snakemake.log[0], snakemake.output)

from mnist_mlp.figures import mean_training_image, plot_gradient_ascent_stage

plot_gradient_ascent_stage(
    snakemake.input.model,
    snakemake.output,
    snakemake.params.settings,
    mean_training_image(snakemake.input.data, snakemake.input.train),
)
