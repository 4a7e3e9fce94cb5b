"""Rule rank_trials: gather every trial's final result and rank them (with halving, every
rung's decisions in one table too)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # the mnist_mlp package

from mnist_mlp.jobs import start_job

# before the stage's imports (torch, skorch: seconds): the watch on Snakemake is armed first
start_job(snakemake.log[0], snakemake.output)

from mnist_mlp.ranking import rank_trials_stage

rank_trials_stage(snakemake.input.results, snakemake.output, snakemake.input.rungs)
