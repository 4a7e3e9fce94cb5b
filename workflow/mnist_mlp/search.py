"""The search stage: k-fold cross-validation of one trial on the training part, whole (the lab's
protocol) or rung by rung (successive halving), and the rungs' decisions."""

from __future__ import annotations

import logging

from . import training
from .data import load_part
from .halving import decide
from .io import read_result, write_json, write_table
from .model import atomic_save, load_state

log = logging.getLogger(__name__)


def _cross_validate(data, train_indices, trial, settings, threads, **rung):
    device = training.configure_torch(threads, settings["device"])
    X, y = load_part(data, train_indices, device)  # once for all folds
    log.info("trial %s on %d images, %d threads, %s", trial, len(y), threads, device)
    result, history, states = training.cross_validate_trial(
        trial,
        training.TrainingSettings.from_params(settings, device),
        X,
        y,
        settings["folds"],
        **rung,
    )
    result.update(threads=threads, device=device, torch_version=training.torch.__version__)
    return result, history, states


def cross_validate_stage(data, train_indices, outputs, trial: dict, settings: dict, threads: int):
    """Rule cross_validate: k-fold CV of one trial on the training part; writes the result
    (``outputs.cv``) and the per-fold, per-epoch history (``outputs.history``)."""
    result, history, _ = _cross_validate(data, train_indices, trial, settings, threads)
    write_table(history, outputs.history)
    write_json(outputs.cv, result)
    log.info("mean held-out loss %s, status %s", result["mean_loss"], result["status"])
    return result


def train_rung_stage(
    data,
    train_indices,
    outputs,
    trial: dict,
    settings: dict,
    rung: int,
    budget: int,
    threads: int,
    previous=None,
):
    """Rule train_rung: every fold of one trial trained up to ``budget`` epochs, going on from
    the state the previous rung left (``previous``: its state file; None at the first rung).
    Writes the rung's result (``outputs.result``: a CV result once the trial is complete, else
    its rung score), the history so far and the state the next rung needs."""
    states = load_state(previous)["folds"] if previous else None
    result, history, states = _cross_validate(
        data, train_indices, trial, settings, threads, until=budget, resume=states
    )
    result.update(rung=rung, budget=budget)
    write_table(history, outputs.history)
    atomic_save(outputs.state, {"folds": states})  # None once complete: nothing goes on
    write_json(outputs.result, result)
    log.info(
        "rung %d (%d epochs): status %s, score %s",
        rung,
        budget,
        result["status"],
        result.get("score", result.get("mean_loss")),
    )
    return result


def promote_trials_stage(result_paths, output, eta: int, last: bool) -> list[dict]:
    """Rule promote_trials: one rung's decisions as a table (trial, rung, budget, score,
    decision)."""
    rows = decide([read_result(path) for path in result_paths], eta, last)
    columns = ("trial", "rung", "budget", "score", "mean_epochs", "decision")
    write_table(rows or {key: [] for key in columns}, output)
    counts = {d: sum(r["decision"] == d for r in rows) for d in {r["decision"] for r in rows}}
    log.info("rung decisions: %s", counts)
    return rows
