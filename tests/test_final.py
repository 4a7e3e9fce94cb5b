"""The final stage: retraining, the winner, the neuron figures and the report."""

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import default_config, planned_jobs, run_snakemake, variant

from mnist_mlp import figures
from mnist_mlp.data import load_part
from mnist_mlp.final import select_winner
from mnist_mlp.io import read_json
from mnist_mlp.model import MLP, load_model
from mnist_mlp.plotting import FIGURE_DPI
from mnist_mlp.training import evaluate

RETRAINED = ["c0000", "c0001", "ref_report_winner"]  # the tiny run: top 2 + the reference


def _candidates(rows):
    columns = ["config_id", "reference", "status", "test_accuracy", "cv_loss"]
    return pd.DataFrame(rows, columns=columns)


def test_the_best_test_accuracy_wins_and_ties_go_to_the_lower_cv_loss():
    table = select_winner(
        _candidates(
            [
                ("c0001", False, "ok", 0.97, 0.10),
                ("c0002", False, "ok", 0.98, 0.12),
                ("c0003", False, "ok", 0.98, 0.09),
                ("c0004", False, "ok", 0.96, 0.05),
            ]
        )
    )
    assert table.loc[table["winner"], "config_id"].tolist() == ["c0003"]
    assert table["config_id"].tolist() == ["c0003", "c0002", "c0001", "c0004"]


def test_references_and_diverged_fits_never_win():
    table = select_winner(
        _candidates(
            [
                ("ref_report_winner", True, "ok", 0.999, np.nan),
                ("c0005", False, "diverged", np.nan, np.nan),
                ("c0006", False, "ok", 0.90, 0.30),
            ]
        )
    )
    assert table.loc[table["winner"], "config_id"].tolist() == ["c0006"]
    with pytest.raises(ValueError, match="no retrained configuration can win"):
        select_winner(_candidates([("ref_a", True, "ok", 0.99, np.nan)]))


def test_receptive_fields_are_the_products_of_the_trained_weights(tiny_run):
    module, _ = load_model(tiny_run[0] / "results/winner/winning_net.dat")
    state = {key: value.double().numpy() for key, value in module.state_dict().items()}
    w1 = state["layers.hidden1.weight"]
    w2 = state["layers.hidden2.weight"]
    w3 = state["layers.output.weight"]
    fields = figures.receptive_fields(module)
    np.testing.assert_allclose(fields["layer1"], w1)
    np.testing.assert_allclose(fields["layer2"], w2 @ w1, rtol=1e-10)
    np.testing.assert_allclose(fields["output"], w3 @ (w2 @ w1), rtol=1e-10, atol=1e-14)
    assert fields["output"].shape == (10, 784)


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


def test_deeper_gradient_ascent_raises_the_activation_within_the_box(tiny_run):
    module, _ = load_model(tiny_run[0] / "results/winner/winning_net.dat")
    for layer in ("layer2", "output"):
        images, trace = figures.gradient_ascent(module, layer, [0, 1, 2], 200, 10.0, 0.5)
        assert images.min() >= 0 and images.max() <= 1
        reached = figures.activation(module, layer, torch.from_numpy(images))[range(3), [0, 1, 2]]
        np.testing.assert_allclose(reached.detach().numpy(), trace.max(axis=0), rtol=1e-5)
        stats = figures.ascent_stats(images, trace)
        np.testing.assert_allclose(stats["activation_reached"], reached.detach().numpy(), rtol=1e-5)
        assert (trace.max(axis=0) > trace[0]).all()


