"""Every stage function, in pipeline order, in-process on a synthetic MNIST-shaped dataset
(fast tier): what each rule's job does, without Snakemake and without the real data."""

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import REPO, SYNTHETIC_TEST, SYNTHETIC_TRAIN, Paths

from mnist_mlp import (
    data,
    ensemble,
    export,
    figures,
    final,
    ranking,
    report,
    search,
    trials,
    winner,
)
from mnist_mlp.io import read_json
from mnist_mlp.model import load_model
from mnist_mlp.plotting import FIGURE_DPI

SEARCH = {"seed": 0, "device": "cpu", "folds": 2, "patience": 3, "max_epochs": 4, "batch_size": 64}
FINAL = {"seed": 0, "device": "cpu", "batch_size": 64, "max_epochs": 3}
SPACE = trials.sampled_space(
    {
        "Nh1": {"int": [21, 80]},
        "Nh2": {"int": [20, "Nh1"]},
        "optimizer": {"choice": {"Adam": 0.7, "RMSprop": 0.3}},
        "dropout": {"uniform": [0.0, 0.3]},
        "lr": {"loguniform": [1e-3, 1e-2]},
        "L2": {"loguniform": [1e-6, 1e-4]},
        "batch_size": 64,
    }
)
N_TRIALS, TOP_K = 4, 2
REFERENCE = trials.reference_trial(
    "small", {"Nh1": 30, "Nh2": 20, "dropout": 0.1, "optimizer": "Adam", "lr": 1e-3, "L2": 0}
)
FIGURES = {"n_neurons": 6, "output_neurons": 10, "steps": 30, "step_size": 5.0, "start": 0.5}


