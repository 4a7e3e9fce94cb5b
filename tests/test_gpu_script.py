"""gpu/run_full_protocol.sh and gpu/prepare_carry.sh, as far as a machine without a GPU and
without network can run them: the wheel install path (a wheel made here), a tiny protocol with
``--device cpu`` stopped by its time budget and then resumed to the winner, and the carry
preparation's plan (``--dry-run``: the download itself needs PyPI and is not tested here)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
from conftest import REPO

pytestmark = pytest.mark.workflow

RUN = REPO / "gpu" / "run_full_protocol.sh"
PREPARE = REPO / "gpu" / "prepare_carry.sh"
# A smaller protocol than the other workflow tests' (2 trials, 2 folds, 1 epoch; the best
# retrained for 1 epoch, no reference), as the script's pass-through Snakemake arguments; also
# checks that --config and --set-threads are merged with the script's own.
TINY_ARGS = [
    "--config",
    "search={n_trials: 2, folds: 2, max_epochs: 1}",
    "final={top_k: 1, epochs: 1, references: {}}",
    "figures={ascent_steps: 20}",
    "--set-threads",
    "retrain=1",  # two retrainings at once on two cores
]
WINNER_KEYS = {
    "trial",
    "params",
    "test_accuracy",
    "official_test_accuracy",
    "whole_dataset_accuracy",
}


def run_script(*args: str, tmp_path: Path, env: dict | None = None, timeout: int = 900):
    environment = {key: value for key, value in os.environ.items() if key != "OUT"}
    environment.update(TMPDIR=str(tmp_path), **(env or {}))
    result = subprocess.run(
        ["bash", str(RUN), "--python", sys.executable, "--device", "cpu", *args],
        capture_output=True,
        text=True,
        env=environment,
        timeout=timeout,
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


def test_carried_wheels_are_installed_once_then_found(mnist_dir, tmp_path):
    wheels, site = tmp_path / "wheels", tmp_path / "site"
    make_wheel(wheels)
    common = ["--setup-only", "--wheels", str(wheels), "--site", str(site)]
    common += ["--mnist", str(mnist_dir), "--out", str(tmp_path / "out")]
    result, output = run_script(*common, tmp_path=tmp_path)
    assert result.returncode == 0, output
    assert "installing 1 wheels" in output and "installed 1 wheels" in output
    assert (site / "gpu_carry_probe.py").exists()
    assert "snakemake 9.27.1 skorch 1.4.0" in output and "setup done" in output
    # a second call finds the package in the site folder (first on PYTHONPATH): no install
    result, output = run_script(*common, tmp_path=tmp_path)
    assert result.returncode == 0, output
    assert "already installed" in output and "installing" not in output


def test_missing_mnist_stops_the_setup(tmp_path):
    result, output = run_script(
        "--setup-only",
        "--wheels",
        str(tmp_path),
        "--mnist",
        str(tmp_path),
        "--out",
        str(tmp_path / "out"),
        tmp_path=tmp_path,
    )
    assert result.returncode != 0
    assert "MNIST file" in output and "--mnist" in output
    assert not (tmp_path / "out").exists()  # nothing written before the workflow runs


def test_budget_stop_reports_progress_and_a_resume_reaches_the_winner(mnist_dir, tmp_path):
    out = tmp_path / "out"
    common = ["--wheels", str(tmp_path / "no-wheels"), "--mnist", str(mnist_dir)]
    common += ["--out", str(out), "--progress-s", "5"]

    # 1. A budget that stops Snakemake early (during the data or search stage): a report,
    # not nothing.
    result, output = run_script(
        *common, "--budget-s", "12", "--", *TINY_ARGS, tmp_path=tmp_path, env={"RESERVE_S": "5"}
    )
    assert result.returncode == 124, output
    assert "snakemake stopped by the time budget" in output
    assert "stopped by the time budget:" in output and "not reached" in output
    assert "none (the run did not reach select_winner)" in output
    assert (out / "report.txt").exists() and (out / "snakemake.log.gz").exists()
    workdir = Path(output.split("working directory: ")[1].split()[0])
    assert workdir.parent == tmp_path and (workdir / ".snakemake").is_dir()

    # 2. The same working directory again, without a budget: resumes and completes.
    for stale in out.iterdir():
        stale.unlink()
    result, output = run_script(
        *common, "--workdir", str(workdir), "--", *TINY_ARGS, tmp_path=tmp_path
    )
    assert result.returncode == 0, output
    assert f"resuming in {workdir}" in output
    assert "snakemake: complete" in output
    stages = ("setup", "data", "search", "final", "figures", "total")
    stage_lines = {line.split()[0]: line for line in output.splitlines() if line.startswith(stages)}
    assert set(stage_lines) == set(stages), output
    for stage in ("setup", "final", "figures", "total"):
        assert re.match(rf"{stage} +\d+\.\d s  ", stage_lines[stage]), output
    # the search: the CV jobs the stopped run left, all done now (or none were left)
    if "complete before this run" in stage_lines["search"]:
        cv_jobs_now = 0
    else:
        resumed = re.search(r" (\d) of \1 cross_validate jobs", stage_lines["search"])
        assert resumed, output
        cv_jobs_now = int(resumed.group(1))
    retrained = re.search(r" (1) of \1 retrain jobs", stage_lines["final"])
    assert retrained, output
    assert "== winner ==" in output and "official test set" in output

    # the output folder: at most 8 files (what the GPU tool sends back), the compact results
    names = {path.name for path in out.iterdir()}
    assert names == {
        "report.txt",
        "ranking.tsv",
        "summary.tsv",
        "winner.json",
        "benchmarks.tsv",
        "snakemake.log.gz",
        "figures.tar.gz",
        "results.tar.gz",
    }
    winner = json.loads((out / "winner.json").read_text())
    assert WINNER_KEYS <= set(winner)
    assert f"trial {winner['trial']}:" in output
    assert winner["epochs"] == 1  # the merged --config reached the workflow
    ranking = (out / "ranking.tsv").read_text().splitlines()
    assert len(ranking) == 1 + 2
    benchmarks = [line.split("\t") for line in (out / "benchmarks.tsv").read_text().splitlines()]
    assert benchmarks[0][:3] == ["stage", "trial", "s"]
    # the training jobs of this run
    expected = ["final"] * int(retrained.group(1)) + ["search"] * cv_jobs_now
    assert sorted(row[0] for row in benchmarks[1:]) == expected
    with tarfile.open(out / "figures.tar.gz") as archive:
        figures = archive.getnames()
    assert any(name.endswith("learning_curves.png") for name in figures)
    assert any(name.endswith("receptive_fields_layer1.png") for name in figures)
    with tarfile.open(out / "results.tar.gz") as archive:
        archived = archive.getnames()
    assert "command.txt" in archived and not any(name.endswith(".pt") for name in archived)
    assert (out / "report.txt").read_text().count("\n") > 8


def test_prepare_carry_dry_run_needs_no_network(mnist_dir):
    result = subprocess.run(
        ["bash", str(PREPARE), "--dry-run", "--mnist-src", str(mnist_dir)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "snakemake==9.27.1" in output and "skorch==1.4.0" in output
    assert "jsonschema==" in output  # the Snakefile's validation needs it; the image lacks it
    # what the GPU machine has is not carried
    for present in ("torch==", "numpy==", "pandas==", "scikit-learn==", "pyyaml=="):
        assert present not in output
    assert "dry run: would download" in output
