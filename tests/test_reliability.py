"""Faults a user can hit, end to end through Snakemake (workflow tier): bad input refused before
any job, an interrupted or concurrent run, a killed main process, diverging trials, damaged
results; and what must hold regardless: determinism, memory within what jobs declare."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import (
    TINY,
    default_config,
    merged,
    planned_jobs,
    run_snakemake,
    seed_data,
    snakemake_command,
    write_config,
)

from mnist_mlp import progress
from mnist_mlp.io import read_json
from mnist_mlp.trials import sample_trials, sampled_space

pytestmark = pytest.mark.workflow

RANKING = "results/search/ranking.tsv"


def _refused_before_any_job(workdir, result, *expected):
    message = result.stdout + result.stderr
    assert result.returncode != 0
    for text in expected:
        assert text in message, message[-3000:]
    assert not (workdir / "results").exists() and not (workdir / "logs").exists()


def test_a_bad_value_or_a_broken_file_stops_the_run_before_any_job(tmp_path):
    """The in-process checks (test_config.py) as a user meets them: through Snakemake."""
    nan_lr = {"loguniform": [float("nan"), 0.1]}
    bad = write_config(tmp_path / "bad.yaml", {"search": {"space": {"lr": nan_lr}}})
    _refused_before_any_job(
        tmp_path, run_snakemake(tmp_path, bad, check=False), "config key search.space.lr"
    )
    limit = write_config(tmp_path / "limit.yaml", {"search": {"folds": 5000}})
    _refused_before_any_job(
        tmp_path, run_snakemake(tmp_path, limit, check=False), "config key search.folds"
    )
    broken = tmp_path / "broken.yaml"
    broken.write_text("search:\n  n_trials: [3\n")
    # Snakemake reads --configfile before the workflow: `make run` checks it first
    done = subprocess.run(
        [sys.executable, "-m", "mnist_mlp.config", "--configfile", str(broken)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2 and "broken.yaml, line 3" in done.stderr


def test_the_defaults_come_from_the_workflow_wherever_it_runs(tmp_path):
    """--directory DIR with no config.yaml in DIR: the workflow's own defaults apply."""
    jobs = planned_jobs(tmp_path, None)
    assert jobs["cross_validate"] == 150


