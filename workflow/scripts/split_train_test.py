"""Rule split_train_test: seeded, stratified split of the 60,000 training images."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # the mnist_mlp package

from mnist_mlp.jobs import start_job

# before the stage's imports (torch, skorch: seconds): the watch on Snakemake is armed first
start_job(snakemake.log[0], snakemake.output)

from mnist_mlp.data import split_train_test_stage

split_train_test_stage(
    snakemake.input[0],
    snakemake.output.train,
    snakemake.output.test,
    snakemake.params.test_fraction,
    snakemake.params.seed,
)
