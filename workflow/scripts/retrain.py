"""Rule retrain: train one trial on the whole training part for final.epochs, monitoring the
test part each epoch; save the model, its metrics and its learning curve."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # the mnist_mlp package

from mnist_mlp.final import retrain_stage
from mnist_mlp.jobs import start_job

start_job(snakemake.log[0])
retrain_stage(
    snakemake.input.data,
    snakemake.input.train,
    snakemake.input.test,
    snakemake.output,
    snakemake.params.trial,
    snakemake.params.settings,
    snakemake.threads,
    # not a param: tracking changes no result, so switching it on reruns nothing
    tracking=snakemake.config["tracking"],
)
