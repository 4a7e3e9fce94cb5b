"""The search stage: cross-validate each trial, then rank them all and plot the search."""

from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd

from .io import FLOAT_FORMAT, read_json, write_json, write_table, write_text
from .plotting import pyplot, save_png
from .trials import HYPERPARAMETERS

log = logging.getLogger(__name__)


def cross_validate_stage(data, train_indices, outputs, trial: dict, settings: dict, threads: int):
    """Rule cross_validate: k-fold CV of one trial on the training part; writes the result
    (``outputs.cv``) and the per-fold, per-epoch history (``outputs.history``)."""
    # torch is imported here, not at the top, so that ranking does not pay for it
    from . import training
    from .data import load_part

    device = training.configure_torch(threads, settings["device"])
    X, y = load_part(data, train_indices, device)  # once for all folds
    log.info("trial %s on %d images, %d threads, %s", trial, len(y), threads, device)
    result, history = training.cross_validate_trial(
        trial, training.TrainingSettings.from_params(settings, device), X, y, settings["folds"]
    )
    result.update(threads=threads, device=device, torch_version=training.torch.__version__)
    write_table(history, outputs.history)
    write_json(outputs.cv, result)
    log.info("mean held-out loss %s, status %s", result["mean_loss"], result["status"])
    return result


def build_ranking(cv_results: list[dict]) -> pd.DataFrame:
    """One row per trial, best (lowest mean held-out loss) first; diverged ones, whose loss is
    NaN, last. Ties are broken by trial id so that the order is reproducible."""
    rows = [
        {
            "trial": result["trial"],
            **result["params"],
            "mean_loss": np.nan if result["mean_loss"] is None else result["mean_loss"],
            "std_loss": np.nan if result["std_loss"] is None else result["std_loss"],
            "mean_accuracy": np.nan if result["mean_accuracy"] is None else result["mean_accuracy"],
            "mean_epochs": result["mean_epochs"],
            "status": result["status"],
        }
        for result in cv_results
    ]
    columns = ["trial", *HYPERPARAMETERS, "mean_loss", "std_loss", "mean_accuracy"]
    table = pd.DataFrame(rows, columns=[*columns, "mean_epochs", "status"]).sort_values(
        ["mean_loss", "trial"], na_position="last", kind="stable"
    )
    table.insert(0, "rank", np.arange(1, len(table) + 1))
    return table.reset_index(drop=True)


def write_ranking(table: pd.DataFrame, tsv, scores_dat, params_dat) -> None:
    """``ranking.tsv`` and the report's two files: ``sorted_scores.dat`` (the mean held-out
    loss, one line per trial, best first) and ``sorted_params.dat`` (the hyper-parameters of
    the same line, as JSON)."""
    write_table(table, tsv)
    write_text(scores_dat, "".join(f"{FLOAT_FORMAT % loss}\n" for loss in table["mean_loss"]))
    records = table[["trial", *HYPERPARAMETERS]].to_dict("records")
    lines = [json.dumps(record) for record in records]
    write_text(params_dat, "\n".join(lines) + "\n")


def rank_stage(cv_paths, outputs) -> pd.DataFrame:
    """Rule rank_trials: the ranking, the report's two .dat files and the search plot."""
    table = build_ranking([read_json(path) for path in cv_paths])
    write_ranking(
        table,
        tsv=outputs.ranking,
        scores_dat=outputs.sorted_scores,
        params_dat=outputs.sorted_params,
    )
    plot_search(table, outputs.plot)
    return table


def plot_search(table: pd.DataFrame, path) -> None:
    """Mean held-out loss against learning rate and against Nh1, coloured by optimizer."""
    plt = pyplot()
    finite = table[np.isfinite(table["mean_loss"])]
    diverged = len(table) - len(finite)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True, constrained_layout=True)
    for optimizer, group in finite.groupby("optimizer"):
        axes[0].scatter(group["lr"], group["mean_loss"], label=optimizer, s=18, alpha=0.8)
        axes[1].scatter(group["Nh1"], group["mean_loss"], label=optimizer, s=18, alpha=0.8)
    axes[0].set_xscale("log")
    axes[0].set_xlabel("learning rate")
    axes[1].set_xlabel("Nh1 (first hidden layer)")
    axes[0].set_ylabel("mean held-out loss (CV)")
    for ax in axes:
        ax.set_yscale("log")
        ax.grid(True, which="both", alpha=0.3)
    axes[1].legend(title="optimizer")
    fig.suptitle(
        f"Random search: {len(finite)} configurations"
        + (f" ({diverged} diverged, not shown)" if diverged else "")
    )
    save_png(fig, path, dpi=120)
