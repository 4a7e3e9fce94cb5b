"""The answer beyond one network: the retrained candidates as an ensemble, every candidate's
accuracy with its interval, and whether the winner really beats the runner-up.

The ensemble is the equal-weight mean of the softmax outputs of the best ``final.ensemble``
candidates by CV loss (0: all of them). Its members are chosen by the search alone, never by a
test set: the CV results hold no out-of-fold predictions from which weights could be fitted,
and the test part already chose the winner. Also measured, for comparison, the ensembles of the
best 3, 5 and all candidates. Intervals are 95 % Wilson intervals on the images measured on;
the winner's accuracy on the test part is biased upward by the choice itself and gets none.
"""

from __future__ import annotations

import logging

import numpy as np
import torch

from .data import load_mnist, load_part
from .io import read_table, write_json
from .model import load_model, save_ensemble
from .stats import mcnemar, wilson

log = logging.getLogger(__name__)

COMPARED_SIZES = (3, 5)  # beside the configured one and all candidates


def probabilities(module, X) -> torch.Tensor:
    """Softmax outputs of ``module`` on ``X``, in batches, on the CPU."""
    module.eval()
    found = []
    with torch.no_grad():
        for start in range(0, len(X), 4096):
            found.append(module(X[start : start + 4096]).softmax(dim=1))
    return torch.cat(found)


def _accuracy(correct: np.ndarray) -> dict:
    low, high = wilson(int(correct.sum()), len(correct))
    return {"accuracy": float(correct.mean()), "low": low, "high": high, "images": len(correct)}


def members_by_cv(summary, ranking) -> list[str]:
    """The retrained candidates (no references, none failed) in CV-loss order."""
    retrained = set(summary.loc[~summary["reference"] & (summary["status"] == "ok"), "trial"])
    return [trial for trial in ranking["trial"] if trial in retrained]


def build_ensemble_stage(
    data, test_indices, model_paths, summary_path, ranking_path, outputs, size
):
    """Rule build_ensemble: ``outputs.ensemble`` (the ensemble's network), ``outputs.summary``
    (its accuracies, those of the compared sizes, every candidate's with its interval) and
    ``outputs.comparison`` (the winner against the runner-up, and the ensemble against the
    winner, on the official test set)."""
    summary, ranking = read_table(summary_path), read_table(ranking_path)
    order = members_by_cv(summary, ranking)
    models = {path.split("/")[-2]: path for path in map(str, model_paths)}
    mnist = load_mnist(data)
    parts = {
        "official_test": load_part(mnist, None, official_test=True),
        "test_part": load_part(mnist, test_indices),
    }
    networks, probs = {}, {}
    for trial in order:
        module, checkpoint = load_model(models[trial])
        networks[trial] = (checkpoint["trial"], module)
        probs[trial] = {name: probabilities(module, X) for name, (X, _) in parts.items()}

    def correct(trials, part):
        mean = torch.stack([probs[t][part] for t in trials]).mean(dim=0)
        return (mean.argmax(dim=1) == parts[part][1]).numpy()

    chosen = order if size == 0 or size >= len(order) else order[:size]
    sizes = sorted({n for n in (*COMPARED_SIZES, len(chosen), len(order)) if n <= len(order)})
    variants = [
        {
            "members": order[:n],
            "rule": f"the best {n} candidates by CV loss" if n < len(order) else "every candidate",
            **{part: _accuracy(correct(order[:n], part)) for part in parts},
        }
        for n in sizes
    ]
    configured = next(v for v in variants if v["members"] == chosen)
    candidates = {
        trial: {part: _accuracy(correct([trial], part)) for part in parts} for trial in order
    }
    result = {
        "members": chosen,
        "rule": configured["rule"] + ", equal weights on their softmax outputs",
        "official_test": configured["official_test"],
        "test_part": configured["test_part"],
        "variants": variants,
        "candidates": candidates,
    }
    save_ensemble(
        outputs.ensemble,
        [networks[trial] for trial in chosen],
        {key: result[key] for key in ("members", "rule", "official_test", "test_part")},
    )
    write_json(outputs.summary, result)
    comparison = compare_winner(summary, probs, parts)
    if comparison["winner"]:
        winner_right = correct([comparison["winner"]], "official_test")
        comparison["ensemble"] = paired(correct(chosen, "official_test"), winner_right)
    write_json(outputs.comparison, comparison)
    log.info("ensemble of %d: %s", len(chosen), result["official_test"])
    return result


def paired(first: np.ndarray, second: np.ndarray) -> dict:
    """Two networks' right answers on the same images: the gap, the images only one got right,
    McNemar's exact test, and whether the gap is within noise (p >= 0.05)."""
    only_first, only_second = int((first & ~second).sum()), int((second & ~first).sum())
    p_value = mcnemar(only_first, only_second)
    return {
        "gap": float(first.mean() - second.mean()),
        "only_first_right": only_first,
        "only_second_right": only_second,
        "mcnemar_p": p_value,
        "within_noise": bool(p_value >= 0.05),
    }


def compare_winner(summary, probs, parts) -> dict:
    """The winner against the runner-up (the second by the winner's rule: test-part accuracy)
    on the official test set: the gap, and McNemar's exact test on their paired predictions."""
    eligible = summary[~summary["reference"] & (summary["status"] == "ok")]
    ordered = eligible["trial"].tolist()  # select_winner's order: the winner first
    if len(ordered) < 2:
        return {"winner": ordered[0] if ordered else None, "runner_up": None}
    winner, runner_up = ordered[:2]
    labels = parts["official_test"][1]
    right = {t: (probs[t]["official_test"].argmax(dim=1) == labels).numpy() for t in ordered[:2]}
    only_winner = int((right[winner] & ~right[runner_up]).sum())
    only_runner_up = int((right[runner_up] & ~right[winner]).sum())
    gap = float(right[winner].mean() - right[runner_up].mean())
    p_value = mcnemar(only_winner, only_runner_up)
    return {
        "winner": winner,
        "runner_up": runner_up,
        "official_gap": gap,
        "only_winner_right": only_winner,
        "only_runner_up_right": only_runner_up,
        "mcnemar_p": p_value,
        "within_noise": bool(p_value >= 0.05),
        "images": len(labels),
    }
