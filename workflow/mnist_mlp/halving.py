"""Successive halving over the epoch budget (``search.pruning: halving``).

The trials of a batch (all of them for the random sampler, each TPE batch for TPE) train every
fold up to the first rung's budget, ``min_epochs`` epochs per fold; then the best ``1/eta`` of
those still training (by their rung score: the mean over folds of the lowest validation loss so
far, what early stopping watches) go on from where they stopped to ``min_epochs * eta``
epochs, and so on; the last rung is ``max_epochs``, where every trial left completes. A trial
whose folds all stop early (or that diverges) completes at the rung where that happens and
leaves the race. A completed trial's result is exactly the one the lab's protocol gives it (a
paused fit goes on from its saved state: weights, optimizer, early-stopping count, random
state); a pruned trial has only its rung scores, and ranks after every completed one.

Standard library only: the Snakefile reads the budgets when it plans a run.
"""

from __future__ import annotations

import math


def budgets(min_epochs: int, eta: int, max_epochs: int) -> list[int]:
    """The rungs' budgets in epochs per fold: ``min_epochs * eta**i`` below ``max_epochs``,
    then ``max_epochs`` (as Ray Tune's ASHA with grace_period, reduction_factor and max_t)."""
    rungs, budget = [], min_epochs
    while budget < max_epochs:
        rungs.append(budget)
        budget *= eta
    return [*rungs, max_epochs]


def decide(results: list[dict], eta: int, last: bool) -> list[dict]:
    """The decisions of one rung, one row per trial: complete or diverged (it finished), promoted
    (it goes on) or pruned. Of the trials still running, the best ``ceil(n / eta)`` by score are
    promoted (ties by trial id); at the last rung every trial has finished."""
    running = sorted(
        (r for r in results if r["status"] == "running"),
        key=lambda r: (_or_inf(r["score"]), r["trial"]),
    )
    if running and last:
        raise ValueError(f"the last rung left trials running: {[r['trial'] for r in running]}")
    promoted = {r["trial"] for r in running[: math.ceil(len(running) / eta)]}
    rows = []
    for result in sorted(results, key=lambda r: r["trial"]):
        if result["status"] == "running":
            decision = "promoted" if result["trial"] in promoted else "pruned"
            score = result["score"]
        else:
            decision = "complete" if result["status"] == "ok" else result["status"]
            score = result["mean_loss"]
        rows.append(
            {
                "trial": result["trial"],
                "rung": result["rung"],
                "budget": result["budget"],
                "score": score,
                "mean_epochs": result["mean_epochs"],
                "decision": decision,
            }
        )
    return rows


def _or_inf(value) -> float:
    return value if isinstance(value, (int, float)) and math.isfinite(value) else math.inf
