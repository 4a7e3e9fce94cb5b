"""The search stage: k-fold cross-validation of one trial on the training part."""

from __future__ import annotations

import logging

from . import training
from .data import load_part
from .io import write_json, write_table

log = logging.getLogger(__name__)


def cross_validate_stage(
    data, train_indices, outputs, trial: dict, settings: dict, threads: int, tracking=None
):
    """Rule cross_validate: k-fold CV of one trial on the training part; writes the result
    (``outputs.cv``) and the per-fold, per-epoch history (``outputs.history``). ``tracking``:
    the config's tracking section (TensorBoard or MLflow), or None."""
    device = training.configure_torch(threads, settings["device"])
    X, y = load_part(data, train_indices, device)  # once for all folds
    log.info("trial %s on %d images, %d threads, %s", trial, len(y), threads, device)
    result, history = training.cross_validate_trial(
        trial,
        training.TrainingSettings.from_params(settings, device, tracking),
        X,
        y,
        settings["folds"],
    )
    result.update(threads=threads, device=device, torch_version=training.torch.__version__)
    write_table(history, outputs.history)
    write_json(outputs.cv, result)
    log.info("mean held-out loss %s, status %s", result["mean_loss"], result["status"])
    return result
