"""Rule plot_receptive_fields: the winner's neurons as linear filters of the image."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # the mnist_mlp package

from mnist_mlp import figures
from mnist_mlp.jobs import start_job
from mnist_mlp.model import load_model

start_job(snakemake.log[0])
module, checkpoint = load_model(snakemake.input.model)
fields = figures.receptive_fields(module)
titles = {
    "layer1": "hidden layer 1: rows of W1",
    "layer2": "hidden layer 2: rows of W2·W1",
    "output": "output neurons: rows of W3·W2·W1",
}
for layer in figures.LAYERS:
    neurons = figures.neuron_indices(
        layer, snakemake.params.n_neurons, snakemake.params.output_neurons, len(fields[layer])
    )
    figures.plot_neuron_grids(
        [(fields[layer][neurons], [f"{n}" for n in neurons], titles[layer], "weights")],
        snakemake.output[layer],
        f"{checkpoint['config']['config_id']}: red positive, blue negative, own scale per image",
    )
