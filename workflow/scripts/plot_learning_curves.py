"""Rule plot_learning_curves: test accuracy and losses per epoch of every retrained trial."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # the mnist_mlp package

from mnist_mlp.figures import learning_curves_stage
from mnist_mlp.jobs import start_job

start_job(snakemake.log[0])
learning_curves_stage(snakemake.input.histories, snakemake.input.winner, snakemake.output[0])
