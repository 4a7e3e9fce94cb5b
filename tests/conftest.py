"""Shared fixtures: the real MNIST copy, config files, and running Snakemake in a scratch dir."""

from __future__ import annotations

import copy
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
# CI and the developers' machines have the real MNIST beside the checkout; elsewhere set
# MNIST_DIR to a folder holding the four IDX files.
MNIST_DIR = Path(os.environ.get("MNIST_DIR", REPO.parent / "shared" / "data" / "mnist"))
MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


def default_config() -> dict:
    return yaml.safe_load((REPO / "config.yaml").read_text())


def merged(base: dict, overrides: dict) -> dict:
    """``base`` with ``overrides`` applied, nested dicts merged key by key."""
    result = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merged(result[key], value)
        else:
            result[key] = value
    return result


# The smallest run that still exercises every stage on real images: 3 configurations,
# 2 folds, 2 epochs each.
TINY = {
    "device": "cpu",  # exact comparisons between runs and with reloaded models, on any host
    "search": {"n_configs": 3, "folds": 2, "max_epochs": 2},
    "final": {"top_k": 2, "epochs": 2},
}


def write_config(path: Path, overrides: dict | None = None, base: dict | None = None) -> Path:
    config = merged(base if base is not None else default_config(), overrides or {})
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def variant(tiny_run, tmp_path: Path, overrides: dict) -> tuple[Path, Path]:
    """The tiny run's working directory with a config changed by ``overrides``, for dry-runs."""
    workdir, configfile = tiny_run
    base = yaml.safe_load(configfile.read_text())
    return workdir, write_config(tmp_path / "variant.yaml", overrides, base=base)


def run_snakemake(workdir: Path, configfile: Path, *args: str, check: bool = True):
    """Run the repository's workflow with ``workdir`` as its working directory."""
    command = [
        sys.executable,
        "-m",
        "snakemake",
        "--snakefile",
        str(REPO / "Snakefile"),
        "--directory",
        str(workdir),
        "--configfile",
        str(configfile),
        "--cores",
        "2",
        *args,
    ]
    result = subprocess.run(command, capture_output=True, text=True, cwd=workdir)
    if check and result.returncode != 0:
        raise AssertionError(
            f"snakemake failed ({result.returncode}):\n{result.stdout[-4000:]}\n"
            f"{result.stderr[-4000:]}"
        )
    return result


def planned_jobs(workdir: Path, configfile: Path, *args: str) -> dict[str, int]:
    """Jobs a dry-run plans, by rule (empty when nothing is left to do)."""
    result = run_snakemake(workdir, configfile, "--dry-run", *args)
    output = result.stdout + result.stderr
    if "Nothing to be done" in output:
        return {}
    table = output.split("Job stats:", 1)[1]
    counts = dict(re.findall(r"^(\w+)\s+(\d+)\s*$", table, flags=re.MULTILINE))
    counts.pop("total", None)
    return {rule: int(count) for rule, count in counts.items()}


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    missing = [name for name in MNIST_FILES if not (MNIST_DIR / f"{name}.gz").exists()]
    if missing and not all((MNIST_DIR / name).exists() for name in MNIST_FILES):
        reason = f"real MNIST not found in {MNIST_DIR} (set MNIST_DIR to its folder)"
        if os.environ.get("CI") == "true":  # a skip there would pass CI without real data
            pytest.fail(reason)
        pytest.skip(reason)
    return MNIST_DIR


@pytest.fixture(scope="session")
def mnist_npz(mnist_dir, tmp_path_factory) -> Path:
    """The workflow's dataset artifact, built once from the real MNIST."""
    from mnist_mlp.data import prepare_mnist

    path = tmp_path_factory.mktemp("data") / "mnist.npz"
    prepare_mnist(path, mnist_dir)
    return path


@pytest.fixture(scope="session")
def tiny_run(mnist_dir, tmp_path_factory):
    """A complete run of the tiny configuration on the real MNIST: (workdir, configfile)."""
    workdir = tmp_path_factory.mktemp("tiny_run")
    configfile = write_config(workdir / "tiny.yaml", merged(TINY, {"mnist_dir": str(mnist_dir)}))
    run_snakemake(workdir, configfile)
    return workdir, configfile
