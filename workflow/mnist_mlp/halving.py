"""Successive halving over the epoch budget (``search.pruning: halving``).

The trials of a batch (all of them for the random sampler, each TPE batch for TPE) train every
fold up to the first rung's budget, ``min_epochs`` epochs per fold; then, of the best ``1/eta``
of all the trials that reached the rung (by their rung score: the mean over folds of the
lowest validation loss so far, what early stopping watches; a trial that completed there by its
CV loss), those still training go on from where they stopped to ``min_epochs * eta`` epochs,
and so on (ASHA's rule, Li et al. 2020: the top ``1/eta`` of the results recorded at a rung);
the last rung is ``max_epochs``, where every trial left completes. A trial whose folds all stop
early (or that diverges) completes at the rung where that happens and leaves the race; it still
counts at that rung, so that a trial still training is pruned only when ``1/eta`` of the rung
scored better, never for being behind the best of a few that stopped early. A completed
trial's result is exactly the one the lab's protocol gives it (a paused fit goes on from its
saved state: weights, optimizer, early-stopping count, random state); a pruned trial has only
its rung scores, and ranks after every completed one.

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
    (it goes on) or pruned. Of the ``n`` trials at the rung, ranked by score (a finished trial
    by its CV loss, a diverged one last; ties by trial id), those still running among the best
    ``ceil(n / eta)`` are promoted; at the last rung every trial has finished."""
    running = [r["trial"] for r in results if r["status"] == "running"]
    if running and last:
        raise ValueError(f"the last rung left trials running: {running}")
    best = sorted(results, key=lambda r: (_or_inf(_rung_score(r)), r["trial"]))
    promoted = {
        r["trial"] for r in best[: math.ceil(len(results) / eta)] if r["status"] == "running"
    }
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


def _rung_score(result: dict):
    """What ranks a trial at its rung: its score while it trains, its CV loss once complete."""
    if result["status"] == "running":
        return result["score"]
    return result["mean_loss"] if result["status"] == "ok" else math.inf


def _or_inf(value) -> float:
    return value if isinstance(value, (int, float)) and math.isfinite(value) else math.inf
