"""The workflow's configuration: loading a config file, and every check that a run starts with.

``validate_config`` is what the Snakefile runs before planning any job: numbers given as
strings or as whole-number floats become numbers of the right kind, then the JSON schema
(``workflow/schemas/config.schema.yaml``), then the checks no schema can express (orderings,
sums, finiteness, and the limits that MNIST and the machine put on the values). Each problem is
one line that names the key, what is allowed and the value found.

Standard library, PyYAML and jsonschema only (all three come with Snakemake): the Snakefile
imports this module when it plans a run.
"""

from __future__ import annotations

import copy
import math
import os
from pathlib import Path

from .constants import (
    EVAL_BATCH_SIZE,
    MNIST_TRAIN_CLASS_COUNTS,
    N_CLASSES,
    N_PIXELS,
    VALID_FRACTION,
)
from .trials import (
    TRAINING_HYPERPARAMETERS,
    dimension,
    old_key_problems,
    space_problems,
    widest,
)

SCHEMA = Path(__file__).resolve().parents[1] / "schemas" / "config.schema.yaml"


class ConfigError(ValueError):
    pass


def load_yaml_file(path, what: str = "config file") -> dict:
    """A YAML mapping from ``path``; an empty file, a syntax error or a top level that is not a
    mapping raises ConfigError naming the file (and the line)."""
    import yaml

    try:
        with open(path) as handle:
            data = yaml.safe_load(handle)
    except FileNotFoundError:
        raise ConfigError(f"{what} {path} does not exist") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f", line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or str(err)
        raise ConfigError(f"{what} {path}{where}: not valid YAML ({problem})") from None
    if data is None:
        raise ConfigError(
            f"{what} {path} is empty: it must map config keys to values "
            "(see config.yaml for every key), or be left out"
        )
    if not isinstance(data, dict):
        raise ConfigError(
            f"{what} {path} must map config keys to values, but its top level is a "
            f"{type(data).__name__}"
        )
    return data


# Mappings that an override replaces as a whole instead of merging into: a config that gives
# {choice: {SGD: 1.0}} as the optimizer, {uniform: [...]} for a loguniform lr, or {} as its
# references, means only those.
REPLACED_MAPPINGS = (
    *(("search", "space", name) for name in TRAINING_HYPERPARAMETERS),
    ("final", "references"),
)


def merge_config(
    defaults: dict, overrides: dict, replaced=REPLACED_MAPPINGS, path: tuple = ()
) -> dict:
    """``defaults`` with ``overrides`` applied key by key, as Snakemake merges --configfile and
    --config into the workflow's config, except that the mappings at the key paths of
    ``replaced`` are replaced whole. Neither argument is changed."""
    merged = copy.deepcopy(defaults)
    for key, value in overrides.items():
        here = (*path, key)
        if isinstance(value, dict) and isinstance(merged.get(key), dict) and here not in replaced:
            value = merge_config(merged[key], value, replaced, here)
        merged[key] = copy.deepcopy(value)
    return merged


def load_schema(schema_path=SCHEMA) -> dict:
    return load_yaml_file(schema_path, "schema")


def _resolve(schema: dict, root: dict) -> dict:
    if "$ref" in schema:  # the schema uses local references only: "#/$defs/name"
        target = root
        for part in schema["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        return target
    return schema


def coerce_numbers(value, schema: dict, root: dict | None = None):
    """``value`` with numbers written another way turned into numbers of the kind ``schema``
    expects: numeric strings (Snakemake parses a nested ``--config search="{n_trials: 8}"``
    with YAML's BaseLoader, so the 8 arrives as "8"), whole-number floats where an integer is
    meant (``n_trials: 3.0`` means 3; 2.5 stays and the schema rejects it) and integers where a
    number is (``ascent_step_size: 10`` means 10.0). The space's values are typed by the
    space itself (``trials.dimension``)."""
    root = root or schema
    schema = _resolve(schema, root)
    kind = schema.get("type")
    if isinstance(value, str) and kind in ("integer", "number"):
        try:
            number = float(value)
        except ValueError:
            return value
        value = number
    if isinstance(value, float) and kind == "integer" and value.is_integer():
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool) and kind == "number":
        return float(value)  # 10 means 10.0: a number written another way is no change
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        return {
            key: coerce_numbers(
                item, properties.get(key, extra if isinstance(extra, dict) else {}), root
            )
            for key, item in value.items()
        }
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [coerce_numbers(item, schema["items"], root) for item in value]
    return value


