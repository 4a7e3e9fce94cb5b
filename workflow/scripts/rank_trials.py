"""Rule rank_trials: gather the CV results, rank them, plot the search."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # the mnist_mlp package

from mnist_mlp.jobs import start_job
from mnist_mlp.ranking import rank_stage

start_job(snakemake.log[0])
rank_stage(snakemake.input, snakemake.output)
