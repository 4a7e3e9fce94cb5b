"""Rule export_models: the winner and the ensemble as torch.export programs (no package)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # the mnist_mlp package

from mnist_mlp.jobs import start_job

# before the stage's imports (torch, skorch: seconds): the watch on Snakemake is armed first
start_job(snakemake.log[0], snakemake.output)

from mnist_mlp.export import export_models_stage

export_models_stage(snakemake.input.winner, snakemake.input.ensemble, snakemake.output)