def schema_errors(config: dict, schema: dict) -> list[str]:
    """Every violation of the JSON schema, as "config key a.b: what is wrong" lines."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema)
    lines = []
    for error in sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.path))):
        key = ".".join(str(part) for part in error.absolute_path) or "(top level)"
        if error.validator == "additionalProperties":
            lines += unknown_key_lines(error, schema)
            continue
        # the description of the value's own schema says what is allowed; for a missing or
        # unknown key the schema at hand is the enclosing object's, so it says nothing useful
        own = error.validator not in ("required", "additionalProperties")
        allowed = error.schema.get("description", "") if own else ""
        lines.append(f"config key {key}: {error.message}" + (f" ({allowed})" if allowed else ""))
    return lines


# Keys of earlier releases or common slips, and the key meant.
MOVED_KEYS = {
    "search.n_configs": "search.n_trials",
    "search.n_trial": "search.n_trials",
    "search.trials": "search.n_trials",
    "search.epochs": "search.max_epochs",
    "final.reference_configs": "final.references",
    "final.top_n": "final.top_k",
    "final.max_epochs": "final.epochs",
    "n_trials": "search.n_trials",
    "folds": "search.folds",
    "top_k": "final.top_k",
    "max_epochs": "search.max_epochs",
    "epochs": "final.epochs",
    "references": "final.references",
}


def _all_keys(schema: dict, prefix: str = "") -> list[str]:
    keys = []
    for name, sub in schema.get("properties", {}).items():
        keys.append(f"{prefix}{name}")
        keys += _all_keys(sub, f"{prefix}{name}.")
    return keys


def unknown_key_lines(error, schema: dict) -> list[str]:
    """ "config key a.b: unknown", with the key meant: a key of an earlier release, a known slip,
    or the closest key of the schema."""
    import difflib

    from .trials import OLD_SEARCH_KEYS

    where = [str(part) for part in error.absolute_path]
    known = _all_keys(schema)
    lines = []
    for name in sorted(set(error.instance) - set(error.schema.get("properties", {}))):
        key = ".".join([*where, name])
        if where == ["search"] and name in OLD_SEARCH_KEYS:
            lines += old_key_problems({name: error.instance[name]})
            continue
        meant = MOVED_KEYS.get(key) or next(
            iter(difflib.get_close_matches(key, known, n=1, cutoff=0.75)), None
        )
        if meant is None:  # the same name elsewhere: n_trials at the top level
            meant = next((k for k in known if k.rsplit(".", 1)[-1] == name), None)
        hint = f"; did you mean {meant}?" if meant else ""
        lines.append(f"config key {key}: unknown{hint} (config.yaml lists every key)")
    return lines


def _numbers(value, key=""):
    """(key, number) for every number in a nested config value."""
    if isinstance(value, bool):
        return
    if isinstance(value, (int, float)):
        yield key, value
    elif isinstance(value, dict):
        for name, item in value.items():
            yield from _numbers(item, f"{key}.{name}" if key else str(name))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _numbers(item, f"{key}[{index}]")


def machine_memory_mb() -> float:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**20


# Memory of a training job beside the network: the Python process with torch, skorch and the
# data (measured: 1.15-1.35 GB peak for the report's shapes).
TRAINING_BASE_MB = 1400


def training_memory_mb(nh1: int, nh2: int, batch_size: int) -> float:
    """Estimated peak memory of a training job for a network of widths ``nh1``, ``nh2``:
    weights, gradients and two optimizer moments (plus a fused-step copy), and the largest
    layer activations of a training or an evaluation batch, forward and backward."""
    parameters = N_PIXELS * nh1 + nh1 + nh1 * nh2 + nh2 + N_CLASSES * nh2 + N_CLASSES
    activations = max(batch_size, EVAL_BATCH_SIZE) * (nh1 + nh2 + N_CLASSES) * 4
    return TRAINING_BASE_MB + (parameters * 4 * 5 + activations * 4) / 2**20


def check_config(config: dict) -> list[str]:
    """The problems the schema cannot see, one line each (empty when there are none). Call
    after the schema found nothing."""
    search, final = config["search"], config["final"]
    problems = [
        f"config key {key}: must be a finite number, got {value}"
        for key, value in _numbers(config)
        if isinstance(value, float) and not math.isfinite(value)
    ]
    if problems:  # the checks below compare numbers
        return problems
    problems += space_problems(search["space"])
    problems += _reference_problems(config)
    if search["pruning"] == "halving" and search["halving"]["min_epochs"] >= search["max_epochs"]:
        problems.append(
            "config key search.halving.min_epochs: the first rung's budget must be below "
            f"search.max_epochs ({search['max_epochs']}), got {search['halving']['min_epochs']}"
        )
    if problems:  # the checks below read the space
        return problems
    if final["top_k"] > search["n_trials"]:
        problems.append(
            f"config key final.top_k: must be at most search.n_trials ({search['n_trials']}), "
            f"got {final['top_k']}"
        )
    problems += _data_limits(config)
    problems += _memory_limits(config)
    if config["mnist_dir"] and not Path(config["mnist_dir"]).is_dir():
        problems.append(
            f"config key mnist_dir: '{config['mnist_dir']}' is not a folder. Give the folder "
            'holding the four MNIST IDX files (.gz or uncompressed), or "" to download them.'
        )
    return problems


def _reference_problems(config: dict) -> list[str]:
    """A reference needs a value for every hyper-parameter the search draws."""
    space = config["search"]["space"]
    drawn = [n for n in TRAINING_HYPERPARAMETERS if isinstance(space.get(n), dict)]
    return [
        f"config key final.references.{name}: give {key}, which the search draws "
        f"(search.space.{key})"
        for name, reference in config["final"]["references"].items()
        for key in drawn
        if key not in reference
    ]


def _largest_batch(space: dict) -> int:
    declared = dimension("batch_size", space["batch_size"])
    if not isinstance(declared, dict):
        return declared
    if "choice" in declared:
        return max(declared["choice"])
    return declared["int"][1] - 1


def _fold_split_fits(train_images: int, rarest: int, folds: int) -> bool:
    """Whether skorch's stratified 20 % validation split of a CV fold's training images has
    every digit on both sides (scikit-learn's rule: each part at least one image per class,
    each class at least two images)."""
    fold_images = train_images * (folds - 1) // folds
    valid = math.ceil(VALID_FRACTION * fold_images)
    return (
        valid >= N_CLASSES
        and fold_images - valid >= N_CLASSES
        and rarest * (folds - 1) // folds >= 2
    )


def _data_limits(config: dict) -> list[str]:
    """What MNIST's size allows: every split the data go through (train/test, the CV folds,
    skorch's validation split of each fold) needs every digit on both sides."""
    fraction, folds = config["test_fraction"], config["search"]["folds"]
    n_images = sum(MNIST_TRAIN_CLASS_COUNTS)
    problems = []
    if min(fraction, 1 - fraction) * n_images < N_CLASSES:
        smallest = N_CLASSES / n_images
        problems.append(
            f"config key test_fraction: both parts of the split need at least one image of "
            f"each digit, so it must lie in [{smallest:.6f}, {1 - smallest:.6f}], got {fraction}"
        )
        return problems
    rarest = math.floor(min(MNIST_TRAIN_CLASS_COUNTS) * (1 - fraction))
    if folds > rarest:
        problems.append(
            f"config key search.folds: each fold needs every digit, and the training part "
            f"holds only {rarest} images of the rarest digit (5) at test_fraction {fraction}: "
            f"at most {rarest} folds, got {folds}"
        )
        return problems
    train_images = n_images - math.ceil(fraction * n_images)
    if not _fold_split_fits(train_images, rarest, folds):
        # the largest test part that still fits, for the message
        share = min(MNIST_TRAIN_CLASS_COUNTS) / n_images
        needed = next(
            n
            for n in range(train_images, n_images)
            if _fold_split_fits(n, math.floor(n * share), folds)
        )
        problems.append(
            f"config key test_fraction: the {train_images} training images left at "
            f"{fraction} give each of the {folds} CV folds too few images for skorch's 20 % "
            "validation split, which needs every digit on both of its sides: choose "
            f"test_fraction at most {math.floor((1 - needed / n_images) * 1e4) / 1e4:.4f} (or "
            "fewer search.folds)"
        )
    return problems


