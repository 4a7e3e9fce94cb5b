"""Rule promote_trials: one rung's decisions (successive halving): which trials go on."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # the mnist_mlp package

from mnist_mlp.jobs import start_job
from mnist_mlp.search import promote_stage

start_job(snakemake.log[0])
promote_stage(snakemake.input, snakemake.output[0], snakemake.params.eta, snakemake.params.last)
