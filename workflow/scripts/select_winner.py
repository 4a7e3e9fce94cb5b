"""Rule select_winner: the best test accuracy among the retrained top trials wins."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # the mnist_mlp package

from mnist_mlp.jobs import start_job
from mnist_mlp.winner import select_winner_stage

start_job(snakemake.log[0])
select_winner_stage(
    snakemake.input.metrics, snakemake.input.models, snakemake.input.ranking, snakemake.output
)