def test_a_gpu_the_machine_lacks_is_refused_before_any_job(mnist_dir, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    configfile = write_config(tmp_path / "gpu.yaml", merged(TINY, {"device": "cuda"}))
    result = run_snakemake(tmp_path, configfile, check=False)
    message = result.stdout + result.stderr
    assert result.returncode != 0 and "config key device is 'cuda'" in message, message[-2000:]
    assert not (tmp_path / "results/data").exists()  # not even the download ran


@pytest.mark.parametrize("fault", ["altered", "missing"])
def test_bad_data_fails_the_download_with_file_and_checksum(mnist_dir, tmp_path, fault):
    import gzip

    local = tmp_path / "mnist"
    shutil.copytree(mnist_dir, local)
    name = "t10k-labels-idx1-ubyte"
    with gzip.open(local / f"{name}.gz") as handle:
        content = bytearray(handle.read())
    (local / f"{name}.gz").unlink()
    if fault == "altered":
        content[-1] ^= 0xFF
        (local / name).write_bytes(content)
    configfile = write_config(tmp_path / "config.yaml", {"mnist_dir": str(local)})
    result = run_snakemake(tmp_path, configfile, "results/data/mnist.npz", check=False)
    message = result.stdout + result.stderr
    assert result.returncode != 0
    if fault == "missing":
        assert f"MNIST file {name}" in message and "missing" in message
    else:
        assert f"MNIST file {name} has MD5" in message
        assert "27ae3e4e09519cfbb04c329615203637" in message  # the expected checksum
    data = tmp_path / "results/data"
    assert not data.exists() or list(data.iterdir()) == []  # no dataset, no scratch folder


def _start(workdir, configfile, *args):
    """Snakemake in its own process group, its output followed in a file."""
    with open(workdir / "first_run.log", "w") as log:  # a pipe nobody reads would block it
        return subprocess.Popen(
            snakemake_command(workdir, configfile, *args),
            cwd=workdir,
            env=os.environ | {"PYTHONUNBUFFERED": "1"},  # the test follows the log live
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _wait_for(condition, process, seconds=600):
    deadline = time.time() + seconds
    while not condition() and time.time() < deadline and process.poll() is None:
        time.sleep(0.5)
    assert process.poll() is None and condition(), "the run ended before the expected moment"


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


def test_a_killed_run_resumes_and_a_second_run_is_refused_meanwhile(mnist_dir, tiny_data, tmp_path):
    overrides = merged(TINY, {"mnist_dir": str(mnist_dir)})
    overrides["search"] |= {"n_trials": 3, "max_epochs": 2}
    configfile = write_config(tmp_path / "config.yaml", overrides)
    seed_data(tmp_path, tiny_data)
    first = _start(tmp_path, configfile, RANKING)
    # Snakemake logs "Finished jobid" after it has recorded the job as complete.
    _wait_for(lambda: "(Rule: cross_validate)" in _finished_jobs(tmp_path), first)
    # Freeze the run (its jobs included) so that the checks below cannot outlast the CV stage.
    os.killpg(first.pid, signal.SIGSTOP)
    try:
        before = sorted((p, p.stat().st_mtime_ns) for p in (tmp_path / "results").rglob("*"))
        second = run_snakemake(tmp_path, configfile, RANKING, check=False)
        assert second.returncode != 0
        message = second.stdout + second.stderr
        assert "Incomplete files" in message or "cannot be locked" in message
        second = run_snakemake(tmp_path, configfile, RANKING, "--rerun-incomplete", check=False)
        assert second.returncode != 0
        assert "cannot be locked" in second.stdout + second.stderr
        # the refused runs ran nothing: no job, no file touched
        assert "rule cross_validate" not in second.stdout + second.stderr
        assert sorted((p, p.stat().st_mtime_ns) for p in (tmp_path / "results").rglob("*")) == (
            before
        )
        # make progress reads this real, running Snakemake folder (its lock, markers, logs)
        state = progress.collect(tmp_path, [configfile])
        assert state.running and state.stage == "search" and state.trials == 3
        finished_now = len(list((tmp_path / "results/search/cv").glob("t*.json")))
        running_now = [job for job in state.jobs if job.rule == "cross_validate"]
        assert 1 <= state.cross_validated <= finished_now  # the one logged as finished, at least
        assert 1 <= len(running_now) <= 2 and state.cross_validated + len(running_now) <= 3
        # read from each job's real log: its epoch, or that it has just started
        for job in running_now:
            assert job.started and re.search(r"epoch \d+/\d+|starting|no log line", job.activity)
        assert state.log_facts.cores == 2 and state.main_log
    finally:
        os.killpg(first.pid, signal.SIGKILL)  # the whole workflow, its running jobs included
        first.wait()
    # killed, it left its lock: with its logs just written, progress cannot tell it from one
    # on another machine; once they are quiet, it tells it from a running Snakemake
    state = progress.collect(tmp_path, [configfile])
    assert (state.running, state.elsewhere, state.lock_left) == (True, True, False)
    later = time.time() + progress.ACTIVE_SECONDS + 1
    state = progress.collect(tmp_path, [configfile], now=later)
    assert (state.running, state.elsewhere, state.lock_left) == (False, False, True)
    assert "but one left its lock" in " ".join(progress.report(state, later).split())
    cv_dir = tmp_path / "results/search/cv"
    finished = sorted(path.name for path in cv_dir.glob("t*.json"))
    assert 1 <= len(finished) < 3, "kill the run during the CV stage"
    for name in finished:  # what is at an output path is complete
        assert read_json(cv_dir / name)["status"] == "ok"

    # --unlock, then the same command with --rerun-incomplete (as the README says). A job
    # whose output was written just before the kill, but not yet recorded as done, is still
    # marked incomplete and is rerun: that is Snakemake being safe, so ask it which ones.
    run_snakemake(tmp_path, configfile, "--unlock")
    marked = _incomplete_files(tmp_path, configfile)
    kept = {
        name: (cv_dir / name).stat().st_mtime_ns
        for name in finished
        if f"results/search/cv/{name}" not in marked
    }
    assert kept, "the CV job logged as finished is recorded as complete"
    resumed = run_snakemake(tmp_path, configfile, RANKING, "--rerun-incomplete")
    log = resumed.stdout + resumed.stderr
    reran = int(re.search(r"^cross_validate\s+(\d+)\s*$", log, re.MULTILINE).group(1))
    assert reran == 3 - len(kept)
    for name, mtime in kept.items():  # complete outputs are kept, not recomputed
        assert (cv_dir / name).stat().st_mtime_ns == mtime
    for path in (tmp_path / "results").rglob("*"):
        if path.suffix == ".json":
            json.loads(path.read_text())
        elif path.suffix == ".tsv":
            assert len(pd.read_csv(path, sep="\t")) > 0


def _job_processes(workdir):
    """PIDs of the rule scripts Snakemake runs from ``workdir``."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(str(workdir / ".snakemake" / "scripts").encode() in arg for arg in argv):
            found.append(int(proc.name))
    return found


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="the job watch reads /proc")
def test_jobs_stop_by_themselves_when_the_main_process_is_killed(mnist_dir, tiny_data, tmp_path):
    overrides = merged(TINY, {"mnist_dir": str(mnist_dir)})
    overrides["search"] |= {"n_trials": 2, "max_epochs": 100, "patience": 100}
    configfile = write_config(tmp_path / "config.yaml", overrides)
    seed_data(tmp_path, tiny_data)
    first = _start(tmp_path, configfile, RANKING)
    logs = tmp_path / "logs/search/cross_validate"
    _wait_for(lambda: any("epoch 1/100" in p.read_text() for p in logs.glob("*.log")), first)
    jobs = _job_processes(tmp_path)
    assert jobs, "no training job found running"
    os.kill(first.pid, signal.SIGKILL)  # the main process only, as a crash or kill -9 does
    first.wait()
    deadline = time.time() + 15
    while _job_processes(tmp_path) and time.time() < deadline:
        time.sleep(0.2)
    left = _job_processes(tmp_path)
    for pid in left:  # do not leave them behind if the test fails
        os.kill(pid, signal.SIGKILL)
    assert left == [], "a training job ran on after its Snakemake process was killed"
    messages = "".join(p.read_text() for p in logs.glob("*.log"))
    assert "has ended: stopping the job" in messages


def _diverging_seed(space, n_trials, tame_ones=True):
    """The first seed whose sample has SGD trials with lr >= 3 (these diverge on MNIST in their
    first epoch) and the others with lr <= 1e-2 (these train), at least one of each (with
    ``tame_ones``; else every trial diverges)."""
    for seed in range(1000):
        drawn = list(sample_trials(seed, n_trials, space).values())
        exploding = [d for d in drawn if d["optimizer"] == "SGD" and d["lr"] >= 3]
        tame = [d for d in drawn if d["lr"] <= 1e-2]
        if exploding and bool(tame) == tame_ones and len(exploding) + len(tame) == n_trials:
            return seed, [d["trial"] for d in exploding]
    raise AssertionError("no seed gives the wanted mix")


def test_when_every_trial_diverges_and_there_is_no_reference_the_run_says_so(
    mnist_dir, tiny_data, tmp_path
):
    search = {"n_trials": 2, "space": {"lr": {"loguniform": [1e-3, 10**1.5]}}, "max_epochs": 1}
    overrides = {"mnist_dir": str(mnist_dir), "search": search, "final": {"epochs": 1, "top_k": 2}}
    config = merged(default_config(), merged(TINY, overrides))
    config["search"]["space"]["optimizer"] = {"choice": {"SGD": 0.5, "Adam": 0.5}}
    config["final"]["references"] = {}
    space = sampled_space(config["search"]["space"])
    config["seed"], exploding = _diverging_seed(space, 2, tame_ones=False)
    configfile = write_config(tmp_path / "config.yaml", base=config)
    seed_data(tmp_path, tiny_data, split=False)
    failed = run_snakemake(tmp_path, configfile, check=False)
    message = failed.stdout + failed.stderr
    assert failed.returncode != 0 and sorted(exploding) == ["t0000", "t0001"]
    assert "no retrained trial can win: every trial of the search diverged" in message
    assert "search.space.lr" in message  # what to change
    ranking = pd.read_csv(tmp_path / RANKING, sep="\t")
    assert (ranking["status"] == "diverged").all()
    assert not (tmp_path / "results/winner/winner.json").exists()


def test_diverging_trials_rank_last_and_are_not_retrained(mnist_dir, tiny_data, tmp_path):
    search = {"n_trials": 2, "space": {"lr": {"loguniform": [1e-3, 10**1.5]}}, "max_epochs": 1}
    # top_k covers every trial: the diverged ones are left out even then
    overrides = {"mnist_dir": str(mnist_dir), "search": search, "final": {"epochs": 1, "top_k": 2}}
    config = merged(default_config(), merged(TINY, overrides))
    config["search"]["space"]["optimizer"] = {"choice": {"SGD": 0.5, "Adam": 0.5}}
    config["final"]["references"] = {}
    config["seed"], exploding = _diverging_seed(sampled_space(config["search"]["space"]), 2)
    configfile = write_config(tmp_path / "config.yaml", base=config)
    seed_data(tmp_path, tiny_data, split=False)  # another seed: another split
    run_snakemake(tmp_path, configfile, RANKING)
    ranking = pd.read_csv(tmp_path / RANKING, sep="\t")
    diverged = ranking[ranking["status"] == "diverged"]
    assert sorted(diverged["trial"]) == sorted(exploding)
    assert diverged["mean_loss"].isna().all()
    assert diverged["rank"].min() > ranking.loc[ranking["status"] == "ok", "rank"].max()
    for trial in exploding:
        cv = read_json(tmp_path / f"results/search/cv/{trial}.json")
        assert cv["mean_loss"] is None and cv["folds"][0]["epochs"] <= 1
    # The final stage as Snakemake plans it now that the ranking is known: the tame trials
    # only, though top_k takes in every trial.
    planned = run_snakemake(tmp_path, configfile, "--dry-run", "results/final/summary.tsv")
    plan = planned.stdout + planned.stderr
    retrained = re.findall(
        r"^rule retrain:.*?wildcards: trial=(\w+)", plan, re.MULTILINE | re.DOTALL
    )
    tame = ranking.loc[ranking["status"] == "ok", "trial"]
    assert sorted(retrained) == sorted(tame) and len(tame) == 1


def test_a_damaged_result_is_named_and_the_next_run_repairs_it(tiny_run, tmp_path):
    """A truncated CV result: rank_trials names it and what to do; running again recomputes
    that trial and everything after it, and the results are consistent again."""
    workdir = tmp_path / "copy"
    shutil.copytree(tiny_run[0], workdir, symlinks=True)
    configfile = tiny_run[1]
    damaged = workdir / "results/search/cv/t0001.json"
    damaged.write_text(damaged.read_text()[:50])
    os.utime(damaged)  # as a job that was cut short writes it: newer than the ranking
    failed = run_snakemake(workdir, configfile, check=False)
    message = failed.stdout + failed.stderr
    assert failed.returncode != 0
    assert "results/search/cv/t0001.json is damaged" in message
    assert "Run the workflow again" in message
    jobs = planned_jobs(workdir, configfile)
    assert jobs["cross_validate"] == 1 and jobs["rank_trials"] == 1 and jobs["select_winner"] == 1
    run_snakemake(workdir, configfile)
    assert planned_jobs(workdir, configfile) == {}
    winner = read_json(workdir / "results/winner/winner.json")
    summary = pd.read_csv(workdir / "results/final/summary.tsv", sep="\t")
    assert summary.loc[summary["winner"], "trial"].item() == winner["trial"]
    assert (workdir / RANKING).read_bytes() == (tiny_run[0] / RANKING).read_bytes()


def test_same_seed_same_data_and_trials_other_seed_other_trials(tiny_run, tmp_path):
    """The data part of the run again, elsewhere: the same bytes. (A CV job run again gives
    the same bytes too: test_a_damaged_result… recomputes one and compares the ranking.)"""
    local_dir, configfile = tiny_run
    targets = ("results/data/split/train_indices.npy", "results/search/trials.tsv")
    run_snakemake(tmp_path, configfile, *targets)
    for path in (*targets, "results/data/mnist.npz", "results/data/split/test_indices.npy"):
        assert (tmp_path / path).read_bytes() == (local_dir / path).read_bytes(), path

    other = tmp_path / "other_seed"
    other.mkdir()
    base = yaml.safe_load(configfile.read_text())
    other_config = write_config(other / "config.yaml", {"seed": 1}, base=base)
    run_snakemake(other, other_config, "results/search/trials.tsv")
    ours = (local_dir / "results/search/trials.tsv").read_text()
    assert (other / "results/search/trials.tsv").read_text() != ours


def _declared_mem_mb(workdir, configfile, rule, *targets):
    result = run_snakemake(workdir, configfile, *targets, "--dry-run", "--forcerun", rule)
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
        assert peaks and all(peak > 0 for peak in peaks)
        declared = _declared_mem_mb(workdir, configfile, rule)
        assert max(peaks) < declared, (rule, max(peaks), declared)


def test_the_widest_network_of_the_default_space_fits_in_what_a_job_declares(
    mnist_dir, tiny_data, tmp_path
):
    """Measured, not estimated: the default space's widest network (Nh1 599, Nh2 598) through a
    CV job and a retraining, one epoch each, on the full data."""
    widest = {"Nh1": 599, "Nh2": 598, "optimizer": "Adam", "dropout": 0.0, "lr": 1e-3, "L2": 0.0}
    overrides = merged(TINY, {"mnist_dir": str(mnist_dir)})
    overrides["search"] |= {"n_trials": 1, "max_epochs": 1, "space": widest | {"batch_size": 128}}
    overrides["final"] = {"top_k": 1, "epochs": 1, "references": {}}
    configfile = write_config(tmp_path / "config.yaml", overrides)
    seed_data(tmp_path, tiny_data)
    run_snakemake(
        tmp_path, configfile, "results/search/cv/t0000.json", "results/final/t0000/metrics.json"
    )
    for rule, benchmark, target in (
        ("cross_validate", "search/cross_validate/t0000.tsv", "results/search/cv/t0000.json"),
        ("retrain", "final/retrain/t0000.tsv", "results/final/t0000/metrics.json"),
    ):
        peak = pd.read_csv(tmp_path / "benchmarks" / benchmark, sep="\t")["max_rss"].max()
        declared = _declared_mem_mb(tmp_path, configfile, rule, target)
        assert 0 < peak < declared, (rule, peak, declared)


def test_a_saved_run_resumes_on_another_machine_computing_only_what_is_missing(
    tiny_run, tiny_data, tmp_path
):
    from mnist_mlp import runstate
    from mnist_mlp.errors import UserFacingError

    workdir, configfile = tiny_run
    state = tmp_path / "state.tar.gz"
    # as if one trial was unfinished when it was saved: its job left out whole
    manifest = runstate.save(workdir, state, leave_out=("results/search/cv/t0000.json",))
    assert "results/search/cv/t0001.json" in manifest["outputs"]
    assert set(manifest["left_out"]) == {
        "results/search/cv/t0000.json",
        "results/search/cv/t0000.history.tsv",
    }
    carried = runstate.contents_of(state)
    assert not any(name.startswith("results/data/") for name in carried)  # made again there
    assert set(manifest["regenerated_inputs"]) >= {"results/data/mnist.npz"}

    elsewhere = tmp_path / "elsewhere"
    with pytest.raises(UserFacingError, match="run the data stage"):
        runstate.restore(state, elsewhere)
    seed_data(elsewhere, tiny_data)  # the data stage run there: the same bytes, made now
    for path in (elsewhere / "results/data").rglob("*.np*"):
        os.utime(path)
    runstate.restore(state, elsewhere)
    jobs = planned_jobs(elsewhere, configfile)
    assert jobs["cross_validate"] == 1 and jobs["rank_trials"] == 1

    train = elsewhere / "results/data/split/train_indices.npy"
    train.write_bytes(train.read_bytes()[:-8] + bytes(8))  # another split
    with pytest.raises(UserFacingError, match="differs from the file the saved jobs read"):
        runstate.restore(state, elsewhere)


@pytest.mark.parametrize("to", ["snakemake", "group"])
def test_sigint_stops_the_run_keeping_finished_work(mnist_dir, tiny_data, tmp_path, to):
    """`kill -INT <snakemake>`: Snakemake stops after its running jobs and keeps them, as with
    SIGTERM. Ctrl-C (SIGINT to the process group, jobs included): the jobs stop at once, their
    logs say "interrupted", and nothing is held incomplete."""
    overrides = merged(TINY, {"mnist_dir": str(mnist_dir)})
    overrides["search"] |= {"n_trials": 2, "max_epochs": 8, "patience": 100}
    configfile = write_config(tmp_path / "config.yaml", overrides)
    seed_data(tmp_path, tiny_data)
    run = _start(tmp_path, configfile, RANKING)
    logs = tmp_path / "logs/search/cross_validate"
    _wait_for(lambda: any("epoch 2/8" in p.read_text() for p in logs.glob("*.log")), run)
    if to == "snakemake":
        os.kill(run.pid, signal.SIGINT)
    else:
        os.killpg(run.pid, signal.SIGINT)
    assert run.wait(timeout=300) != 0
    assert _incomplete_files(tmp_path, configfile) == set()
    done = sorted(p.name for p in (tmp_path / "results/search/cv").glob("*.json"))
    texts = [p.read_text() for p in logs.glob("*.log")]
    if to == "snakemake":  # the running jobs finished and were kept
        assert done == ["t0000.json", "t0001.json"]
        assert planned_jobs(tmp_path, configfile, RANKING) == {"rank_trials": 1}
    else:
        assert done == [] and all("interrupted by SIGINT" in text for text in texts)
        assert not any("KeyError" in text for text in texts)
        assert planned_jobs(tmp_path, configfile, RANKING)["cross_validate"] == 2
