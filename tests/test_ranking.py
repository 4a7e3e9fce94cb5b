"""The ranking of the search (fast tier, in-process): order, ties, diverged and pruned trials,
and the report's two .dat files."""

import json
import math

import numpy as np
from conftest import LAB_PARAMETERS, Paths

from mnist_mlp import halving, ranking
from mnist_mlp.io import read_result, read_table, write_json, write_table

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
        *LAB_PARAMETERS,
    ]


def rank_files(folder, results, rung_tables=None):
    """``results`` written as the CV jobs write them, then ranked by the rank stage as its rule
    runs it (with ``rung_tables``: a halving search's, and its rungs table); returns the
    stage's output paths."""
    paths = []
    for item in results:
        write_json(folder / f"{item['trial']}.json", item)
        paths.append(folder / f"{item['trial']}.json")
    outputs = Paths(
        ranking=folder / "ranking.tsv",
        sorted_scores=folder / "scores.dat",
        sorted_params=folder / "params.dat",
        **({"rungs": folder / "rungs.tsv"} if rung_tables else {}),
    )
    ranking.rank_trials_stage(paths, outputs, rung_tables or ())
    return outputs


def test_the_dat_files_follow_the_ranking(tmp_path):
    results = [
        result("t0001", 0.3),
        result("t0000", 0.123456789123),
        result("t0002", None, "diverged"),
    ]
    outputs = rank_files(tmp_path, results)
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


COLUMNS = ["rank", "trial", *LAB_PARAMETERS]
SCORES = ["mean_loss", "std_loss", "mean_accuracy", "mean_epochs", "status"]


def test_the_ranking_file_holds_every_trials_scores(tmp_path):
    """ranking.tsv as a user reads it: every column, each trial's own scores on its row; a
    diverged trial's scores (null in its result file) are NaN."""
    finished = [
        result("t0000", 0.3) | {"std_loss": 0.02, "mean_accuracy": 0.91, "mean_epochs": 7.5},
        result("t0001", 0.2) | {"std_loss": 0.04, "mean_accuracy": 0.93, "mean_epochs": 12.0},
        result("t0002", None, "diverged") | {"mean_epochs": 3.0},
    ]
    outputs = rank_files(tmp_path, finished)
    table = read_table(outputs.ranking)
    assert list(table.columns) == [*COLUMNS, *SCORES]
    assert table["trial"].tolist() == ["t0001", "t0000", "t0002"]
    assert table["Nh1"].tolist() == [101, 100, 102]
    assert table["std_loss"].tolist()[:2] == [0.04, 0.02]
    assert table["mean_accuracy"].tolist()[:2] == [0.93, 0.91]
    assert table["mean_epochs"].tolist() == [12.0, 7.5, 3.0]
    assert table.iloc[2][["mean_loss", "std_loss", "mean_accuracy"]].isna().all()


def test_a_search_where_every_trial_diverged_still_ranks(tmp_path):
    """No finite loss at all (every result has null scores): NaN throughout, in id order."""
    table = ranking.build_ranking(
        [read_json_result(tmp_path, result(f"t000{i}", None, "diverged")) for i in (1, 0)]
    )
    assert table["trial"].tolist() == ["t0000", "t0001"]
    assert table["mean_loss"].dtype == float and table["mean_loss"].isna().all()
    scores = tmp_path / "scores.dat"
    ranking.write_ranking(table, tmp_path / "r.tsv", scores, tmp_path / "p.dat")
    assert scores.read_text() == "nan\nnan\n"


def read_json_result(folder, item):
    """``item`` written and read back as the rank stage reads a result (null for NaN)."""
    write_json(folder / f"{item['trial']}.json", item)
    return read_result(folder / f"{item['trial']}.json")


def rung_result(trial, rung, budget, score):
    """A trial paused at a rung, as the rung stage writes it (``training.summarize_rung``):
    a score, no mean_loss, std_loss or mean_accuracy."""
    return {
        "trial": trial,
        "params": PARAMS | {"Nh1": 100 + int(trial[1:])},
        "status": "running",
        "score": score,
        "mean_epochs": float(budget),
        "folds": [{"fold": 1}],
        "rung": rung,
        "budget": budget,
    }


def test_with_halving_pruned_trials_rank_before_diverged_ones_whatever_their_rung(tmp_path):
    """Completed first, then pruned (deeper rungs first, then by rung score), then diverged,
    even one that diverged at a deeper rung than every pruned trial; the halving columns say
    where each trial stopped."""
    results = [
        result("t0000", 0.3, rung=2, budget=81) | {"std_loss": 0.05, "mean_accuracy": 0.8},
        rung_result("t0001", 0, 9, 0.2),
        result("t0002", None, "diverged", rung=2, budget=81, score=None),
        rung_result("t0003", 1, 27, 0.6),
        rung_result("t0004", 0, 9, 0.1),
    ]
    table = ranking.build_ranking([read_json_result(tmp_path, r) for r in results])
    assert table["trial"].tolist() == ["t0000", "t0003", "t0004", "t0001", "t0002"]
    assert table["status"].tolist() == ["ok", "pruned", "pruned", "pruned", "diverged"]
    assert list(table.columns) == [*COLUMNS, *SCORES, "rung", "budget", "score"]
    assert table["rung"].tolist() == [2, 1, 0, 0, 2]
    assert table["budget"].tolist() == [81, 27, 9, 9, 81]
    assert table["score"].tolist()[:4] == [0.3, 0.6, 0.1, 0.2]
    assert table.loc[0, ["mean_loss", "std_loss", "mean_accuracy"]].tolist() == [0.3, 0.05, 0.8]
    # a pruned trial has no CV scores: it never finished its folds
    assert table.iloc[1:][["mean_loss", "std_loss", "mean_accuracy"]].isna().all().all()
    assert table["mean_epochs"].tolist() == [10.0, 27.0, 9.0, 9.0, 10.0]


def test_the_rung_decisions_are_gathered_by_rung_then_trial(tmp_path):
    """With halving, rank_trials also writes every rung's decisions (``halving.decide``) in one
    table, rung by rung, trials in id order within a rung, whatever order the tables come in."""
    first = [rung_result(f"t000{i}", 0, 9, score) for i, score in enumerate((0.4, 0.1, 0.3))]
    second = [result("t0001", 0.2, rung=1, budget=27), rung_result("t0002", 1, 27, 0.15)]
    write_table(halving.decide(first, 3, last=False), tmp_path / "rung0.tsv")
    write_table(halving.decide(second, 3, last=False), tmp_path / "rung1.tsv")
    # where each trial finished: t0000 was pruned at rung 0
    outputs = rank_files(
        tmp_path, (first[0], *second), [tmp_path / "rung1.tsv", tmp_path / "rung0.tsv"]
    )
    rungs = read_table(outputs.rungs)
    assert list(rungs.columns) == ["trial", "rung", "budget", "score", "mean_epochs", "decision"]
    assert list(zip(rungs["rung"], rungs["trial"], rungs["decision"], strict=True)) == [
        (0, "t0000", "pruned"),
        (0, "t0001", "promoted"),
        (0, "t0002", "pruned"),
        (1, "t0001", "complete"),
        (1, "t0002", "promoted"),
    ]
    assert rungs.index.tolist() == [0, 1, 2, 3, 4]