def test_the_saved_winner_reproduces_its_recorded_accuracies(tiny_run):
    workdir = tiny_run[0]
    winner = read_json(workdir / "results/winner/winner.json")
    module, checkpoint = load_model(workdir / "results/winner/winning_net.dat")
    assert checkpoint["config"]["config_id"] == winner["config_id"]
    metrics = read_json(workdir / f"results/final/{winner['config_id']}/metrics.json")
    torch.set_num_threads(metrics["threads"])  # same summation order as the job
    data = workdir / "results/data/mnist.npz"
    split = workdir / "results/data/split"
    parts = {
        "test_accuracy": load_part(data, split / "test_indices.npy"),
        "whole_dataset_accuracy": load_part(data),
        "official_test_accuracy": load_part(data, official_test=True),
    }
    for key, (X, y) in parts.items():
        assert evaluate(module, X, y)[1] == winner[key], key


def test_tiny_run_produces_every_final_artifact(tiny_run):
    workdir = tiny_run[0]
    summary = pd.read_csv(workdir / "results/final/summary.tsv", sep="\t")
    assert sorted(summary["config_id"]) == RETRAINED
    assert summary["winner"].sum() == 1
    assert not summary.loc[summary["reference"], "winner"].any()
    for cid in RETRAINED:
        history = pd.read_csv(workdir / f"results/final/{cid}/history.tsv", sep="\t")
        assert history["epoch"].tolist() == [1, 2]
        assert history[["train_loss", "test_loss", "test_accuracy"]].notna().all().all()
        metrics = read_json(workdir / f"results/final/{cid}/metrics.json")
        assert metrics["test_accuracy"] == pytest.approx(history["test_accuracy"].iloc[-1])
        for key in ("test_accuracy", "official_test_accuracy", "whole_dataset_accuracy"):
            assert 0.5 < metrics[key] <= 1.0  # two epochs of real training on real images
    winner = read_json(workdir / "results/winner/winner.json")
    for key in ("config_id", "params", "test_accuracy", "official_test_accuracy"):
        assert key in winner
    assert winner["params"]["Nh1"] == summary.loc[summary["winner"], "Nh1"].item()


@pytest.mark.parametrize(
    ("name", "panels", "rows"),
    [
        ("receptive_fields_layer1", 1, 5),
        ("receptive_fields_layer2", 1, 5),
        ("receptive_fields_output", 1, 2),
        ("gradient_ascent_layer1", 2, 5),
        ("gradient_ascent_layer2", 1, 5),
        ("gradient_ascent_output", 1, 2),
    ],
)
def test_neuron_figures_have_the_right_size_and_are_not_blank(tiny_run, name, panels, rows):
    import matplotlib.image

    image = matplotlib.image.imread(tiny_run[0] / f"results/figures/{name}.png")
    height, width = image.shape[:2]
    assert width == round(FIGURE_DPI * 5.0 * panels)
    assert height == round(FIGURE_DPI * (1.05 * rows + 0.9))
    assert image[..., :3].std() > 0.1


def test_the_html_report_is_built(tiny_run):
    workdir, configfile = tiny_run
    run_snakemake(workdir, configfile, "--report", "results/report.html")
    html = (workdir / "results/report.html").read_text(errors="replace")
    assert len(html) > 100_000
    for name in ("receptive_fields_layer1.png", "learning_curves.png", "winner.json"):
        assert name in html


def test_a_new_top_k_member_is_the_only_retrain(tiny_run, tmp_path):
    jobs = planned_jobs(*variant(tiny_run, tmp_path, {"final": {"top_k": 3}}))
    assert jobs["retrain"] == 1
    assert not {"sample_config", "cross_validate", "rank_configs"} & set(jobs)


def test_changing_the_epochs_retrains_all_but_searches_nothing(tiny_run, tmp_path):
    jobs = planned_jobs(*variant(tiny_run, tmp_path, {"final": {"epochs": 3}}))
    assert jobs["retrain"] == 3
    assert not {"sample_config", "cross_validate", "rank_configs"} & set(jobs)


def test_changing_a_figure_setting_redraws_only_that_figure(tiny_run, tmp_path):
    jobs = planned_jobs(*variant(tiny_run, tmp_path, {"figures": {"ascent_steps": 50}}))
    assert jobs == {"plot_gradient_ascent": 1, "all": 1}
