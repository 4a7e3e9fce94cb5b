"""Rule plot_importance: which hyper-parameters mattered (fANOVA) and every trial across its
hyper-parameters (parallel coordinates)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # the mnist_mlp package

from mnist_mlp.jobs import start_job

# before the stage's imports (torch, skorch: seconds): the watch on Snakemake is armed first
start_job(snakemake.log[0], snakemake.output)

from mnist_mlp.study import plot_importance_stage

plot_importance_stage(
    snakemake.input.study,
    snakemake.input.ranking,
    snakemake.params.space,
    snakemake.params.top_k,
    snakemake.output,
)
