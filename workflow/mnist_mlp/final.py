"""The final stage: retrain the best trials and the references on the whole training part,
score them, and choose the winner."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import pandas as pd

from . import training
from .data import load_mnist, load_part
from .io import copy_file, read_json, read_table, write_json, write_table
from .model import save_model
from .trials import HYPERPARAMETERS, is_reference

log = logging.getLogger(__name__)


def final_metrics(module, record: dict, whole_dataset, official_test) -> dict:
    """Accuracy on the 15 % test part (from the retraining ``record``), on all 60,000 training
    images (the report's "whole dataset" figure) and on the official 10,000 test images."""
    metrics = {
        "status": record["status"],
        "epochs": record["epochs"],
        "train_seconds": record["seconds"],
        "test_loss": record["loss"],
        "test_accuracy": record["accuracy"],
    }
    for name, (X, y) in (("whole_dataset", whole_dataset), ("official_test", official_test)):
        ok = record["status"] == "ok"
        loss, accuracy = training.evaluate(module, X, y) if ok else (math.nan,) * 2
        metrics[f"{name}_loss"], metrics[f"{name}_accuracy"] = loss, accuracy
    return metrics


def retrain_stage(data, train_indices, test_indices, outputs, trial, settings, threads) -> dict:
    """Rule retrain: train one trial on the whole training part for ``settings.max_epochs``,
    monitoring the test part each epoch; save the model (``outputs.model``), its metrics and
    its learning curve (``outputs.history``)."""
    device = training.configure_torch(threads, settings["device"])
    mnist = load_mnist(data)  # read once, four parts taken from it
    train = load_part(mnist, train_indices, device)
    test = load_part(mnist, test_indices, device)
    log.info("retraining %s for %d epochs on %s", trial, settings["max_epochs"], device)
    module, record, history = training.retrain_trial(
        trial, training.TrainingSettings.from_params(settings, device), train, test
    )
    metrics = final_metrics(
        module,
        record,
        whole_dataset=load_part(mnist, None, device),
        official_test=load_part(mnist, None, device, official_test=True),
    )
    metrics.update(trial=trial["trial"], params=trial, threads=threads, device=device)
    save_model(outputs.model, module, trial, metrics)
    write_json(outputs.metrics, metrics)
    write_table(history, outputs.history)
    log.info("metrics: %s", metrics)
    return metrics


def candidates_table(metrics: dict[str, dict], ranking) -> pd.DataFrame:
    """One row per retrained trial: hyper-parameters, CV loss (NaN for references), the three
    accuracies, whether it is a reference. ``ranking`` is the search's ranking table."""
    cv_loss = dict(zip(ranking["trial"], ranking["mean_loss"], strict=True))
    rows = []
    for trial, metric in metrics.items():
        rows.append(
            {
                "trial": trial,
                "reference": is_reference(trial),
                **{key: metric["params"][key] for key in HYPERPARAMETERS},
                "cv_loss": cv_loss.get(trial, math.nan),
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
    then to the trial id. References and failed fits are never eligible.

    Returns the table in that order with a ``winner`` column (True on the first eligible row).
    """
    eligible = (~candidates["reference"]) & (candidates["status"] == "ok")
    if not eligible.any():
        raise ValueError(
            "no retrained trial can win: all diverged or are references. "
            "Raise final.top_k or check the search's ranking for diverged trials."
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
        "params": {key: metrics[trial]["params"][key] for key in HYPERPARAMETERS},
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
    copy_file(models[winner["trial"]], outputs.model)
    log.info("winner: %s", winner)
    return winner
