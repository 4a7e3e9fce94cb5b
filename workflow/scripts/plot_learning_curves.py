"""Rule plot_learning_curves: test accuracy and losses per epoch of every retrained net."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # the mnist_mlp package

from mnist_mlp.figures import plot_learning_curves
from mnist_mlp.io import read_json
from mnist_mlp.jobs import start_job
from mnist_mlp.ranking import read_table

start_job(snakemake.log[0])
histories = {
    Path(path).parent.name: read_table(path).to_dict("records")
    for path in snakemake.input.histories
}
winner = read_json(snakemake.input.winner)["config_id"]
plot_learning_curves(histories, winner, snakemake.output[0])
