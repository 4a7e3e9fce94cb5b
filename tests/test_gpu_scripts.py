"""gpu/run_full_protocol.sh and gpu/prepare_carry.sh, as far as a machine without a GPU and
without network can run them (shellcheck: tests/test_style.py): the wheel install path (a
wheel made here); a tiny protocol with ``--device cpu`` through the package's run tooling
(``mnist-mlp run start``), stopped by its time budget, then resumed to the winner, saved and
published; the carry preparation's plan (``--dry-run``). The GPU, MPS and the downloads are
not tested here.

The run writes ``runs/`` and ``docs/`` of the repository it runs from, so it runs from a copy of
the working tree in a temporary folder, never from the checkout."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
from conftest import MNIST_FILES, REPO

pytestmark = pytest.mark.workflow

RUN = Path("gpu") / "run_full_protocol.sh"
PREPARE = Path("gpu") / "prepare_carry.sh"
# 6 trials, 2 folds, 1 epoch (a --configfile); the best retrained for 1 epoch, no reference
TINY_SEARCH = "search: {n_trials: 6, folds: 2, max_epochs: 1}\n"
TINY = [
    "--config",
    "final={top_k: 1, epochs: 1, references: {}}",
    "--config",
    "figures={ascent_steps: 20}",
]


def run_script(repo: Path, *args: str, tmp_path: Path, env: dict | None = None):
    environment = {key: value for key, value in os.environ.items() if key != "OUT"}
    environment.update(TMPDIR=str(tmp_path), **(env or {}))
    result = subprocess.run(
        ["bash", str(repo / RUN), "--python", sys.executable, "--device", "cpu", *args],
        capture_output=True,
        text=True,
        env=environment,
        timeout=1200,
    )
    return result, result.stdout + result.stderr


def make_wheel(folder: Path, name: str = "gpu_carry_probe", version: str = "0.1") -> Path:
    """A minimal pure-Python wheel: a module and its dist-info."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}-{version}-py3-none-any.whl"
    info = f"{name}-{version}.dist-info"
    with zipfile.ZipFile(path, "w") as wheel:
        wheel.writestr(f"{name}.py", "CARRIED = True\n")
        wheel.writestr(
            f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
        )
        wheel.writestr(
            f"{info}/WHEEL",
            "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        )
        wheel.writestr(f"{info}/RECORD", "")
    return path


def fake_mnist(folder: Path) -> Path:
    """The four file names the setup looks for (it checks that they are there, no more)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in MNIST_FILES:
        (folder / f"{name}.gz").write_bytes(b"")
    return folder


def working_tree_copy(destination: Path) -> Path:
    """The checkout's tracked and untracked-not-ignored files, as the device tool sends them."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, listed):
        source = REPO / os.fsdecode(name)
        if source.is_file():
            target = destination / os.fsdecode(name)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return destination


def test_carried_wheels_are_installed_once(tmp_path):
    wheels, site = tmp_path / "wheels", tmp_path / "site"
    make_wheel(wheels)
    common = ["--setup-only", "--wheels", str(wheels), "--site", str(site)]
    common += ["--mnist", str(fake_mnist(tmp_path / "mnist")), "--out", str(tmp_path / "out")]
    result, output = run_script(REPO, *common, tmp_path=tmp_path)
    assert result.returncode == 0, output
    assert "installing 1 wheels" in output and (site / "gpu_carry_probe.py").exists()
    assert "snakemake 9.27.1, skorch 1.4.0" in output and "setup done" in output
    result, output = run_script(REPO, *common, tmp_path=tmp_path)  # the same wheels: no install
    assert result.returncode == 0, output
    assert "installed in" in output and "installing" not in output
    assert not (tmp_path / "out").exists()  # --setup-only writes no results


def test_missing_mnist_stops_the_setup(tmp_path):
    result, output = run_script(
        REPO,
        "--setup-only",
        "--mnist",
        str(tmp_path),
        "--out",
        str(tmp_path / "out"),
        tmp_path=tmp_path,
    )
    assert result.returncode != 0
    assert "MNIST file" in output and "--mnist" in output
    assert not (tmp_path / "out").exists()


def test_budget_stop_then_resume_to_the_winner(mnist_dir, tmp_path):
    repo = working_tree_copy(tmp_path / "repo")
    (tmp_path / "tiny.yaml").write_text(TINY_SEARCH)
    common = ["--mnist", str(mnist_dir), "--wheels", str(tmp_path / "none"), "--progress-s", "5"]
    common += ["--configfile", str(tmp_path / "tiny.yaml"), *TINY]

    # 1. Stopped by the budget: the run's process group ends with the script, a report comes
    # back all the same. The stop comes 20 s in (25 less the reserve): after the set-up (3 s
    # in CI, 7 s on a slower machine, 12 s with cold caches) and before the end of the run
    # (about 45 s in CI: 6 CV jobs of ~8 s, 2 at a time, a retraining, the figures). With 2
    # trials and the stop at 35 s, a fast CI machine finished the run within the budget.
    first = tmp_path / "out1"
    result, output = run_script(
        repo,
        *common,
        "--budget-s",
        "25",
        "--out",
        str(first),
        tmp_path=tmp_path,
        env={"RESERVE_S": "5"},
    )
    assert result.returncode == 124, output
    assert "stopped by the time budget" in output
    run = repo / "runs" / "gpu_run-here"
    assert json.loads((run / "run.json").read_text())["cores"] > 0
    pid = int((run / "snakemake.pid").read_text())
    state = Path(f"/proc/{pid}/stat")
    assert not state.exists() or state.read_text().split()[2] == "Z", "the run outlived the script"
    assert {"report.txt", "fullrun.log.gz", "logs.tar.gz"} <= {p.name for p in first.iterdir()}

    # 2. Again: `run resume` of the same run, to the winner.
    second = tmp_path / "out2"
    result, output = run_script(repo, *common, "--out", str(second), tmp_path=tmp_path)
    assert result.returncode == 0, output
    assert "resumed: gpu_run-here" in output
    assert "Stage: done; finished" in output and "winner t" in output
    assert "saved " in output and "cross_validate" in output  # `run save`, the cost table
    names = {path.name for path in second.iterdir()}
    assert names == {
        "report.txt",
        "fullrun.log.gz",
        "summary.md",
        "cost.tsv",
        "winner.json",
        "gpu_run.tar.gz",
        "logs.tar.gz",
    }
    winner = json.loads((second / "winner.json").read_text())
    assert winner["epochs"] == 1  # the --config items reached the workflow
    assert "1/1 retrainings (top 1 + 0 references)" in output
    with tarfile.open(second / "gpu_run.tar.gz") as archive:
        published = archive.getnames()
    assert "gpu_run/state.tar.gz" in published and "gpu_run/learning_curves.png" in published
    with tarfile.open(second / "logs.tar.gz") as archive:
        logs = archive.getnames()
    assert "profile/gpu.yaml" in logs and "run.json" in logs
    assert any(name.startswith("logs/final/retrain/") for name in logs)
    # nothing in the checkout itself
    assert not list((REPO / "docs").glob("gpu_run*"))


def test_prepare_carry_dry_run_needs_no_network(mnist_dir):
    result = subprocess.run(
        ["bash", str(REPO / PREPARE), "--dry-run", "--mnist-src", str(mnist_dir)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "snakemake==9.27.1" in output and "skorch==1.4.0" in output
    assert "jsonschema==" in output  # the Snakefile's validation needs it; the image lacks it
    for present in ("torch==", "numpy==", "pandas==", "scikit-learn==", "pyyaml=="):
        assert present not in output  # what the GPU machine has is not carried
    assert "dry run: would download" in output
