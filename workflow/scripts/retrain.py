"""Rule retrain: train one configuration on the whole training part for final.epochs,
monitoring the test part each epoch; save the model, its metrics and its learning curve."""

import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # the mnist_mlp package

from mnist_mlp import training
from mnist_mlp.data import load_mnist, load_part
from mnist_mlp.final import final_metrics
from mnist_mlp.io import read_json, write_json
from mnist_mlp.jobs import start_job
from mnist_mlp.model import save_model
from mnist_mlp.ranking import write_table

start_job(snakemake.log[0])
params = snakemake.params
device = training.configure_torch(snakemake.threads, params.device)
config = read_json(snakemake.input.config)
data = load_mnist(snakemake.input.data)  # read once, four parts taken from it
train = load_part(data, snakemake.input.train, device)
test = load_part(data, snakemake.input.test, device)
logging.info("retraining %s for %d epochs on %s", config, params.epochs, device)
settings = training.TrainingSettings(
    max_epochs=params.epochs,
    batch_size=params.batch_size,
    patience=None,
    seed=params.seed,
    device=device,
)
module, record, history = training.retrain_config(config, settings, train, test)
metrics = final_metrics(
    module,
    record,
    whole_dataset=load_part(data, None, device),
    official_test=load_part(data, None, device, official_test=True),
)
metrics.update(config_id=config["config_id"], threads=snakemake.threads, device=device)
save_model(snakemake.output.model, module, config, metrics)
write_json(snakemake.output.metrics, metrics)
write_table(history, snakemake.output.history)
logging.info("metrics: %s", metrics)
