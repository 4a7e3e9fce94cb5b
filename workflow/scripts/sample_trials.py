"""Rule sample_trials: the table of every trial (the random sampler's draws, the same the
Snakefile made, and with TPE the batches it proposed)."""

import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # the mnist_mlp package

from mnist_mlp.jobs import start_job

# before the stage's imports (torch, skorch: seconds): the watch on Snakemake is armed first
start_job(snakemake.log[0], snakemake.output)

from mnist_mlp.io import read_json
from mnist_mlp.trials import sample_trials, write_trials_table

params = snakemake.params
trials = sample_trials(params.seed, params.n_trials, params.space)
for batch in snakemake.input:  # TPE's proposals (none with the random sampler)
    trials.update(read_json(batch))
trials = {tid: trials[tid] for tid in sorted(trials)[: params.get("total", len(trials))]}
rows = write_trials_table(snakemake.output[0], trials)
logging.info("%d trials", len(rows))
