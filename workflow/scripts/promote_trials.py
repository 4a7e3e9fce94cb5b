"""Rule promote_trials: one rung's decisions (successive halving): which trials go on."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # the mnist_mlp package

from mnist_mlp.jobs import start_job

# before the stage's imports (torch, skorch: seconds): the watch on Snakemake is armed first
start_job(snakemake.log[0], snakemake.output)

from mnist_mlp.search import promote_trials_stage

promote_trials_stage(
    snakemake.input.results, snakemake.output[0], snakemake.params.eta, snakemake.params.last
)
