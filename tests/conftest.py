"""Shared fixtures and helpers.

Tiers (``make test`` runs them all; ``make test-fast`` only the first):
- fast (no marker): every stage function in-process on a small synthetic MNIST-shaped dataset
  that the tests make themselves, and every config check; no Snakemake, no real data.
- ``workflow``: runs Snakemake, for what only Snakemake can show (planning and reruns, kill and
  resume, the report, end-to-end bad input); on the real MNIST.
- ``mnist``: checks on the real MNIST in-process.
- ``slurm``: the workflow on a local SLURM cluster.
The real MNIST is looked for in ../shared/data/mnist (or $MNIST_DIR); without it the tests that
need it skip, saying why (under CI=true they fail instead).
"""

from __future__ import annotations

import gzip
import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
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
    """``base`` with ``overrides`` applied as the workflow merges a config: nested dicts key by
    key, except a distribution of the space and the references, which are replaced whole."""
    from mnist_mlp.config import merge_config

    return merge_config(base, overrides)


def skip_or_fail(reason: str):
    """Skip a test that cannot run here, saying why; under CI (CI=true) fail instead: a skip
    there would pass CI without the thing tested."""
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


class Paths(dict):
    """A stage function's outputs as the rule scripts pass them (Snakemake's named lists):
    ``outputs.cv`` and ``outputs["layer1"]`` both work."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


# --- synthetic MNIST-shaped data ----------------------------------------------------------

SYNTHETIC_TRAIN, SYNTHETIC_TEST = 2000, 500
SYNTHETIC_BLEND, SYNTHETIC_NOISE = 0.6, 120.0


def _synthetic_digits(n: int, rng: np.random.Generator, templates: np.ndarray):
    """``n`` 28×28 uint8 images of 10 classes (balanced): each its class's template blended
    with another class's (up to 60 %), scaled and buried in noise, so that the classes overlap:
    a small network reaches 75-85 % in a few epochs, and networks differ (unlike clean
    templates, where every trial scored 100 % and no test could tell one model from another)."""
    labels = rng.permutation(np.arange(n) % 10).astype(np.uint8)
    other = (labels + rng.integers(1, 10, n)) % 10
    blend = rng.uniform(0, SYNTHETIC_BLEND, size=(n, 1, 1))
    scale = rng.uniform(0.6, 1.0, size=(n, 1, 1))
    images = (templates[labels] * (1 - blend) + templates[other] * blend) * scale
    images += rng.normal(0, SYNTHETIC_NOISE, size=(n, 28, 28))
    return np.clip(images, 0, 255).astype(np.uint8), labels


def write_idx(path: Path, array: np.ndarray) -> None:
    """An IDX file (the MNIST originals' format), gzipped when ``path`` ends in .gz."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        int(size).to_bytes(4, "big") for size in array.shape
    )
    content = header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wb") as handle:
        handle.write(content)


