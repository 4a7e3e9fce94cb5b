"""The final stage: metrics of a retrained network, and the choice of the winner."""

from __future__ import annotations

import math

import pandas as pd

from .sampling import HYPERPARAMETERS

REFERENCE_PREFIX = "ref_"


def reference_id(name: str) -> str:
    return f"{REFERENCE_PREFIX}{name}"


def is_reference(config_id: str) -> bool:
    return config_id.startswith(REFERENCE_PREFIX)


def final_metrics(module, record: dict, whole_dataset, official_test) -> dict:
    """Accuracy on the 15 % test part (from the retraining ``record``), on all 60,000 training
    images (the report's "whole dataset" figure) and on the official 10,000 test images."""
    from .training import evaluate

    metrics = {
        "status": record["status"],
        "epochs": record["epochs"],
        "train_seconds": record["seconds"],
        "test_loss": record["loss"],
        "test_accuracy": record["accuracy"],
    }
    for name, (X, y) in (("whole_dataset", whole_dataset), ("official_test", official_test)):
        loss, accuracy = evaluate(module, X, y) if record["status"] == "ok" else (math.nan,) * 2
        metrics[f"{name}_loss"], metrics[f"{name}_accuracy"] = loss, accuracy
    return metrics


def candidates_table(metrics: dict[str, dict], configs: dict[str, dict], ranking) -> pd.DataFrame:
    """One row per retrained configuration: parameters, CV loss (NaN for references), the three
    accuracies, whether it is a reference. ``ranking`` is the search's ranking table."""
    cv_loss = dict(zip(ranking["config_id"], ranking["mean_loss"], strict=True))
    rows = []
    for cid, metric in metrics.items():
        rows.append(
            {
                "config_id": cid,
                "reference": is_reference(cid),
                **{key: configs[cid][key] for key in HYPERPARAMETERS},
                "cv_loss": cv_loss.get(cid, math.nan),
                "status": metric["status"],
                "test_accuracy": metric["test_accuracy"],
                "official_test_accuracy": metric["official_test_accuracy"],
                "whole_dataset_accuracy": metric["whole_dataset_accuracy"],
                "epochs": metric["epochs"],
            }
        )
    return pd.DataFrame(rows)


def select_winner(candidates: pd.DataFrame) -> pd.DataFrame:
    """The report's rule: best accuracy on the 15 % test part; ties go to the lower CV loss,
    then to the config id. Reference configurations and failed fits are never eligible.

    Returns the table in that order with a ``winner`` column (True on the first eligible row).
    """
    eligible = (~candidates["reference"]) & (candidates["status"] == "ok")
    if not eligible.any():
        raise ValueError(
            "no retrained configuration can win: all diverged or are references. "
            "Raise final.top_k or check the search's ranking for diverged configurations."
        )
    ordered = candidates.assign(_eligible=eligible).sort_values(
        ["_eligible", "test_accuracy", "cv_loss", "config_id"],
        ascending=[False, False, True, True],
        na_position="last",
        kind="stable",
    )
    ordered["winner"] = False
    ordered.iloc[0, ordered.columns.get_loc("winner")] = True
    return ordered.drop(columns="_eligible").reset_index(drop=True)


def winner_record(table: pd.DataFrame, configs: dict[str, dict], metrics: dict[str, dict]):
    """``winner.json``: the winning configuration, its parameters and its three accuracies."""
    best = table[table["winner"]].iloc[0]
    cid = best["config_id"]
    return {
        "config_id": cid,
        "params": {key: configs[cid][key] for key in HYPERPARAMETERS},
        "cv_loss": float(best["cv_loss"]),
        "test_accuracy": metrics[cid]["test_accuracy"],
        "official_test_accuracy": metrics[cid]["official_test_accuracy"],
        "whole_dataset_accuracy": metrics[cid]["whole_dataset_accuracy"],
        "epochs": metrics[cid]["epochs"],
        "chosen_by": (
            "accuracy on the 15 % test part of the training images (ties: lower CV loss); "
            "that part chose the winner, so official_test_accuracy is the unbiased figure"
        ),
        "candidates": int((~table["reference"]).sum()),
    }
