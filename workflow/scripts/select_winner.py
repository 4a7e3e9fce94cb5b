"""Rule select_winner: the best test accuracy among the retrained top configurations wins."""

import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # the mnist_mlp package

from mnist_mlp.final import candidates_table, select_winner, winner_record
from mnist_mlp.io import copy_file, read_json, write_json
from mnist_mlp.jobs import start_job
from mnist_mlp.ranking import read_table, write_table

start_job(snakemake.log[0])
metrics = {record["config_id"]: record for record in map(read_json, snakemake.input.metrics)}
configs = {record["config_id"]: record for record in map(read_json, snakemake.input.configs)}
table = select_winner(candidates_table(metrics, configs, read_table(snakemake.input.ranking)))
write_table(table, snakemake.output.summary)
winner = winner_record(table, configs, metrics)
write_json(snakemake.output.winner, winner)
models = {Path(path).parent.name: path for path in snakemake.input.models}
copy_file(models[winner["config_id"]], snakemake.output.model)
logging.info("winner: %s", winner)
