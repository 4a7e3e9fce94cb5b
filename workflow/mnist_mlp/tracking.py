"""Experiment tracking as an export of the tracked files (``tracking.backend``).

Every fit's history is already in the workflow's results: each trial's CV result and its
per-fold, per-epoch history (``results/search/cv/``, or with successive halving its last rung),
each retraining's metrics and per-epoch history (``results/final/<trial>/``). The export turns
them into what the trackers open, so it can be switched on at any time and retrains nothing:

- ``mlflow``: an SQLite store ``<directory>/mlflow.db`` (``mlflow ui --backend-store-uri
  sqlite:///<directory>/mlflow.db``). Experiment "mnist-mlp-search": one run per trial, its
  hyper-parameters as params, its CV result as metrics (``cv_loss``, the search's score, and
  ``cv_loss_std``, ``cv_accuracy``, ``epochs``), its rank and status as tags, so that trials
  sort by the metric the search ranks on; nested under it one run per fold (train loss,
  validation loss and accuracy per epoch) and, for a retrained trial, one for the retraining
  (test-part loss and accuracy per epoch; its three accuracies).
- ``tensorboard``: event files under ``<directory>/tensorboard/<trial>``: the same curves as
  scalars, and the HParams plugin's data (hyper-parameters against the CV loss and accuracy),
  so that ``tensorboard --logdir <directory>/tensorboard`` shows the HParams dashboard.
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path

from .io import read_json, read_table, read_tsv
from .trials import hyperparameters_of

log = logging.getLogger(__name__)

EXPERIMENT = "mnist-mlp-search"


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def _history(path) -> list[dict]:
    return read_table(path).to_dict("records") if Path(path).exists() else []


def gather(result_paths, ranking_path, retrained_dirs) -> list[dict]:
    """Per trial: its result, its CV history, its rank; and its retraining where there is one."""
    ranks = {row["trial"]: row for row in read_tsv(ranking_path)}
    retrained = {Path(d).name: Path(d) for d in retrained_dirs}
    trials = []
    for path in map(Path, result_paths):
        result = read_json(path)
        history = path.with_name(path.name.replace(".json", ".history.tsv"))
        entry = {"result": result, "history": _history(history), "rank": ranks.get(result["trial"])}
        folder = retrained.get(result["trial"])
        if folder is not None and (folder / "metrics.json").exists():
            entry["final"] = read_json(folder / "metrics.json")
            entry["final_history"] = _history(folder / "history.tsv")
        trials.append(entry)
    return trials


def _cv_metrics(result: dict) -> dict:
    metrics = {
        "cv_loss": result.get("mean_loss"),
        "cv_loss_std": result.get("std_loss"),
        "cv_accuracy": result.get("mean_accuracy"),
        "epochs": result.get("mean_epochs"),
    }
    if result.get("status") == "running":  # pruned by successive halving: its rung score
        metrics["rung_score"] = result.get("score")
    return {key: float(value) for key, value in metrics.items() if _finite(value)}


FINAL_METRICS = ("test_accuracy", "official_test_accuracy", "whole_dataset_accuracy")


def export_mlflow(trials: list[dict], store: Path) -> Path:
    """The MLflow store (SQLite, made beside ``store`` and renamed into place) of ``trials``."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.tracking import MlflowClient

    store = Path(store)
    store.parent.mkdir(parents=True, exist_ok=True)
    partial = store.with_name(f".{store.name}.partial")
    partial.unlink(missing_ok=True)  # made again whole: the results are the source of truth
    client = MlflowClient(tracking_uri=f"sqlite:///{partial.resolve()}")
    artifacts = (store.parent.resolve() / "mlartifacts").as_uri()  # none are logged
    experiment = client.create_experiment(EXPERIMENT, artifact_location=artifacts)
    for entry in trials:
        result = entry["result"]
        status = "pruned" if result["status"] == "running" else result["status"]
        tags = [RunTag("trial", result["trial"]), RunTag("status", status)]
        if entry["rank"]:
            tags.append(RunTag("rank", str(entry["rank"]["rank"])))
        parent = client.create_run(
            experiment, run_name=result["trial"], tags={t.key: t.value for t in tags}
        )
        run_id = parent.info.run_id
        params = [
            Param(key, str(result["params"][key])) for key in hyperparameters_of(result["params"])
        ]
        metrics = [Metric(key, value, 0, 0) for key, value in _cv_metrics(result).items()]
        if "final" in entry:
            metrics += [
                Metric(f"final_{key}", float(entry["final"][key]), 0, 0)
                for key in FINAL_METRICS
                if _finite(entry["final"].get(key))
            ]
        client.log_batch(run_id, metrics=metrics, params=params)
        folds = sorted({int(row["fold"]) for row in entry["history"]})
        for fold in folds:
            child = client.create_run(
                experiment,
                run_name=f"{result['trial']}/fold{fold}",
                tags={"mlflow.parentRunId": run_id, "trial": result["trial"], "fold": str(fold)},
            )
            rows = [row for row in entry["history"] if int(row["fold"]) == fold]
            client.log_batch(
                child.info.run_id,
                metrics=_curves(rows, ("train_loss", "valid_loss", "valid_accuracy")),
            )
            client.set_terminated(child.info.run_id)
        if "final" in entry:
            child = client.create_run(
                experiment,
                run_name=f"{result['trial']}/final",
                tags={"mlflow.parentRunId": run_id, "trial": result["trial"], "fold": "final"},
            )
            curves = _curves(entry["final_history"], ("train_loss", "test_loss", "test_accuracy"))
            client.log_batch(child.info.run_id, metrics=curves)
            client.set_terminated(child.info.run_id)
        client.set_terminated(run_id, status="FINISHED" if status == "ok" else "KILLED")
    del client
    os.replace(partial, store)
    return store


