"""Rule export_study: the search as an Optuna study (results/search/study.db), built from the
trials' results."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # the mnist_mlp package

from mnist_mlp.jobs import start_job

# before the stage's imports (torch, skorch: seconds): the watch on Snakemake is armed first
start_job(snakemake.log[0], snakemake.output)

from mnist_mlp.study import export_study_stage

rungs = snakemake.input.get("rungs")
export_study_stage(
    snakemake.input.results, rungs or None, snakemake.params.space, snakemake.output[0]
)
