"""The report's random sampler of hyper-parameter configurations.

Each configuration is drawn from its own random stream, derived from (seed, config index), so
raising ``n_configs`` adds configurations without changing the existing ones, and each sample
job can run on its own.
"""

from __future__ import annotations

import re

import numpy as np

CONFIG_ID_DIGITS = 4  # ids c0000..c9999; the schema caps n_configs at 10000
CONFIG_ID_PATTERN = rf"c\d{{{CONFIG_ID_DIGITS}}}"
_SAMPLER_STREAM = 1  # separates the sampler's streams from any other use of the seed


def config_id(index: int) -> str:
    return f"c{index:0{CONFIG_ID_DIGITS}d}"


def config_index(cid: str) -> int:
    if not re.fullmatch(CONFIG_ID_PATTERN, cid):
        raise ValueError(f"not a config id: {cid!r} (expected c followed by 4 digits)")
    return int(cid[1:])


def config_ids(n_configs: int) -> list[str]:
    return [config_id(i) for i in range(n_configs)]


def search_space(search: dict) -> dict:
    """The sampler's part of the ``search`` config section (and only it)."""
    keys = ("Nh1", "dropout", "log10_lr", "log10_L2", "optimizers")
    return {key: search[key] for key in keys}


def sample_config(seed: int, index: int, space: dict) -> dict:
    """Draw configuration ``index`` as in the report.

    Nh1 = randint(lo, hi) and Nh2 = randint(lo, Nh1), upper bounds exclusive as numpy's randint,
    except that Nh1 = lo is never drawn: it would leave no Nh2 below it (the report's code would
    stop there with "low >= high");
    the optimizer by the given probabilities; dropout uniform; lr and L2 log-uniform.
    """
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(_SAMPLER_STREAM, index)))
    lo, hi = space["Nh1"]
    nh1 = int(rng.integers(lo + 1, hi))
    nh2 = int(rng.integers(lo, nh1))
    names = sorted(space["optimizers"])
    probabilities = np.array([space["optimizers"][name] for name in names], dtype=float)
    optimizer = names[int(rng.choice(len(names), p=probabilities / probabilities.sum()))]
    return {
        "config_id": config_id(index),
        "Nh1": nh1,
        "Nh2": nh2,
        "dropout": float(rng.uniform(*space["dropout"])),
        "optimizer": optimizer,
        "lr": float(10 ** rng.uniform(*space["log10_lr"])),
        "L2": float(10 ** rng.uniform(*space["log10_L2"])),
    }


HYPERPARAMETERS = ("Nh1", "Nh2", "dropout", "optimizer", "lr", "L2")


def write_sampled_config(path, seed: int, cid: str, space: dict) -> dict:
    """Draw configuration ``cid`` and store it as JSON at ``path``."""
    from .io import write_json

    drawn = sample_config(seed, config_index(cid), space)
    write_json(path, drawn)
    return drawn
