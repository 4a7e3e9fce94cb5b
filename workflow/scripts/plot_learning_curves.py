"""Rule plot_learning_curves: test accuracy and losses per epoch of every retrained trial."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # the mnist_mlp package

from mnist_mlp.jobs import start_job

# before the stage's imports (torch, skorch: seconds): the watch on Snakemake is armed first
start_job(snakemake.log[0], snakemake.output)

from mnist_mlp.figures import plot_learning_curves_stage

plot_learning_curves_stage(snakemake.input.histories, snakemake.input.winner, snakemake.output[0])
