"""Rule export_tracking: every fit's history, from the tracked files, as MLflow or TensorBoard
open it."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # the mnist_mlp package

from mnist_mlp.jobs import start_job

# before the stage's imports (torch, skorch: seconds): the watch on Snakemake is armed first
start_job(snakemake.log[0], snakemake.output)

from mnist_mlp.tracking import export_tracking_stage

export_tracking_stage(
    snakemake.input.results,
    snakemake.input.ranking,
    sorted({str(Path(path).parent) for path in snakemake.input.retrained}),
    snakemake.params.backend,
    snakemake.output[0],
)
