"""Rule plot_gradient_ascent: images that maximise each of the winner's neurons."""

import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent))  # the mnist_mlp package

from mnist_mlp import figures
from mnist_mlp.io import write_json
from mnist_mlp.jobs import start_job
from mnist_mlp.model import load_model

start_job(snakemake.log[0])
params = snakemake.params
module, checkpoint = load_model(snakemake.input.model)
linear = dict(zip(figures.LAYERS, module.linear_layers(), strict=True))
cid = checkpoint["config"]["config_id"]
stats = {}
for layer in figures.LAYERS:
    neurons = figures.neuron_indices(
        layer, params.n_neurons, params.output_neurons, linear[layer].out_features
    )
    images, trace = figures.gradient_ascent(
        module, layer, neurons, params.steps, params.step_size, params.start
    )
    weights = linear[layer].weight.detach().cpu().numpy()[neurons] if layer == "layer1" else None
    stats[layer] = {"neurons": neurons, **figures.ascent_stats(images, trace, weights)}
    reached = stats[layer]["activation_reached"]
    labels = [f"{n}: {a:.3g}" for n, a in zip(neurons, reached, strict=True)]
    panels = [(images, labels, f"{layer}: gradient ascent", "image")]
    if weights is not None:
        exact = figures.box_maximiser(weights)
        panels.append((exact, [f"{n}" for n in neurons], "layer1: exact box maximiser", "image"))
    figures.plot_neuron_grids(
        panels,
        snakemake.output[layer],
        f"{cid}: {params.steps} steps of x += {params.step_size:g}·grad, clamped to [0, 1]",
    )
    logging.info("%s: %s", layer, stats[layer])
write_json(snakemake.output.stats, stats)
