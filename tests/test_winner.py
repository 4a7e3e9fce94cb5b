"""Choosing the winner (mnist_mlp.winner, fast tier): who wins, who never does."""

import math

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import LAB_PARAMETERS, Paths

from mnist_mlp.errors import UserFacingError
from mnist_mlp.io import read_json, read_table, write_json, write_table
from mnist_mlp.winner import candidates_table, select_winner, select_winner_stage


def _candidates(rows):
    return pd.DataFrame(rows, columns=["trial", "reference", "status", "test_accuracy", "cv_loss"])


def test_the_best_test_accuracy_wins_and_ties_go_to_the_lower_cv_loss():
    table = select_winner(
        _candidates(
            [
                ("t0001", False, "ok", 0.97, 0.10),
                ("t0002", False, "ok", 0.98, 0.12),
                ("t0003", False, "ok", 0.98, 0.09),
                ("t0004", False, "ok", 0.96, 0.05),
            ]
        )
    )
    assert table.loc[table["winner"], "trial"].tolist() == ["t0003"]
    assert table["trial"].tolist() == ["t0003", "t0002", "t0001", "t0004"]


def test_references_and_diverged_fits_never_win():
    table = select_winner(
        _candidates(
            [
                ("ref_report_winner", True, "ok", 0.999, np.nan),
                ("t0005", False, "diverged", np.nan, np.nan),
                ("t0006", False, "ok", 0.90, 0.30),
            ]
        )
    )
    assert table.loc[table["winner"], "trial"].tolist() == ["t0006"]
    with pytest.raises(UserFacingError, match="no retrained trial can win"):
        select_winner(_candidates([("ref_a", True, "ok", 0.99, np.nan)]))


def test_with_every_trial_diverged_and_no_reference_the_message_says_so():
    """Nothing is retrained then: select_winner gets no metrics at all."""
    ranking = pd.DataFrame({"trial": ["t0000"], "mean_loss": [np.nan]})
    with pytest.raises(UserFacingError, match="no retrained trial can win"):
        select_winner(candidates_table({}, ranking))


def test_a_tie_in_accuracy_and_cv_loss_goes_to_the_lower_trial_id():
    table = select_winner(
        _candidates(
            [
                ("t0007", False, "ok", 0.98, 0.10),
                ("t0003", False, "ok", 0.98, 0.10),
                ("t0005", False, "ok", 0.98, 0.10),
            ]
        )
    )
    assert table["trial"].tolist() == ["t0003", "t0005", "t0007"]
    assert table["winner"].tolist() == [True, False, False]
    assert list(table.columns) == [
        "trial",
        "reference",
        "status",
        "test_accuracy",
        "cv_loss",
        "winner",
    ]


PARAMS = {"Nh1": 40, "Nh2": 20, "dropout": 0.1, "optimizer": "Adam", "lr": 1e-3, "L2": 1e-5}
# trial -> (Nh1, CV loss or None for a reference, test, official test and whole-dataset
# accuracy, epochs): the reference scores best but never wins; t0002 and t0001 tie on the
# test part, and t0002's lower CV loss wins it
RETRAINED = {
    "t0001": (41, 0.20, 0.95, 0.940, 0.960, 12),
    "ref_report": (30, None, 0.99, 0.990, 0.995, 10),
    "t0002": (42, 0.10, 0.95, 0.930, 0.970, 14),
    "t0000": (43, 0.05, 0.90, 0.910, 0.920, 16),
}


