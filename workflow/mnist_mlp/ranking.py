"""Ranking the search: every trial's CV result in one table, best first, and the report's two
.dat files."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from .io import FLOAT_FORMAT, read_result, read_table, write_table, write_text
from .trials import TRAINING_HYPERPARAMETERS


def _nan(value):
    return np.nan if value is None else value


def build_ranking(results: list[dict]) -> pd.DataFrame:
    """One row per trial, best (lowest mean held-out loss) first; diverged ones, whose loss is
    NaN, last. Ties are broken by trial id so that the order is reproducible.

    With successive halving each result is the rung where its trial finished: a trial still
    running there was pruned; it ranks after every completed trial (deeper rungs first, then by
    its rung score) and before the diverged ones; the columns rung, budget and score say where
    it stopped and how well."""
    names = [n for n in TRAINING_HYPERPARAMETERS if any(n in r["params"] for r in results)]
    halving = any("rung" in result for result in results)
    rows = []
    for result in results:
        pruned = result["status"] == "running"
        row = {
            "trial": result["trial"],
            **result["params"],
            "mean_loss": np.nan if pruned else _nan(result["mean_loss"]),
            "std_loss": np.nan if pruned else _nan(result["std_loss"]),
            "mean_accuracy": np.nan if pruned else _nan(result["mean_accuracy"]),
            "mean_epochs": result["mean_epochs"],
            "status": "pruned" if pruned else result["status"],
        }
        if halving:
            score = result["score"] if pruned else row["mean_loss"]
            row |= {"rung": result["rung"], "budget": result["budget"], "score": _nan(score)}
        rows.append(row)
    columns = ["trial", *names, "mean_loss", "std_loss", "mean_accuracy", "mean_epochs", "status"]
    if not halving:
        table = pd.DataFrame(rows, columns=columns).sort_values(
            ["mean_loss", "trial"], na_position="last", kind="stable"
        )
    else:
        table = pd.DataFrame(rows, columns=[*columns, "rung", "budget", "score"])
        order = table["status"].map({"ok": 0, "pruned": 1}).fillna(2)
        table = table.assign(_order=order, _deeper=-table["rung"]).sort_values(
            ["_order", "mean_loss", "_deeper", "score", "trial"], na_position="last", kind="stable"
        )
        table = table.drop(columns=["_order", "_deeper"])
    table.insert(0, "rank", np.arange(1, len(table) + 1))
    return table.reset_index(drop=True)


def best_so_far(ranking: pd.DataFrame) -> pd.DataFrame:
    """The best CV loss after n trials, in trial order (the order a sampler proposed them):
    per n from 1, the lowest ``mean_loss`` so far and its trial (NaN and None until a trial
    has a loss; the first of equal losses keeps the lead)."""
    best_loss, best_trial, rows = np.inf, None, []
    ordered = ranking.sort_values("trial")
    for trial, loss in zip(ordered["trial"], ordered["mean_loss"].astype(float), strict=True):
        if np.isfinite(loss) and loss < best_loss:
            best_loss, best_trial = loss, trial
        rows.append((best_loss if best_trial else np.nan, best_trial))
    index = pd.RangeIndex(1, len(rows) + 1, name="n")
    return pd.DataFrame(rows, columns=["mean_loss", "trial"], index=index)


def write_ranking(table: pd.DataFrame, tsv, scores_dat, params_dat) -> None:
    """``ranking.tsv`` and the report's two files: ``sorted_scores.dat`` (the mean held-out
    loss, one line per trial, best first) and ``sorted_params.dat`` (the hyper-parameters of
    the same line, as JSON)."""
    write_table(table, tsv)
    write_text(scores_dat, "".join(f"{FLOAT_FORMAT % loss}\n" for loss in table["mean_loss"]))
    names = [n for n in TRAINING_HYPERPARAMETERS if n in table.columns]
    records = table[["trial", *names]].to_dict("records")
    lines = [json.dumps(record) for record in records]
    write_text(params_dat, "\n".join(lines) + "\n")


def rank_trials_stage(result_paths, outputs, rung_tables=()) -> pd.DataFrame:
    """Rule rank_trials: the ranking and the report's two .dat files; with halving, every
    rung's decisions in one table (``outputs.rungs``)."""
    table = build_ranking([read_result(path) for path in result_paths])
    write_ranking(
        table,
        tsv=outputs.ranking,
        scores_dat=outputs.sorted_scores,
        params_dat=outputs.sorted_params,
    )
    if rung_tables:
        decisions = pd.concat([read_table(path) for path in rung_tables], ignore_index=True)
        write_table(decisions.sort_values(["rung", "trial"], kind="stable"), outputs.rungs)
    return table