@pytest.fixture(scope="module")
def pipeline(synthetic_npz, tmp_path_factory):
    """Run every stage once, as the rules chain them; returns the folder of the results."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("pipeline")
    split = Paths(train=root / "split/train.npy", test=root / "split/test.npy")
    (root / "split").mkdir()
    data.split_train_test_stage(synthetic_npz, split.train, split.test, 0.2, seed=0)
    sampled = trials.sample_trials(0, N_TRIALS, SPACE)
    trials.write_trials_table(root / "trials.tsv", sampled)
    for tid, trial in sampled.items():
        search.cross_validate_stage(
            synthetic_npz,
            split.train,
            Paths(cv=root / f"cv/{tid}.json", history=root / f"cv/{tid}.history.tsv"),
            trial,
            SEARCH,
            threads=1,
        )
    ranked = Paths(
        ranking=root / "ranking.tsv",
        sorted_scores=root / "sorted_scores.dat",
        sorted_params=root / "sorted_params.dat",
    )
    table = ranking.rank_trials_stage(sorted((root / "cv").glob("t*.json")), ranked)
    retrained = table.loc[table["status"] == "ok", "trial"].head(TOP_K).tolist()
    for tid in retrained + [REFERENCE["trial"]]:
        trial = sampled.get(tid, REFERENCE)
        folder = root / "final" / tid
        final.retrain_stage(
            synthetic_npz,
            split.train,
            split.test,
            Paths(
                model=folder / "model.pt",
                metrics=folder / "metrics.json",
                history=folder / "history.tsv",
            ),
            trial,
            FINAL,
            threads=1,
        )
    folders = sorted((root / "final").iterdir())
    chosen = Paths(
        summary=root / "summary.tsv", winner=root / "winner.json", model=root / "winning_net.dat"
    )
    winner.select_winner_stage(
        [f / "metrics.json" for f in folders],
        [f / "model.pt" for f in folders],
        ranked.ranking,
        chosen,
    )
    ensemble.build_ensemble_stage(
        synthetic_npz,
        split.test,
        [f / "model.pt" for f in folders],
        chosen.summary,
        ranked.ranking,
        Paths(
            ensemble=root / "ensemble.pt",
            summary=root / "ensemble.json",
            comparison=root / "comparison.json",
        ),
        size=0,
    )
    export.export_models_stage(
        chosen.model,
        root / "ensemble.pt",
        Paths(winner=root / "winner.pt2", ensemble=root / "ensemble.pt2"),
    )
    layers = figures.LAYERS
    figures.plot_receptive_fields_stage(
        chosen.model, Paths({layer: root / f"fields_{layer}.png" for layer in layers}), 6, 10
    )
    figures.plot_gradient_ascent_stage(
        chosen.model,
        Paths({layer: root / f"ascent_{layer}.png" for layer in layers}, stats=root / "a.json"),
        FIGURES,
        figures.mean_training_image(synthetic_npz, split.train),
    )
    figures.plot_learning_curves_stage(
        [f / "history.tsv" for f in folders], chosen.winner, root / "curves.png"
    )
    figures.plot_search_stage(ranked.ranking, chosen.summary, root / "search.png")
    report.report_tables_stage(
        ranked.ranking,
        chosen.summary,
        chosen.winner,
        Paths(
            winner=root / "report/winner.html",
            ranking=root / "report/ranking.html",
            retrained=root / "report/retrained.html",
        ),
    )
    return root


def test_the_split_is_disjoint_stratified_and_complete(pipeline, synthetic_npz):
    train, test = np.load(pipeline / "split/train.npy"), np.load(pipeline / "split/test.npy")
    assert len(train) + len(test) == SYNTHETIC_TRAIN and not set(train) & set(test)
    assert len(test) == SYNTHETIC_TRAIN // 5
    labels = data.load_mnist(synthetic_npz)["train_labels"]
    assert np.bincount(labels[test]).tolist() == [len(test) // 10] * 10


def test_the_trials_table_lists_the_sampled_trials(pipeline):
    table = pd.read_csv(pipeline / "trials.tsv", sep="\t")
    assert table["trial"].tolist() == trials.trial_ids(N_TRIALS)
    first = trials.sample_trial(0, 0, SPACE)
    assert table.loc[0, "Nh1"] == first["Nh1"]
    assert table.loc[0, "lr"] == pytest.approx(first["lr"], rel=1e-7)


def test_cross_validation_records_every_fold_and_epoch(pipeline):
    for tid in trials.trial_ids(N_TRIALS):
        result = read_json(pipeline / f"cv/{tid}.json")
        history = pd.read_csv(pipeline / f"cv/{tid}.history.tsv", sep="\t")
        assert result["status"] == "ok" and result["threads"] == 1
        assert [fold["fold"] for fold in result["folds"]] == [1, 2]
        for fold in result["folds"]:
            rows = history[history["fold"] == fold["fold"]]
            assert rows["epoch"].tolist() == list(range(1, fold["epochs"] + 1))
            assert fold["best_epoch"] == rows.loc[rows["valid_loss"].idxmin(), "epoch"]
            # the synthetic classes overlap: a few epochs give 60-95 %, not 100 %
            assert 0 < fold["loss"] < math.log(10) and 0.4 < fold["accuracy"] < 0.95
        losses = [fold["loss"] for fold in result["folds"]]
        assert result["mean_loss"] == pytest.approx(np.mean(losses))


def test_the_ranking_is_sorted_and_matches_the_cv_results(pipeline):
    table = pd.read_csv(pipeline / "ranking.tsv", sep="\t")
    assert table["rank"].tolist() == list(range(1, N_TRIALS + 1))
    assert table["mean_loss"].is_monotonic_increasing
    for row in table.itertuples():
        cv = read_json(pipeline / f"cv/{row.trial}.json")
        assert row.mean_loss == pytest.approx(cv["mean_loss"], rel=1e-7)
        assert row.Nh1 == cv["params"]["Nh1"] and row.optimizer == cv["params"]["optimizer"]
    scores = np.loadtxt(pipeline / "sorted_scores.dat")
    assert scores == pytest.approx(table["mean_loss"].to_numpy(), rel=1e-7)
    lines = (pipeline / "sorted_params.dat").read_text().splitlines()
    assert [json.loads(line)["trial"] for line in lines] == table["trial"].tolist()


def test_retraining_scores_three_parts_and_the_model_reproduces_them(pipeline, synthetic_npz):
    for folder in (pipeline / "final").iterdir():
        metrics = read_json(folder / "metrics.json")
        history = pd.read_csv(folder / "history.tsv", sep="\t")
        assert history["epoch"].tolist() == [1, 2, 3]
        assert metrics["test_accuracy"] == pytest.approx(history["test_accuracy"].iloc[-1])
        assert metrics["params"]["trial"] == folder.name == metrics["trial"]
        module, checkpoint = load_model(folder / "model.pt")
        assert checkpoint["trial"]["trial"] == folder.name
        X, y = data.load_part(synthetic_npz, None, official_test=True)
        assert len(y) == SYNTHETIC_TEST
        from mnist_mlp.training import evaluate

        assert evaluate(module, X, y)[1] == metrics["official_test_accuracy"]


def test_the_best_test_accuracy_wins_and_references_never_do(pipeline):
    summary = pd.read_csv(pipeline / "summary.tsv", sep="\t")
    assert len(summary) == TOP_K + 1 and summary["winner"].sum() == 1
    candidates = summary[~summary["reference"]]
    # the candidates differ, so the rule is exercised (no tie at 100 %)
    assert candidates["test_accuracy"].nunique() == len(candidates)
    assert 0.6 < candidates["test_accuracy"].max() < 0.95
    assert not summary.loc[summary["reference"], "winner"].any()
    best = summary[~summary["reference"]].sort_values("test_accuracy", ascending=False)
    chosen = read_json(pipeline / "winner.json")
    assert chosen["trial"] == best["trial"].iloc[0]
    assert chosen["test_accuracy"] == pytest.approx(best["test_accuracy"].iloc[0])
    module, checkpoint = load_model(pipeline / "winning_net.dat")
    assert checkpoint["trial"]["trial"] == chosen["trial"]


@pytest.mark.parametrize(
    ("name", "panels", "rows"),
    [
        ("fields_layer1", 1, 2),
        ("fields_output", 1, 2),
        ("ascent_layer1", 3, 2),  # the lab's, the exact box maximiser, the regularised
        ("ascent_layer2", 2, 2),
    ],
)
def test_neuron_figures_have_the_right_size_and_are_not_blank(pipeline, name, panels, rows):
    import matplotlib.image

    image = matplotlib.image.imread(pipeline / f"{name}.png")
    height, width = image.shape[:2]
    assert width == round(FIGURE_DPI * 5.0 * panels)
    assert height == round(FIGURE_DPI * (1.05 * rows + 1.25 + 0.85))
    assert image[..., :3].std() > 0.05


def test_the_ascent_statistics_describe_the_images(pipeline):
    stats = read_json(pipeline / "a.json")
    assert stats["layer1"]["neurons"] == list(range(6))
    assert stats["output"]["neurons"] == list(range(10))
    for layer in figures.LAYERS:
        reached, start = stats[layer]["activation_reached"], stats[layer]["activation_start"]
        assert all(r > s for r, s in zip(reached, start, strict=True)), layer  # it climbed
    # a neuron of layer 1 is linear in the image: the ascent ends at its box maximiser (1 where
    # its weight is positive, 0 where negative) for the pixels whose weight matters
    assert stats["layer1"]["pixels_equal_where_weight_matters"] > 0.9


def test_the_search_overview_and_learning_curves_draw_every_trial(pipeline, tmp_path):
    ranked = pd.read_csv(pipeline / "ranking.tsv", sep="\t")
    summary = pd.read_csv(pipeline / "summary.tsv", sep="\t")
    fig = figures.plot_search_overview(ranked, summary, tmp_path / "search.png")
    for ax in fig.axes[:6]:
        points = ax.collections[0].get_offsets()  # the trials, blue
        assert len(points) == N_TRIALS
        assert sorted(points[:, 1]) == pytest.approx(sorted(ranked["mean_loss"]))
        ringed = ax.collections[1].get_offsets()
        assert len(ringed) == TOP_K  # the retrained, not the reference
    histories = {
        folder.name: pd.read_csv(folder / "history.tsv", sep="\t").to_dict("records")
        for folder in (pipeline / "final").iterdir()
    }
    winner = read_json(pipeline / "winner.json")["trial"]
    fig = figures.plot_learning_curves(histories, winner, tmp_path / "curves.png")
    curves = [line for ax in fig.axes for line in ax.get_lines() if len(line.get_xdata()) == 3]
    assert len(curves) >= 2 * len(histories)  # accuracy and loss of every retrained trial
    drawn = {tuple(line.get_ydata()) for line in curves}
    for rows in histories.values():
        accuracy = [row["test_accuracy"] for row in rows]
        assert tuple(accuracy) in drawn  # the raw curve
        assert tuple(figures.running_mean(accuracy, figures.SMOOTHING)) in drawn  # its mean
    # every line named once at its end, the names apart even where the ends crowd
    overview = fig.axes[0]
    names = sorted(text.get_text().split()[0] for text in overview.texts)
    assert names == sorted(histories)
    heights = sorted(text.xyann[1] for text in overview.texts)
    low, high = overview.get_ylim()
    assert min(b - a for a, b in zip(heights, heights[1:], strict=False)) >= (high - low) / 29


def test_the_running_mean_averages_the_last_epochs():
    assert figures.running_mean([1.0, 3.0, 5.0, 7.0], 2).tolist() == [1.0, 2.0, 4.0, 6.0]


def test_the_report_tables_show_the_answer(pipeline):
    chosen = read_json(pipeline / "winner.json")
    page = (pipeline / "report/winner.html").read_text()
    assert chosen["trial"] in page and "unbiased" in page
    assert f"{chosen['official_test_accuracy']:.2%}" in page
    ranked = (pipeline / "report/ranking.html").read_text()
    assert ranked.count("<tr class=") == N_TRIALS and 'class="winner"' in ranked
    retrained = (pipeline / "report/retrained.html").read_text()
    assert retrained.count("<tr class=") == TOP_K + 1 and 'class="reference"' in retrained


def _official_probabilities(module, synthetic_npz):
    X, y = data.load_part(synthetic_npz, None, official_test=True)
    return ensemble.probabilities(module, X), y


def test_the_ensemble_votes_the_candidates_by_cv_order_and_scores_them(pipeline, synthetic_npz):
    result = read_json(pipeline / "ensemble.json")
    ranked = pd.read_csv(pipeline / "ranking.tsv", sep="\t")
    candidates = [t for t in ranked["trial"] if (pipeline / "final" / t).exists()]
    assert result["members"] == candidates[:TOP_K]  # size 0: every candidate, by CV loss
    probabilities = []
    for trial in result["members"]:
        module, _ = load_model(pipeline / "final" / trial / "model.pt")
        found, labels = _official_probabilities(module, synthetic_npz)
        probabilities.append(found)
        own = result["candidates"][trial]["official_test"]
        assert own["accuracy"] == pytest.approx(float((found.argmax(1) == labels).double().mean()))
    mean = torch.stack(probabilities).mean(0)
    official = result["official_test"]
    assert official["accuracy"] == pytest.approx(float((mean.argmax(1) == labels).double().mean()))
    assert official["images"] == SYNTHETIC_TEST
    assert official["low"] < official["accuracy"] < official["high"]
    assert official["high"] - official["low"] == pytest.approx(0.07, abs=0.02)  # 500 images
    # the saved ensemble reproduces it
    module, checkpoint = load_model(pipeline / "ensemble.pt")
    assert checkpoint["members"][0]["trial"] == result["members"][0]
    assert torch.allclose(_official_probabilities(module, synthetic_npz)[0], mean, atol=1e-6)


def test_the_winner_is_compared_with_the_runner_up_on_paired_predictions(pipeline, synthetic_npz):
    from mnist_mlp.stats import mcnemar

    comparison = read_json(pipeline / "comparison.json")
    summary = pd.read_csv(pipeline / "summary.tsv", sep="\t")
    eligible = summary[~summary["reference"]]["trial"].tolist()
    assert [comparison["winner"], comparison["runner_up"]] == eligible[:2]
    right = {}
    for trial in eligible[:2]:
        module, _ = load_model(pipeline / "final" / trial / "model.pt")
        found, labels = _official_probabilities(module, synthetic_npz)
        right[trial] = (found.argmax(1) == labels).numpy()
    first, second = (right[t] for t in eligible[:2])
    assert comparison["only_winner_right"] == int((first & ~second).sum())
    assert comparison["only_runner_up_right"] == int((second & ~first).sum())
    assert comparison["official_gap"] == pytest.approx(first.mean() - second.mean())
    p_value = mcnemar(comparison["only_winner_right"], comparison["only_runner_up_right"])
    assert comparison["mcnemar_p"] == pytest.approx(p_value)
    assert comparison["within_noise"] == (p_value >= 0.05)
    # the ensemble against the winner, on the same images
    members = read_json(pipeline / "ensemble.json")["members"]
    probabilities = []
    for trial in members:
        module, _ = load_model(pipeline / "final" / trial / "model.pt")
        probabilities.append(_official_probabilities(module, synthetic_npz)[0])
    voted = (torch.stack(probabilities).mean(0).argmax(1) == labels).numpy()
    against = comparison["ensemble"]
    assert against["only_first_right"] == int((voted & ~first).sum())
    assert against["only_second_right"] == int((first & ~voted).sum())
    assert against["gap"] == pytest.approx(voted.mean() - first.mean())
    p_value = mcnemar(against["only_first_right"], against["only_second_right"])
    assert against["mcnemar_p"] == pytest.approx(p_value)


EXPORTED = """
import sys
sys.modules["mnist_mlp"] = None  # any import of the package fails: torch alone
import numpy as np, torch
program = torch.export.load(sys.argv[1]).module()
images = torch.from_numpy(np.load(sys.argv[2]))
np.save(sys.argv[3], program(images).detach().numpy())
"""


@pytest.mark.parametrize("name", ["winner", "ensemble"])
def test_the_exported_models_load_without_the_package_and_agree(
    pipeline, synthetic_npz, name, tmp_path
):
    import subprocess
    import sys

    X, _ = data.load_part(synthetic_npz, None, official_test=True)
    np.save(tmp_path / "images.npy", X[:64].numpy())
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            EXPORTED,
            str(pipeline / f"{name}.pt2"),
            str(tmp_path / "images.npy"),
            str(tmp_path / "out.npy"),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={k: v for k, v in __import__("os").environ.items() if k != "PYTHONPATH"},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    source = pipeline / ("winning_net.dat" if name == "winner" else "ensemble.pt")
    module, _ = load_model(source)
    expected = ensemble.probabilities(module, X[:64]).numpy()
    assert np.allclose(np.load(tmp_path / "out.npy"), expected, atol=1e-6)
    # no trace of where the code lay: the same bytes from any checkout
    import zipfile

    with zipfile.ZipFile(pipeline / f"{name}.pt2") as archive:
        program = b"".join(archive.read(n) for n in archive.namelist())
    assert b"stack_trace" not in program and str(REPO).encode() not in program


def test_a_receptive_field_figure_has_one_symmetric_scale_and_its_colour_bar(pipeline, tmp_path):
    module, _ = load_model(pipeline / "winning_net.dat")
    fields = figures.receptive_fields(module)["layer1"][:6]
    fig = figures.plot_neuron_grids(
        [(fields, list("abcdef"), "layer 1", "weights")], tmp_path / "f.png", "title"
    )
    images = [ax.images[0] for ax in fig.axes if ax.images]
    assert len(images) == 6
    scale = float(np.abs(fields).max())
    assert {image.get_clim() for image in images} == {(-scale, scale)}  # one scale for all
    bars = [ax for ax in fig.axes if not ax.images and ax.get_title() == "weight"]
    assert len(bars) == 1 and bars[0].get_xlim() == pytest.approx((-scale, scale))


def test_the_regularised_ascent_reaches_confident_digits(pipeline, synthetic_npz):
    module, _ = load_model(pipeline / "winning_net.dat")
    mean = figures.mean_training_image(synthetic_npz, pipeline / "split/train.npy")
    images, probability = figures.regularised_ascent(module, "output", range(10), mean)
    assert images.min() >= 0 and images.max() <= 1
    assert (probability > 0.5).all()  # each output neuron's digit wins on its image
    assert np.abs(images - mean).mean() < 0.25  # and the image stays near the data's prior
