"""Rule report_tables: the winner, the ranking and the retrained networks as HTML tables."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # the mnist_mlp package

from mnist_mlp.jobs import start_job

# before the stage's imports (torch, skorch: seconds): the watch on Snakemake is armed first
start_job(snakemake.log[0], snakemake.output)

from mnist_mlp.report import report_tables_stage

report_tables_stage(
    snakemake.input.ranking,
    snakemake.input.summary,
    snakemake.input.winner,
    snakemake.output,
    snakemake.input.get("rungs"),
    snakemake.input.ensemble,
    snakemake.input.comparison,
)