def _memory_limits(config: dict) -> list[str]:
    """The widest network the config can ask for must fit in this machine's memory."""
    space = config["search"]["space"]
    batch_size = _largest_batch(space)
    shapes = {"search.space.Nh1": (*widest(space), batch_size)}
    for name, reference in config["final"]["references"].items():
        shapes[f"final.references.{name}"] = (
            reference["Nh1"],
            reference["Nh2"],
            reference.get("batch_size", batch_size),
        )
    available = machine_memory_mb()
    problems = []
    for key, (nh1, nh2, batch) in shapes.items():
        needed = training_memory_mb(nh1, nh2, batch)
        if needed > available:
            problems.append(
                f"config key {key}: a network of widths {nh1} and {nh2} needs about "
                f"{needed / 1024:.1f} GB to train, more than this machine's "
                f"{available / 1024:.1f} GB: choose narrower layers"
            )
    return problems


def validate_config(config: dict, schema: dict | None = None) -> tuple[dict, list[str]]:
    """(the config with numbers coerced, problems): what the Snakefile checks before any job."""
    schema = schema or load_schema()
    config = coerce_numbers(config, schema)
    problems = schema_errors(config, schema)
    if not problems:
        problems = check_config(config)
    return config, problems


def check_cuda(device: str) -> None:
    """Raise ConfigError unless ``device`` ("cuda" or "cuda:N") exists on this machine. With
    torch importable (the project's venv) it asks torch; without (a conda deployment, where
    the Snakemake process has no torch) it looks for the NVIDIA driver."""
    try:
        import torch
    except ImportError:
        if Path("/proc/driver/nvidia/version").exists():
            return
        available = 0
    else:
        available = torch.cuda.device_count() if torch.cuda.is_available() else 0
    index = int(device.partition(":")[2] or 0)
    if index >= available:
        raise ConfigError(
            f"config key device is '{device}' but this machine has "
            + (f"{available} CUDA device(s)" if available else "no CUDA device")
            + ". Set device to 'auto' (the GPU where there is one, else the CPU) or 'cpu', "
            "or run where the GPU is (on SLURM, profiles/slurm-gpu)."
        )


def main(argv=None) -> int:
    """``python -m mnist_mlp.config [snakemake arguments]``: check the config files that the
    arguments name (``--configfile``/``--configfiles``) before Snakemake reads them, so that a
    broken one is reported with its name and line (``make run`` does this first)."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--configfile", "--configfiles", nargs="+", action="extend", default=[])
    known, _ = parser.parse_known_args(argv)
    try:
        for path in known.configfile:
            load_yaml_file(path)
    except ConfigError as err:
        print(f"invalid configuration: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
