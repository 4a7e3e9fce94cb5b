"""Faults a user can hit: bad config, bad data, an interrupted or concurrent run, diverging
configurations; and what must hold regardless: determinism, memory within what jobs declare."""

import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import REPO, TINY, default_config, merged, run_snakemake, write_config

from mnist_mlp.io import read_json
from mnist_mlp.sampling import sample_config, search_space

pytestmark = pytest.mark.slow

RANKING = "results/search/ranking.tsv"

# One wrong value for every key of the schema, and the key the message must name.
BAD_VALUES = [
    ({"seed": -1}, "seed"),
    ({"seed": "zero"}, "seed"),
    ({"mnist_dir": 5}, "mnist_dir"),
    ({"test_fraction": 0}, "test_fraction"),
    ({"test_fraction": 1.5}, "test_fraction"),
    ({"device": "tpu"}, "device"),
    ({"unknown_key": 1}, "(top level): Additional properties are not allowed ('unknown_key'"),
    ({"search": {"n_configs": 0}}, "search.n_configs"),
    ({"search": {"n_configs": 2.5}}, "search.n_configs"),
    ({"search": {"folds": 1}}, "search.folds"),
    ({"search": {"Nh1": [600, 50]}}, "search.Nh1"),
    ({"search": {"Nh1": [50]}}, "search.Nh1"),
    ({"search": {"dropout": [0.4, 0.1]}}, "search.dropout"),
    ({"search": {"dropout": [0.0, 1.0]}}, "search.dropout"),
    ({"search": {"log10_lr": [-1, -4]}}, "search.log10_lr"),
    ({"search": {"log10_L2": ["a", -2]}}, "search.log10_L2"),
    ({"search": {"optimizers": {"Adam": 0.5, "RMSprop": 0.2}}}, "search.optimizers"),
    ({"search": {"optimizers": {"Adagrad": 1.0}}}, "search.optimizers"),
    ({"search": {"optimizers": {"Adam": 1.2, "RMSprop": -0.2}}}, "search.optimizers"),
    ({"search": {"patience": 0}}, "search.patience"),
    ({"search": {"max_epochs": 0}}, "search.max_epochs"),
    ({"search": {"batch_size": 0}}, "search.batch_size"),
    ({"final": {"top_k": 0}}, "final.top_k"),
    ({"final": {"top_k": 200}}, "final.top_k"),
    ({"final": {"epochs": 0}}, "final.epochs"),
    ({"final": {"reference_configs": {"bad-name": {}}}}, "final.reference_configs"),
    (
        {"final": {"reference_configs": {"report_winner": {"optimizer": "Lion"}}}},
        "final.reference_configs.report_winner.optimizer",
    ),
    ({"figures": {"n_neurons": 0}}, "figures.n_neurons"),
    ({"figures": {"output_neurons": 11}}, "figures.output_neurons"),
    ({"figures": {"ascent_steps": 0}}, "figures.ascent_steps"),
    ({"figures": {"ascent_step_size": 0}}, "figures.ascent_step_size"),
    ({"figures": {"ascent_start": 1.5}}, "figures.ascent_start"),
]


@pytest.mark.parametrize(("overrides", "key"), BAD_VALUES, ids=[k for _, k in BAD_VALUES])
def test_a_bad_config_value_stops_the_run_before_any_job(tmp_path, overrides, key):
    sentinel = tmp_path / "results" / "untouched.txt"
    sentinel.parent.mkdir()
    sentinel.write_text("keep")
    configfile = write_config(tmp_path / "bad.yaml", overrides)
    result = run_snakemake(tmp_path, configfile, check=False)
    message = result.stdout + result.stderr
    assert result.returncode != 0
    assert f"config key {key}" in message, message[-2000:]
    assert [p.name for p in (tmp_path / "results").iterdir()] == ["untouched.txt"]
    assert not (tmp_path / "logs").exists()


