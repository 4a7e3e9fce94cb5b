"""Rule build_ensemble: the retrained candidates as an ensemble, every candidate's accuracy with
its interval, and the winner against the runner-up."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # the mnist_mlp package

from mnist_mlp.jobs import start_job

# before the stage's imports (torch, skorch: seconds): the watch on Snakemake is armed first
start_job(snakemake.log[0], snakemake.output)

from mnist_mlp.ensemble import build_ensemble_stage

build_ensemble_stage(
    snakemake.input.data,
    snakemake.input.test,
    snakemake.input.models,
    snakemake.input.summary,
    snakemake.input.ranking,
    snakemake.output,
    snakemake.params.size,
)