def _retrained(tmp_path):
    """What the retrain stage leaves (``final.retrain_stage``): per trial a folder with the
    metrics and a saved network (untrained here: choosing reads the metrics, then copies the
    file), and the search's ranking (``ranking.build_ranking`` of the trials' CV results)."""
    from mnist_mlp import ranking
    from mnist_mlp.model import MLP, save_model

    cv = []
    metrics_paths, model_paths = [], []
    for tid, (nh1, cv_loss, test, official, whole, epochs) in RETRAINED.items():
        trial = {"trial": tid, **PARAMS, "Nh1": nh1}
        metrics = {
            "status": "ok",
            "epochs": epochs,
            "train_seconds": 1.5,
            "test_loss": 0.2,
            "test_accuracy": test,
            "whole_dataset_loss": 0.1,
            "whole_dataset_accuracy": whole,
            "official_test_loss": 0.2,
            "official_test_accuracy": official,
            "trial": tid,
            "params": trial,
            "threads": 1,
            "device": "cpu",
        }
        folder = tmp_path / "final" / tid
        folder.mkdir(parents=True)
        write_json(folder / "metrics.json", metrics)
        torch.manual_seed(nh1)
        save_model(folder / "model.pt", MLP(nh1, PARAMS["Nh2"], 0.1), trial, metrics)
        metrics_paths.append(folder / "metrics.json")
        model_paths.append(folder / "model.pt")
        if cv_loss is not None:
            cv.append({"trial": tid, "params": trial, "status": "ok", "mean_loss": cv_loss})
            cv[-1] |= {"std_loss": 0.01, "mean_accuracy": 0.9, "mean_epochs": 9.0}
    cv.append({"trial": "t0003", "params": PARAMS, "status": "diverged", "mean_loss": None})
    cv[-1] |= {"std_loss": None, "mean_accuracy": None, "mean_epochs": 2.0}
    write_table(ranking.build_ranking(cv), tmp_path / "ranking.tsv")
    return metrics_paths, model_paths


def test_the_winner_stage_writes_the_summary_the_record_and_the_winners_network(tmp_path):
    metrics_paths, model_paths = _retrained(tmp_path)
    outputs = Paths(
        summary=tmp_path / "summary.tsv",
        winner=tmp_path / "winner.json",
        model=tmp_path / "winning_net.dat",
    )
    returned = select_winner_stage(metrics_paths, model_paths, tmp_path / "ranking.tsv", outputs)

    summary = read_table(outputs.summary)
    assert list(summary.columns) == [
        "trial",
        "reference",
        *LAB_PARAMETERS,
        "cv_loss",
        "status",
        "test_accuracy",
        "official_test_accuracy",
        "whole_dataset_accuracy",
        "epochs",
        "winner",
    ]
    assert summary["trial"].tolist() == ["t0002", "t0001", "t0000", "ref_report"]
    assert summary["winner"].tolist() == [True, False, False, False]
    assert summary["reference"].tolist() == [False, False, False, True]
    assert summary["Nh1"].tolist() == [42, 41, 43, 30]
    assert summary["cv_loss"].tolist()[:3] == [0.10, 0.20, 0.05]
    assert math.isnan(summary["cv_loss"].iloc[3])  # a reference has no CV loss
    assert summary["status"].tolist() == ["ok"] * 4
    for column, index in (
        ("test_accuracy", 2),
        ("official_test_accuracy", 3),
        ("whole_dataset_accuracy", 4),
        ("epochs", 5),
    ):
        assert summary[column].tolist() == [RETRAINED[t][index] for t in summary["trial"]]

    record = read_json(outputs.winner)
    assert (
        record
        == returned
        == {
            "trial": "t0002",
            "params": PARAMS | {"Nh1": 42},
            "cv_loss": 0.10,
            "test_accuracy": 0.95,
            "official_test_accuracy": 0.930,
            "whole_dataset_accuracy": 0.970,
            "epochs": 14,
            "chosen_by": (
                "accuracy on the 15 % test part of the training images (ties: lower CV loss); "
                "that part chose the winner, so official_test_accuracy is the unbiased figure"
            ),
            "candidates": 3,
        }
    )
    winners_model = tmp_path / "final" / "t0002" / "model.pt"
    assert outputs.model.read_bytes() == winners_model.read_bytes()
