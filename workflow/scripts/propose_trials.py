"""Rule propose_trials: one batch of trials proposed by TPE from every earlier trial's result."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # the mnist_mlp package

from mnist_mlp.jobs import start_job

# before the stage's imports (torch, skorch: seconds): the watch on Snakemake is armed first
start_job(snakemake.log[0], snakemake.output)

from mnist_mlp.tpe import propose_trials_stage

params = snakemake.params
propose_trials_stage(
    snakemake.input.results,
    snakemake.output[0],
    params.seed,
    params.batch,
    params.first,
    params.size,
    params.space,
)
