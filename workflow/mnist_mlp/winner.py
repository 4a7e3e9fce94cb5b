"""Choosing the winner among the retrained trials, by the report's rule."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import pandas as pd

from .errors import UserFacingError
from .io import check_zip, copy_file, read_json, read_table, write_json, write_table
from .trials import TRAINING_HYPERPARAMETERS, hyperparameters_of, is_reference

log = logging.getLogger(__name__)


def candidates_table(metrics: dict[str, dict], ranking) -> pd.DataFrame:
    """One row per retrained trial: hyper-parameters, CV loss (NaN for references), the three
    accuracies, whether it is a reference. ``ranking`` is the search's ranking table."""
    cv_loss = dict(zip(ranking["trial"], ranking["mean_loss"], strict=True))
    names = [n for n in TRAINING_HYPERPARAMETERS if any(n in m["params"] for m in metrics.values())]
    columns = ["trial", "reference", *names, "cv_loss", "status", "test_accuracy"]
    columns += ["official_test_accuracy", "whole_dataset_accuracy", "epochs"]
    rows = []
    for trial, metric in metrics.items():
        rows.append(
            {
                "trial": trial,
                "reference": is_reference(trial),
                **{key: metric["params"][key] for key in hyperparameters_of(metric["params"])},
                "cv_loss": cv_loss.get(trial, math.nan),
                "status": metric["status"],
                "test_accuracy": metric["test_accuracy"],
                "official_test_accuracy": metric["official_test_accuracy"],
                "whole_dataset_accuracy": metric["whole_dataset_accuracy"],
                "epochs": metric["epochs"],
            }
        )
    return pd.DataFrame(rows, columns=columns)


def select_winner(candidates: pd.DataFrame) -> pd.DataFrame:
    """The report's rule: best accuracy on the 15 % test part; ties go to the lower CV loss,
    then to the trial id. References and failed fits are never eligible.

    Returns the table in that order with a ``winner`` column (True on the first eligible row).
    """
    eligible = (~candidates["reference"]) & (candidates["status"] == "ok")
    if not eligible.any():
        raise UserFacingError(
            "no retrained trial can win: every trial of the search diverged or failed (see "
            "results/search/ranking.tsv), and references never win. Narrow the search's "
            "ranges (search.space.lr) or choose more trials (search.n_trials)."
        )
    ordered = candidates.assign(_eligible=eligible).sort_values(
        ["_eligible", "test_accuracy", "cv_loss", "trial"],
        ascending=[False, False, True, True],
        na_position="last",
        kind="stable",
    )
    ordered["winner"] = False
    ordered.iloc[0, ordered.columns.get_loc("winner")] = True
    return ordered.drop(columns="_eligible").reset_index(drop=True)


def winner_record(table: pd.DataFrame, metrics: dict[str, dict]) -> dict:
    """``winner.json``: the winning trial, its hyper-parameters and its three accuracies."""
    best = table[table["winner"]].iloc[0]
    trial = best["trial"]
    return {
        "trial": trial,
        "params": {
            key: metrics[trial]["params"][key]
            for key in hyperparameters_of(metrics[trial]["params"])
        },
        "cv_loss": float(best["cv_loss"]),
        "test_accuracy": metrics[trial]["test_accuracy"],
        "official_test_accuracy": metrics[trial]["official_test_accuracy"],
        "whole_dataset_accuracy": metrics[trial]["whole_dataset_accuracy"],
        "epochs": metrics[trial]["epochs"],
        "chosen_by": (
            "accuracy on the 15 % test part of the training images (ties: lower CV loss); "
            "that part chose the winner, so official_test_accuracy is the unbiased figure"
        ),
        "candidates": int((~table["reference"]).sum()),
    }


def select_winner_stage(metrics_paths, model_paths, ranking_path, outputs) -> dict:
    """Rule select_winner: the summary of every retrained trial, ``winner.json`` and a copy of
    the winner's model as ``winning_net.dat``."""
    metrics = {record["trial"]: record for record in map(read_json, metrics_paths)}
    table = select_winner(candidates_table(metrics, read_table(ranking_path)))
    write_table(table, outputs.summary)
    winner = winner_record(table, metrics)
    write_json(outputs.winner, winner)
    models = {Path(path).parent.name: path for path in model_paths}
    check_zip(models[winner["trial"]])  # a damaged model is set aside and retrained, not copied
    copy_file(models[winner["trial"]], outputs.model)
    log.info("winner: %s", winner)
    return winner
