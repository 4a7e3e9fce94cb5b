"""Rule rank_trials: gather every trial's final result and rank them (with halving, every
rung's decisions in one table too)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # the mnist_mlp package

from mnist_mlp.jobs import start_job
from mnist_mlp.ranking import rank_stage

start_job(snakemake.log[0])
rank_stage(snakemake.input.results, snakemake.output, snakemake.input.rungs)