def _curves(rows: list[dict], keys) -> list:
    from mlflow.entities import Metric

    return [
        Metric(key, float(row[key]), 0, int(row["epoch"]))
        for row in rows
        for key in keys
        if _finite(row.get(key))
    ]


def export_tensorboard(trials: list[dict], folder: Path) -> Path:
    """TensorBoard event files of ``trials`` in ``folder`` (made beside it, then renamed into
    place), with the HParams plugin's data."""
    import shutil

    from torch.utils.tensorboard import SummaryWriter

    folder = Path(folder)
    root = folder.with_name(f".{folder.name}.partial")
    shutil.rmtree(root, ignore_errors=True)  # made again whole
    for entry in trials:
        result = entry["result"]
        with SummaryWriter(log_dir=str(root / result["trial"])) as writer:
            for row in entry["history"]:
                for key in ("train_loss", "valid_loss", "valid_accuracy"):
                    if _finite(row.get(key)):
                        writer.add_scalar(
                            f"fold{int(row['fold'])}/{key}", row[key], int(row["epoch"])
                        )
            for row in entry.get("final_history", []):
                for key in ("train_loss", "test_loss", "test_accuracy"):
                    if _finite(row.get(key)):
                        writer.add_scalar(f"final/{key}", row[key], int(row["epoch"]))
            hparams = {k: result["params"][k] for k in hyperparameters_of(result["params"])}
            metrics = {f"hparam/{k}": v for k, v in _cv_metrics(result).items()}
            if metrics:
                writer.add_hparams(hparams, metrics, run_name=".")
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(root, folder)
    return folder


def export_tracking_stage(result_paths, ranking_path, retrained_dirs, backend: str, output) -> None:
    """Rule export_tracking: the tracked files in ``backend``'s form, at ``output`` (the MLflow
    store, or TensorBoard's folder)."""
    trials = gather(result_paths, ranking_path, retrained_dirs)
    export = export_mlflow if backend == "mlflow" else export_tensorboard
    made = export(trials, output)
    log.info("%s: %d trials in %s", backend, len(trials), made)
