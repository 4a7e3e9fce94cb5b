"""Trials: the hyper-parameter sets the search samples (ids ``t0000``, ...) and the fixed
reference sets of the config (ids ``ref_<name>``), and the report's random sampler.

"config" in this project means the workflow's configuration (``config.yaml``); one sampled set
of hyper-parameters is a *trial*, as in Optuna or Ray Tune.

Pure standard library: the Snakefile samples every trial when it plans a run (each trial's
hyper-parameters reach its jobs as ``params``), and planning must work where only Snakemake is
installed. Each trial is drawn from its own stream, ``random.Random`` seeded with the string
"<seed>/<index>": raising ``n_trials`` adds trials without changing the existing ones. Only
``Random.random()`` is used, whose sequence for a given seed Python guarantees across versions
(``randint``, ``choice`` and numpy's generators carry no such promise).
"""

from __future__ import annotations

import math
import random
import re

TRIAL_ID_DIGITS = 4  # ids t0000..t9999; the schema caps n_trials at 10000
TRIAL_ID_PATTERN = rf"t\d{{{TRIAL_ID_DIGITS}}}"
REFERENCE_PREFIX = "ref_"
REFERENCE_ID_PATTERN = rf"{REFERENCE_PREFIX}[A-Za-z0-9_]+"
HYPERPARAMETERS = ("Nh1", "Nh2", "dropout", "optimizer", "lr", "L2")
# The sampler's part of the config's search section.
SEARCH_SPACE_KEYS = ("Nh1", "dropout", "log10_lr", "log10_L2", "optimizers")


def trial_id(index: int) -> str:
    return f"t{index:0{TRIAL_ID_DIGITS}d}"


def trial_index(tid: str) -> int:
    if not re.fullmatch(TRIAL_ID_PATTERN, tid):
        raise ValueError(f"not a trial id: {tid!r} (expected t followed by 4 digits)")
    return int(tid[1:])


def trial_ids(n_trials: int) -> list[str]:
    return [trial_id(i) for i in range(n_trials)]


def reference_id(name: str) -> str:
    return f"{REFERENCE_PREFIX}{name}"


def is_reference(tid: str) -> bool:
    return tid.startswith(REFERENCE_PREFIX)


def search_space(search: dict) -> dict:
    """The sampler's part of the ``search`` config section, optimizers in name order (so that
    the order they are written in does not count as a change)."""
    space = {key: search[key] for key in SEARCH_SPACE_KEYS}
    space["optimizers"] = dict(sorted(space["optimizers"].items()))
    return space


def _below(u: float, n: int) -> int:
    """An integer uniform on [0, n) from u uniform on [0, 1)."""
    return min(int(u * n), n - 1)


def _between(u: float, bounds) -> float:
    low, high = bounds
    return low + u * (high - low)


def sample_trial(seed: int, index: int, space: dict) -> dict:
    """Draw trial ``index`` as in the report.

    Nh1 = randint(lo, hi) and Nh2 = randint(lo, Nh1), upper bounds exclusive, except that
    Nh1 = lo is never drawn: it would leave no Nh2 below it (the report's code would stop there
    with "low >= high"); the optimizer by the given probabilities; dropout uniform; lr and L2
    log-uniform. Six uniforms are drawn in a fixed order whatever the space, so changing one
    range leaves the other hyper-parameters of each trial as they were.
    """
    u = random.Random(f"{seed}/{index}")
    u_nh1, u_nh2, u_opt, u_drop, u_lr, u_l2 = (u.random() for _ in range(6))
    lo, hi = space["Nh1"]
    nh1 = lo + 1 + _below(u_nh1, hi - lo - 1)
    nh2 = lo + _below(u_nh2, nh1 - lo)
    names = sorted(space["optimizers"])
    total = math.fsum(space["optimizers"].values())
    # the last optimizer with a positive probability, should rounding leave u above the sum
    cumulative, optimizer = 0.0, [name for name in names if space["optimizers"][name] > 0][-1]
    for name in names:
        cumulative += space["optimizers"][name] / total
        if u_opt < cumulative:
            optimizer = name
            break
    return {
        "trial": trial_id(index),
        "Nh1": nh1,
        "Nh2": nh2,
        "dropout": _between(u_drop, space["dropout"]),
        "optimizer": optimizer,
        "lr": 10 ** _between(u_lr, space["log10_lr"]),
        "L2": 10 ** _between(u_l2, space["log10_L2"]),
    }


def sample_trials(seed: int, n_trials: int, space: dict) -> dict[str, dict]:
    """Trial id -> hyper-parameters, for the first ``n_trials`` trials."""
    return {trial_id(i): sample_trial(seed, i, space) for i in range(n_trials)}


def reference_trial(name: str, values: dict) -> dict:
    """A reference of the config as a trial, in the sampler's key order and types (so that how
    the config writes it, 1e-3 or 0.001, in whatever key order, is no change)."""
    return {
        "trial": reference_id(name),
        "Nh1": int(values["Nh1"]),
        "Nh2": int(values["Nh2"]),
        "dropout": float(values["dropout"]),
        "optimizer": values["optimizer"],
        "lr": float(values["lr"]),
        "L2": float(values["L2"]),
    }


def reference_trials(references: dict) -> dict[str, dict]:
    """Trial id -> hyper-parameters of the config's ``final.references``, in name order."""
    return {
        reference_id(name): reference_trial(name, references[name]) for name in sorted(references)
    }


def write_trials_table(path, seed: int, n_trials: int, space: dict) -> list[dict]:
    """``trials.tsv``: every sampled trial, one row each, in id order."""
    from .io import write_table

    rows = list(sample_trials(seed, n_trials, space).values())
    write_table(rows, path)
    return rows