@pytest.fixture(scope="session")
def synthetic_mnist(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """A folder with the four MNIST IDX files (.gz) of a synthetic dataset, and the MD5s of
    their uncompressed contents (what the download stage checks)."""
    folder = tmp_path_factory.mktemp("synthetic_mnist")
    rng = np.random.default_rng(0)
    templates = (rng.random((10, 28, 28)) > 0.75) * 220.0
    train = _synthetic_digits(SYNTHETIC_TRAIN, rng, templates)
    test = _synthetic_digits(SYNTHETIC_TEST, rng, templates)
    arrays = dict(zip(MNIST_FILES, (*train, *test), strict=True))
    md5 = {}
    for name, array in arrays.items():
        write_idx(folder / f"{name}.gz", array)
        with gzip.open(folder / f"{name}.gz", "rb") as handle:
            md5[name] = hashlib.md5(handle.read()).hexdigest()
    return folder, md5


@pytest.fixture(scope="session")
def synthetic_npz(synthetic_mnist, tmp_path_factory) -> Path:
    """The dataset artifact of the synthetic MNIST, made by the download stage."""
    from mnist_mlp import data

    folder, md5 = synthetic_mnist
    path = tmp_path_factory.mktemp("synthetic_data") / "mnist.npz"
    data.download_mnist_stage(path, folder, expected_md5=md5)
    # the stages read only verified datasets: this one is the tests' own
    data.TRUSTED_DATASETS.add(data.sha256sum(path))
    return path


# --- the real MNIST and Snakemake ----------------------------------------------------------


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    missing = [name for name in MNIST_FILES if not (MNIST_DIR / f"{name}.gz").exists()]
    if missing and not all((MNIST_DIR / name).exists() for name in MNIST_FILES):
        skip_or_fail(f"real MNIST not found in {MNIST_DIR} (set MNIST_DIR to its folder)")
    return MNIST_DIR


@pytest.fixture(scope="session")
def mnist_npz(mnist_dir, tmp_path_factory) -> Path:
    """The workflow's dataset artifact, built once from the real MNIST."""
    from mnist_mlp.data import download_mnist_stage

    path = tmp_path_factory.mktemp("data") / "mnist.npz"
    download_mnist_stage(path, mnist_dir)
    return path


# The smallest run that still exercises every stage on real images: 2 trials, 2 folds,
# 2 epochs each; the best and the reference retrained for 2 epochs (one wave of jobs each on
# 2 cores); 200 ascent steps.
# The lab's hyper-parameters in the order every table and record shows them (the tests' own
# copy: the spec, not the package's constant).
LAB_PARAMETERS = ["Nh1", "Nh2", "dropout", "optimizer", "lr", "L2"]

TINY = {
    "device": "cpu",  # exact comparisons between runs and with reloaded models, on any host
    "search": {"n_trials": 2, "folds": 2, "max_epochs": 2},
    "final": {"top_k": 1, "epochs": 2},
    "figures": {"ascent_steps": 200},
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


def snakemake_command(workdir: Path, configfile: Path | None, *args, snakefile=None) -> list:
    command = [
        sys.executable,
        "-m",
        "snakemake",
        "--snakefile",
        str(snakefile or REPO / "Snakefile"),
    ]
    command += ["--directory", str(workdir)]
    if configfile is not None:
        command += ["--configfile", str(configfile)]
    # after --configfile, which takes every argument up to the next option
    return [*command, "--cores", "2", *args]


def run_snakemake(
    workdir: Path, configfile: Path | None, *args: str, check: bool = True, snakefile=None
):
    """Run the workflow (the repository's, or ``snakefile``) in ``workdir``."""
    command = snakemake_command(workdir, configfile, *args, snakefile=snakefile)
    result = subprocess.run(command, capture_output=True, text=True, cwd=workdir)
    if check and result.returncode != 0:
        raise AssertionError(
            f"snakemake failed ({result.returncode}):\n{result.stdout[-4000:]}\n"
            f"{result.stderr[-4000:]}"
        )
    return result


def planned_jobs(workdir: Path, configfile: Path, *args: str, snakefile=None) -> dict[str, int]:
    """Jobs a dry-run plans, by rule (empty when nothing is left to do)."""
    result = run_snakemake(workdir, configfile, "--dry-run", *args, snakefile=snakefile)
    output = result.stdout + result.stderr
    if "Nothing to be done" in output:
        return {}
    table = output.split("Job stats:", 1)[1]
    counts = dict(re.findall(r"^(\w+)\s+(\d+)\s*$", table, flags=re.MULTILINE))
    counts.pop("total", None)
    return {rule: int(count) for rule, count in counts.items()}


def copy_workflow(destination: Path) -> Path:
    """A copy of the workflow's code (Snakefile, config, workflow/, profiles/) to edit in a
    test; returns its Snakefile."""
    for name in ("Snakefile", "config.yaml"):
        shutil.copy2(REPO / name, destination / name)
    ignore = shutil.ignore_patterns("__pycache__")
    for name in ("workflow", "profiles"):
        shutil.copytree(REPO / name, destination / name, ignore=ignore)
    return destination / "Snakefile"


DATASET = "results/data/mnist.npz"
SPLIT = ("results/data/split/train_indices.npy", "results/data/split/test_indices.npy")


@pytest.fixture(scope="session")
def tiny_data(mnist_dir, tmp_path_factory) -> Path:
    """The workflow's data stage (download_mnist and split_train_test on the real MNIST) run
    once with the tiny configuration's seed and test fraction: its working directory."""
    workdir = tmp_path_factory.mktemp("tiny_data")
    configfile = write_config(workdir / "tiny.yaml", merged(TINY, {"mnist_dir": str(mnist_dir)}))
    run_snakemake(workdir, configfile, *SPLIT)
    return workdir


def seed_data(workdir: Path, tiny_data: Path, split: bool = True) -> None:
    """Put the data stage's outputs (``split``: the split too; it needs the tiny
    configuration's seed and test fraction) into ``workdir`` with Snakemake's records of them,
    as if that run had made them: a test about later stages skips two jobs of ~8 s each, and
    Snakemake judges the files exactly as it would have (a changed parameter still reruns)."""
    from mnist_mlp import records

    for output in (DATASET, *(SPLIT if split else ())):
        record = records.METADATA / records.record_name(output)
        for path in (Path(output), record):  # copy2 keeps the times: the split stays newer
            (workdir / path).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(tiny_data / path, workdir / path)


@pytest.fixture(scope="session")
def tiny_run(tiny_data, mnist_dir, tmp_path_factory):
    """A complete run of the tiny configuration on the real MNIST: (workdir, configfile)."""
    workdir = tmp_path_factory.mktemp("tiny_run")
    configfile = write_config(workdir / "tiny.yaml", merged(TINY, {"mnist_dir": str(mnist_dir)}))
    seed_data(workdir, tiny_data)
    run_snakemake(workdir, configfile)
    return workdir, configfile
