"""The ranking of the search (fast tier, in-process): order, ties, diverged and pruned trials,
and the report's two .dat files."""

import json
import math

import numpy as np
from conftest import Paths

from mnist_mlp import ranking
from mnist_mlp.io import write_json

PARAMS = {"Nh1": 100, "Nh2": 50, "dropout": 0.1, "optimizer": "Adam", "lr": 1e-3, "L2": 1e-5}


def result(trial, loss, status="ok", **extra):
    return {
        "trial": trial,
        "params": PARAMS | {"Nh1": 100 + int(trial[1:])},
        "status": status,
        "mean_loss": loss,
        "std_loss": None if loss is None else 0.01,
        "mean_accuracy": None if loss is None else 0.9,
        "mean_epochs": 10.0,
        "folds": [{"fold": 1}],
        **extra,
    }


def test_best_first_ties_by_trial_id_diverged_last():
    table = ranking.build_ranking(
        [
            result("t0003", 0.20),
            result("t0001", None, "diverged"),
            result("t0002", 0.10),
            result("t0000", 0.20),  # a tie with t0003: the lower id first
            result("t0004", None, "diverged"),
        ]
    )
    assert table["trial"].tolist() == ["t0002", "t0000", "t0003", "t0001", "t0004"]
    assert table["rank"].tolist() == [1, 2, 3, 4, 5]
    assert table["status"].tolist() == ["ok", "ok", "ok", "diverged", "diverged"]
    assert math.isnan(table["mean_loss"].iloc[3])
    assert table.loc[0, "Nh1"] == 102  # the trial's own hyper-parameters on its row
    assert list(table.columns[:8]) == [
        "rank",
        "trial",
        "Nh1",
        "Nh2",
        "dropout",
        "optimizer",
        "lr",
        "L2",
    ]


def test_the_dat_files_follow_the_ranking(tmp_path):
    paths = []
    for item in (
        result("t0001", 0.3),
        result("t0000", 0.123456789123),
        result("t0002", None, "diverged"),
    ):
        write_json(tmp_path / f"{item['trial']}.json", item)
        paths.append(tmp_path / f"{item['trial']}.json")
    outputs = Paths(
        ranking=tmp_path / "ranking.tsv",
        sorted_scores=tmp_path / "scores.dat",
        sorted_params=tmp_path / "params.dat",
    )
    ranking.rank_trials_stage(paths, outputs)
    assert outputs.sorted_scores.read_text() == "0.12345679\n0.3\nnan\n"
    lines = [json.loads(line) for line in outputs.sorted_params.read_text().splitlines()]
    assert [line["trial"] for line in lines] == ["t0000", "t0001", "t0002"]
    assert lines[0] == {"trial": "t0000", **PARAMS}
    assert np.isnan(np.loadtxt(outputs.sorted_scores)[2])


def test_pruned_trials_rank_after_completed_ones_deeper_rungs_first():
    running = {"status": "running", "mean_loss": None, "std_loss": None, "mean_accuracy": None}
    table = ranking.build_ranking(
        [
            result("t0000", 0.3, rung=2, budget=100),
            result("t0001", None, **running, score=0.2, rung=0, budget=9),
            result("t0002", None, **running, score=0.5, rung=1, budget=27),
            result("t0003", None, "diverged", rung=0, budget=9, score=None),
            result("t0004", None, **running, score=0.1, rung=0, budget=9),
        ]
    )
    assert table["trial"].tolist() == ["t0000", "t0002", "t0004", "t0001", "t0003"]
    assert table["status"].tolist() == ["ok", "pruned", "pruned", "pruned", "diverged"]
    assert table["score"].tolist()[:4] == [0.3, 0.5, 0.1, 0.2]
