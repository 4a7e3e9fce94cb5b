"""Rule cross_validate: k-fold CV of one sampled configuration on the training part."""

import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # the mnist_mlp package

from mnist_mlp import training
from mnist_mlp.data import load_part
from mnist_mlp.io import read_json, write_json
from mnist_mlp.jobs import start_job

start_job(snakemake.log[0])
params = snakemake.params
device = training.configure_torch(snakemake.threads, params.device)
config = read_json(snakemake.input.config)
X, y = load_part(snakemake.input.data, snakemake.input.train, device)  # once for all folds
logging.info("config %s on %d images, %d threads, %s", config, len(y), snakemake.threads, device)
settings = training.TrainingSettings(
    max_epochs=params.max_epochs,
    batch_size=params.batch_size,
    patience=params.patience,
    seed=params.seed,
    device=device,
)
result = training.cross_validate_config(config, settings, X, y, folds=params.folds)
result.update(threads=snakemake.threads, device=device, torch_version=training.torch.__version__)
write_json(snakemake.output[0], result)
logging.info("mean held-out loss %s, status %s", result["mean_loss"], result["status"])
