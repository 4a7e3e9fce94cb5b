"""Rule train_rung: one trial's folds trained up to a rung's budget (successive halving), going
on from the previous rung's state."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # the mnist_mlp package

from mnist_mlp.jobs import start_job

# before the stage's imports (torch, skorch: seconds): the watch on Snakemake is armed first
start_job(snakemake.log[0], snakemake.output)

from mnist_mlp.search import train_rung_stage
from mnist_mlp.trials import trial_of

train_rung_stage(
    snakemake.input.data,
    snakemake.input.train,
    snakemake.output,
    trial_of(snakemake.params.trial, snakemake.input.get("proposal")),
    snakemake.params.settings,
    snakemake.params.rung,
    snakemake.params.budget,
    snakemake.threads,
    previous=snakemake.input.get("previous"),
)
