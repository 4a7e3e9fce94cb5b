"""The final stage: retrain one of the best trials (or a reference) on the whole training part
and score it on the test part, the official test set and all training images."""

from __future__ import annotations

import logging
import math

from . import training
from .data import load_mnist, load_part
from .io import write_json, write_table
from .model import save_model

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
