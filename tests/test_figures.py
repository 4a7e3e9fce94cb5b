"""What the neuron figures compute (mnist_mlp.figures, fast tier)."""

import numpy as np
import torch
from conftest import default_config

from mnist_mlp import figures
from mnist_mlp.model import MLP


def test_receptive_fields_are_the_products_of_the_weights():
    torch.manual_seed(0)
    module = MLP(40, 30)
    w1, w2, w3 = (layer.weight.detach().double().numpy() for layer in module.linear_layers())
    fields = figures.receptive_fields(module)
    np.testing.assert_allclose(fields["layer1"], w1)
    np.testing.assert_allclose(fields["layer2"], w2 @ w1, rtol=1e-10)
    np.testing.assert_allclose(fields["output"], w3 @ (w2 @ w1), rtol=1e-10, atol=1e-14)
    assert fields["output"].shape == (10, 784)


def test_the_activation_of_a_layer_is_its_linear_output():
    torch.manual_seed(0)
    module = MLP(40, 30).eval()
    x = torch.rand(5, 784)
    hidden1, hidden2, output = module.linear_layers()
    first = hidden1(x)
    second = hidden2(torch.nn.functional.leaky_relu(first))
    assert torch.allclose(figures.activation(module, "layer1", x), first)
    assert torch.allclose(figures.activation(module, "layer2", x), second)
    assert torch.allclose(figures.activation(module, "output", x), module(x))


def test_gradient_ascent_reaches_the_box_maximiser_of_a_layer1_neuron():
    """With the shipped settings. On a freshly initialised network every weight matters; a
    trained one has ~0 weights on pixels that are black in all images (undetermined there)."""
    settings = default_config()["figures"]
    torch.manual_seed(0)
    module = MLP(120, 60, dropout=0.5)
    neurons = [0, 7, 119]
    images, trace = figures.gradient_ascent(
        module,
        "layer1",
        neurons,
        settings["ascent_steps"],
        settings["ascent_step_size"],
        settings["ascent_start"],
    )
    exact = figures.box_maximiser(figures.receptive_fields(module)["layer1"][neurons])
    assert ((images == exact).mean(axis=1) >= 0.99).all()
    assert (np.diff(trace, axis=0) >= 0).all()  # the activation never decreases
    assert (trace[-1] > trace[0]).all()
    assert images.min() >= 0 and images.max() <= 1
    best = module.layers.hidden1(torch.from_numpy(exact).float())[range(3), neurons]
    np.testing.assert_allclose(trace[-1], best.detach().numpy(), rtol=1e-4)
    stats = figures.ascent_stats(images, trace, figures.receptive_fields(module)["layer1"][neurons])
    assert stats["largest_decrease"] == 0.0
    assert stats["pixels_equal_to_box_maximiser"] >= 0.99
    assert stats["activation_reached"] == trace[-1].tolist()


def test_the_best_so_far_figure_draws_each_searchs_running_minimum(tmp_path):
    import pandas as pd

    random = pd.DataFrame({"trial": ["t0000", "t0001", "t0002"], "mean_loss": [0.5, 0.7, 0.2]})
    tpe = pd.DataFrame({"trial": ["t0001", "t0000", "t0002"], "mean_loss": [0.3, 0.9, np.nan]})
    fig = figures.plot_best_so_far({"random": random, "tpe": tpe}, tmp_path / "best.png")
    lines = {line.get_label(): line.get_ydata().tolist() for line in fig.axes[0].get_lines()}
    assert lines == {"random": [0.5, 0.5, 0.2], "tpe": [0.9, 0.3, 0.3]}
