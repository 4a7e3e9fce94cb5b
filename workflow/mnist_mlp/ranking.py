"""Gather the search: the configs table, the ranking by mean held-out loss, the search plot."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from .io import write_text
from .plotting import pyplot, save_png
from .sampling import HYPERPARAMETERS

FLOAT_FORMAT = "%.8g"  # enough digits to tell configurations apart, stable across runs


def _to_tsv(table: pd.DataFrame) -> str:
    return table.to_csv(sep="\t", index=False, float_format=FLOAT_FORMAT, na_rep="NaN")


def write_table(table, path) -> None:
    """A TSV of a DataFrame or of a list of dicts, floats with ``FLOAT_FORMAT``, NaN as NaN."""
    write_text(path, _to_tsv(pd.DataFrame(table)))


def configs_table(configs: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(configs, columns=["config_id", *HYPERPARAMETERS]).sort_values("config_id")


def write_configs_table(configs: list[dict], path) -> None:
    write_table(configs_table(configs), path)


def build_ranking(cv_results: list[dict]) -> pd.DataFrame:
    """One row per configuration, best (lowest mean held-out loss) first; diverged ones, whose
    loss is NaN, last. Ties are broken by config id so that the order is reproducible."""
    rows = [
        {
            "config_id": result["config_id"],
            **result["params"],
            "mean_loss": np.nan if result["mean_loss"] is None else result["mean_loss"],
            "std_loss": np.nan if result["std_loss"] is None else result["std_loss"],
            "mean_accuracy": np.nan if result["mean_accuracy"] is None else result["mean_accuracy"],
            "mean_epochs": result["mean_epochs"],
            "status": result["status"],
        }
        for result in cv_results
    ]
    columns = ["config_id", *HYPERPARAMETERS, "mean_loss", "std_loss", "mean_accuracy"]
    table = pd.DataFrame(rows, columns=[*columns, "mean_epochs", "status"]).sort_values(
        ["mean_loss", "config_id"], na_position="last", kind="stable"
    )
    table.insert(0, "rank", np.arange(1, len(table) + 1))
    return table.reset_index(drop=True)


def write_ranking(table: pd.DataFrame, tsv, scores_dat, params_dat) -> None:
    """``ranking.tsv`` and the report's two files: ``sorted_scores.dat`` (the mean held-out
    loss, one line per configuration, best first) and ``sorted_params.dat`` (the configuration
    of the same line, as JSON)."""
    write_table(table, tsv)
    write_text(scores_dat, "".join(f"{FLOAT_FORMAT % loss}\n" for loss in table["mean_loss"]))
    records = table[["config_id", *HYPERPARAMETERS]].to_dict("records")
    lines = [json.dumps(record) for record in records]
    write_text(params_dat, "\n".join(lines) + "\n")


def read_table(path) -> pd.DataFrame:
    """A TSV written by ``write_table``."""
    return pd.read_csv(path, sep="\t")


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