@pytest.mark.parametrize("fault", ["truncated", "altered", "missing", "wrong_dir"])
def test_bad_data_fails_the_download_with_file_and_checksum(mnist_dir, tmp_path, fault):
    import gzip

    local = tmp_path / "mnist"
    shutil.copytree(mnist_dir, local)
    name = "t10k-labels-idx1-ubyte"
    with gzip.open(local / f"{name}.gz") as handle:
        content = bytearray(handle.read())
    (local / f"{name}.gz").unlink()
    if fault == "truncated":
        (local / name).write_bytes(content[: len(content) // 2])
    elif fault == "altered":
        content[-1] ^= 0xFF
        (local / name).write_bytes(content)
    source = tmp_path / "nowhere" if fault == "wrong_dir" else local
    configfile = write_config(tmp_path / "config.yaml", {"mnist_dir": str(source)})
    result = run_snakemake(tmp_path, configfile, "results/data/mnist.npz", check=False)
    message = result.stdout + result.stderr
    assert result.returncode != 0
    if fault == "wrong_dir":
        assert "is not a folder" in message and "mnist_dir" in message
    elif fault == "missing":
        assert f"MNIST file {name}" in message and "missing" in message
    else:
        assert f"MNIST file {name} has MD5" in message
        assert "27ae3e4e09519cfbb04c329615203637" in message  # the expected checksum
    assert not (tmp_path / "results/data/mnist.npz").exists()
    leftovers = list((tmp_path / "results/data").glob("*")) if fault != "wrong_dir" else []
    assert leftovers == [], leftovers


def _start(workdir, configfile, *args):
    """Snakemake in its own process group, so that a kill takes its jobs with it."""
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile")]
    command += ["--directory", str(workdir), "--configfile", str(configfile), "--cores", "2"]
    with open(workdir / "first_run.log", "w") as log:  # a pipe nobody reads would block it
        return subprocess.Popen(
            [*command, *args],
            cwd=workdir,
            env=os.environ | {"PYTHONUNBUFFERED": "1"},  # the test follows the log live
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _finished_cv(workdir):
    return sorted(p.name for p in (workdir / "results/search/cv").glob("c*.json"))


def _finished_jobs(workdir):
    log = (workdir / "first_run.log").read_text()
    return "\n".join(line for line in log.splitlines() if line.startswith("Finished jobid"))


def _incomplete_files(workdir, configfile):
    """The outputs Snakemake holds for incomplete, as its refusal to plan lists them."""
    result = run_snakemake(workdir, configfile, RANKING, "--dry-run", check=False)
    message = result.stdout + result.stderr
    if "Incomplete files:" not in message:
        return set()
    listed = message.split("Incomplete files:", 1)[1].splitlines()
    return {line.strip() for line in listed if line.strip().startswith("results/")}


def test_a_killed_run_resumes_and_a_second_run_is_refused_meanwhile(mnist_dir, tmp_path):
    overrides = merged(TINY, {"mnist_dir": str(mnist_dir)})
    overrides["search"] |= {"n_configs": 4, "max_epochs": 5}
    configfile = write_config(tmp_path / "config.yaml", overrides)
    first = _start(tmp_path, configfile, RANKING)
    deadline = time.time() + 600
    # Snakemake logs "Finished jobid" after it has recorded the job as complete.
    while (
        "(Rule: cross_validate)" not in _finished_jobs(tmp_path)
        and time.time() < deadline
        and first.poll() is None
    ):
        time.sleep(0.5)
    assert first.poll() is None, (tmp_path / "first_run.log").read_text()[-3000:]
    # Freeze the run (its jobs included) so that the checks below cannot outlast the CV stage,
    # however fast the machine.
    os.killpg(first.pid, signal.SIGSTOP)
    try:
        # Meanwhile, a second snakemake in the same directory is refused: first because jobs
        # of the first run are under way (their outputs are marked incomplete), and when told
        # to rerun those, by Snakemake's lock.
        second = run_snakemake(tmp_path, configfile, RANKING, check=False)
        assert second.returncode != 0
        message = second.stdout + second.stderr
        assert "Incomplete files" in message or "cannot be locked" in message
        second = run_snakemake(tmp_path, configfile, RANKING, "--rerun-incomplete", check=False)
        assert second.returncode != 0
        assert "cannot be locked" in second.stdout + second.stderr
    finally:
        os.killpg(first.pid, signal.SIGKILL)  # the whole workflow, its running jobs included
        first.wait()
    finished = _finished_cv(tmp_path)
    assert 1 <= len(finished) < 4, "kill the run during the CV stage"
    for path in finished:  # what is at an output path is complete
        assert read_json(tmp_path / "results/search/cv" / path)["status"] == "ok"

    # A SIGKILL leaves the lock and the markers of the killed jobs behind: --unlock, then the
    # same command with --rerun-incomplete (as the README says). A job whose output was written
    # just before the kill, but not yet recorded as done by Snakemake, is still marked
    # incomplete and is rerun: that is Snakemake being safe, so the test asks it which ones.
    run_snakemake(tmp_path, configfile, "--unlock")
    marked = _incomplete_files(tmp_path, configfile)
    cv_dir = tmp_path / "results/search/cv"
    kept = {
        name: (cv_dir / name).stat().st_mtime_ns
        for name in finished
        if f"results/search/cv/{name}" not in marked
    }
    assert kept, "the CV job logged as finished is recorded as complete"
    resumed = run_snakemake(tmp_path, configfile, RANKING, "--rerun-incomplete")
    log = resumed.stdout + resumed.stderr
    reran = int(re.search(r"^cross_validate\s+(\d+)\s*$", log, re.MULTILINE).group(1))
    assert reran == 4 - len(kept)
    for name, mtime in kept.items():  # complete outputs are kept, not recomputed
        assert (cv_dir / name).stat().st_mtime_ns == mtime
    for path in (tmp_path / "results").rglob("*"):
        if path.suffix == ".json":
            json.loads(path.read_text())
        elif path.suffix == ".tsv":
            assert len(pd.read_csv(path, sep="\t")) > 0


def _diverging_seed(space, n_configs):
    """The first seed whose sample has SGD configurations with lr >= 3 (these diverge on MNIST
    in their first epoch) and at least two configurations with lr <= 1e-2 (these train)."""
    for seed in range(1000):
        drawn = [sample_config(seed, i, space) for i in range(n_configs)]
        exploding = [d for d in drawn if d["optimizer"] == "SGD" and d["lr"] >= 3]
        tame = [d for d in drawn if d["lr"] <= 1e-2]
        if exploding and len(tame) >= 2 and len(exploding) + len(tame) == n_configs:
            return seed, [d["config_id"] for d in exploding]
    raise AssertionError("no seed gives the wanted mix")


def test_diverging_configs_rank_last_and_are_not_retrained(mnist_dir, tmp_path):
    search = {"n_configs": 4, "log10_lr": [-3, 1.5]}
    config = merged(default_config(), merged(TINY, {"mnist_dir": str(mnist_dir), "search": search}))
    config["search"]["optimizers"] = {"SGD": 0.5, "Adam": 0.5}  # replaced, not merged
    config["final"]["reference_configs"] = {}
    config["seed"], exploding = _diverging_seed(search_space(config["search"]), 4)
    configfile = write_config(tmp_path / "config.yaml", base=config)
    run_snakemake(tmp_path, configfile)  # the workflow finishes
    ranking = pd.read_csv(tmp_path / RANKING, sep="\t")
    diverged = ranking[ranking["status"] == "diverged"]
    assert sorted(diverged["config_id"]) == sorted(exploding)
    assert diverged["mean_loss"].isna().all()
    assert diverged["rank"].min() > ranking.loc[ranking["status"] == "ok", "rank"].max()
    for cid in exploding:
        cv = read_json(tmp_path / f"results/search/cv/{cid}.json")
        assert cv["mean_loss"] is None and cv["folds"][0]["epochs"] <= 1
        assert not (tmp_path / f"results/final/{cid}").exists()
    summary = pd.read_csv(tmp_path / "results/final/summary.tsv", sep="\t")
    assert len(summary) == 2 and (summary["status"] == "ok").all()
    scores = np.loadtxt(tmp_path / "results/search/sorted_scores.dat")
    assert math.isnan(scores[-1])


def _search_artifacts(workdir):
    files = {}
    for pattern in ("results/search/configs/*.json", "results/data/split/*.npy"):
        for path in sorted(workdir.glob(pattern)):
            files[str(path.relative_to(workdir))] = path.read_bytes()
    files[RANKING] = (workdir / RANKING).read_bytes()
    for path in sorted(workdir.glob("results/search/cv/*.json")):
        cv = read_json(path)
        cv.pop("device")
        for fold in cv["folds"]:
            fold.pop("seconds")  # wall time is the one thing allowed to differ
        files[str(path.relative_to(workdir))] = json.dumps(cv, sort_keys=True).encode()
    return files


def test_same_seed_same_bytes_other_seed_other_configs(tiny_run, tmp_path):
    local_dir, configfile = tiny_run
    run_snakemake(tmp_path, configfile, RANKING)
    assert _search_artifacts(tmp_path) == _search_artifacts(local_dir)

    other = tmp_path / "other_seed"
    other.mkdir()
    base = yaml.safe_load(configfile.read_text())
    other_config = write_config(other / "config.yaml", {"seed": 1}, base=base)
    run_snakemake(other, other_config, "results/search/configs.tsv")
    ours = (local_dir / "results/search/configs.tsv").read_text()
    assert (other / "results/search/configs.tsv").read_text() != ours


def _declared_mem_mb(workdir, configfile, rule):
    result = run_snakemake(workdir, configfile, "--dry-run", "--forcerun", rule)
    block = result.stdout.split(f"rule {rule}:", 1)[1]
    return int(re.search(r"mem_mb=(\d+)", block).group(1))


def test_peak_memory_of_training_jobs_is_within_what_they_declare(tiny_run):
    """The tiny run trains on the full data, so its peak memory is that of a real job."""
    workdir, configfile = tiny_run
    for rule, pattern in (
        ("cross_validate", "benchmarks/search/cross_validate/*.tsv"),
        ("retrain", "benchmarks/final/retrain/*.tsv"),
    ):
        peaks = [pd.read_csv(path, sep="\t")["max_rss"].max() for path in workdir.glob(pattern)]
        assert peaks and all(np.isfinite(peaks))
        declared = _declared_mem_mb(workdir, configfile, rule)
        assert max(peaks) < declared, (rule, max(peaks), declared)
