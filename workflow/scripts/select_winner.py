"""Rule select_winner: the best test accuracy among the retrained top trials wins."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # the mnist_mlp package

from mnist_mlp.jobs import start_job

# before the stage's imports (torch, skorch: seconds): the watch on Snakemake is armed first
start_job(snakemake.log[0], snakemake.output)

from mnist_mlp.winner import select_winner_stage

select_winner_stage(
    snakemake.input.metrics, snakemake.input.models, snakemake.input.ranking, snakemake.output
)
