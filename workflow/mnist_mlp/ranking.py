"""Ranking the search: every trial's CV result in one table, best first, and the report's two
.dat files."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from .io import FLOAT_FORMAT, read_json, write_table, write_text
from .trials import HYPERPARAMETERS


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
    """Rule rank_trials: the ranking and the report's two .dat files."""
    table = build_ranking([read_json(path) for path in cv_paths])
    write_ranking(
        table,
        tsv=outputs.ranking,
        scores_dat=outputs.sorted_scores,
        params_dat=outputs.sorted_params,
    )
    return table
