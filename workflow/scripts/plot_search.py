"""Rule plot_search: every trial's CV loss against each hyper-parameter, the winner marked."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # the mnist_mlp package

from mnist_mlp.jobs import start_job

# before the stage's imports (torch, skorch: seconds): the watch on Snakemake is armed first
start_job(snakemake.log[0], snakemake.output)

from mnist_mlp.figures import plot_search_stage

plot_search_stage(
    snakemake.input.ranking, snakemake.input.summary, snakemake.output[0], snakemake.params.title
)
