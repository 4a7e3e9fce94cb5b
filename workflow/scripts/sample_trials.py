"""Rule sample_trials: the table of every sampled trial (the same draws the Snakefile made)."""

import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # the mnist_mlp package

from mnist_mlp.jobs import start_job
from mnist_mlp.trials import write_trials_table

start_job(snakemake.log[0])
params = snakemake.params
rows = write_trials_table(snakemake.output[0], params.seed, params.n_trials, params.space)
logging.info("%d trials sampled", len(rows))
