"""``python -m mnist_mlp.progress`` on fake working directories: counts, running jobs, the
time-left arithmetic, the config it reads. No Snakemake, no data, no torch."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import REPO

from mnist_mlp import progress
from mnist_mlp.config import merge_config as merged
from mnist_mlp.io import write_json
from mnist_mlp.progress import FIGURES, RUN_CONFIG, benchmark_seconds, collect, report

NOW = 1_800_000_000.0  # the fake runs' "now"
CONFIG = {
    "seed": 0,
    "test_fraction": 0.15,
    "device": "cpu",
    "search": {"n_trials": 20, "folds": 4, "max_epochs": 100},
    "final": {"top_k": 3, "epochs": 300, "references": {"a": {"Nh1": 10}}},
}
# 51,000 training images; a CV fit sees 3/4 of them less the 20 % validation split
SCALE = 51_000 / 30_600


_STAND_INS: list[subprocess.Popen] = []


@pytest.fixture(autouse=True)
def _stop_stand_ins():
    yield
    while _STAND_INS:
        process = _STAND_INS.pop()
        process.kill()
        process.wait()


def stand_in_for_snakemake(workdir, name: str = "snakemake") -> subprocess.Popen:
    """A process that works in ``workdir`` and names ``snakemake`` in its command line, as
    ``python -m snakemake`` does: what progress looks for beside the lock files. It waits on
    its stdin, so that it ends with the test process, however that ends."""
    process = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()", name],
        cwd=workdir,
        stdin=subprocess.PIPE,
    )
    _STAND_INS.append(process)
    # Popen returns while the child is still in exec, its /proc command line empty for a
    # moment: progress would not see it yet (one run in four of a tight loop)
    cmdline = Path(f"/proc/{process.pid}/cmdline")
    deadline = time.monotonic() + 10
    while name.encode() not in cmdline.read_bytes().split(b"\0") and time.monotonic() < deadline:
        time.sleep(0.001)
    return process


def write(path, text: str = "") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def make_run(tmp_path, config: dict = CONFIG, cores: int | None = 2, locked: bool = True):
    """A working directory with its config, data split and (optionally) a main log and lock."""
    workdir = tmp_path / "run"
    write(workdir / RUN_CONFIG, yaml.safe_dump(config))
    write(workdir / "results/data/split/train_indices.npy", "x")
    if cores is not None:
        write(
            workdir / ".snakemake/log/2026-11-29T205548.270545.snakemake.log",
            f"Building DAG of jobs...\nProvided cores: {cores}\n1 of 30 steps (3%) done\n",
        )
    if locked:  # taken before every job of the fake run started, by a process working there
        write(workdir / ".snakemake/locks/0.input.lock", "")
        os.utime(workdir / ".snakemake/locks/0.input.lock", (NOW - 10_000, NOW - 10_000))
        stand_in_for_snakemake(workdir)
    return workdir


def write_cv(
    workdir, trial, loss=0.1, folds=((10, 10.0),), seconds=None, status="ok", compact=False
):
    """A finished cross-validation: its result (``folds``: (epochs, seconds) per fold) as the
    workflow writes it (``compact``: as one line, which progress reads another way) and, with
    ``seconds``, its benchmark."""
    result = {
        "trial": trial,
        "status": status,
        "mean_loss": None if status == "diverged" else loss,
        "mean_accuracy": None if status == "diverged" else 0.97,
        "folds": [
            {"fold": i + 1, "status": status, "epochs": e, "seconds": s}
            for i, (e, s) in enumerate(folds)
        ],
    }
    path = workdir / f"results/search/cv/{trial}.json"
    if compact:
        write(path, json.dumps(result))
    else:
        write_json(path, result)
    if seconds is not None:
        write_benchmark(workdir / f"benchmarks/search/cross_validate/{trial}.tsv", seconds)


def write_benchmark(path, seconds: float) -> None:
    write(path, f"s\th:m:s\tmax_rss\n{seconds}\t0:00:00\t100.0\n")


def marker_of(workdir, output: str):
    """Snakemake's incomplete marker of ``output``: its path in URL-safe base64."""
    return workdir / ".snakemake/incomplete" / base64.urlsafe_b64encode(output.encode()).decode()


def mark(workdir, output: str, started: float) -> None:
    """A job of ``output`` started at ``started``."""
    marker = marker_of(workdir, output)
    write(marker, '{"external_jobid": null}')
    os.utime(marker, (started, started))


def unmark(workdir, output: str) -> None:
    """The job of ``output`` finished: Snakemake removes its marker."""
    marker_of(workdir, output).unlink()


def log_line(message: str) -> str:
    return f"2026-11-29 20:42:50,831 INFO mnist_mlp.training: {message}\n"


def test_nothing_done_yet_has_no_eta(tmp_path):
    workdir = tmp_path / "run"
    write(workdir / RUN_CONFIG, yaml.safe_dump(CONFIG))
    state = collect(workdir, cores=2, now=NOW)
    assert (state.stage, state.cross_validated, state.retrained) == ("data", 0, 0)
    assert state.retrainings == 3 + 1
    assert state.eta is None
    text = report(state, NOW)
    assert "0/20 trials cross-validated (0 diverged)" in text
    assert "ETA: not known yet" in text
    assert "not known yet: no cross-validation job has finished" in text
    assert "main:    none yet" in text


def mid_search(tmp_path):
    workdir = make_run(tmp_path)
    # losses: t0001 < t0003 < t0000 < t0004; t0002 diverged. Benchmarks: mean 200 s.
    # The best three's epoch times: 1.2, 1.0 and 0.8 s per epoch, mean 1.0 (t0004's 5 s is not
    # among the best three).
    write_cv(workdir, "t0000", loss=0.3, folds=((10, 8.0), (10, 8.0)), seconds=100)
    write_cv(workdir, "t0001", loss=0.1, folds=((10, 12.0), (20, 24.0)), seconds=200)
    write_cv(workdir, "t0002", status="diverged", folds=((3, 1.0),), seconds=300)
    write_cv(workdir, "t0003", loss=0.2, folds=((5, 5.0),), seconds=100, compact=True)
    write_cv(workdir, "t0004", loss=0.4, folds=((2, 10.0),), seconds=300)
    # running: t0005 for 50 s, in its second fold; t0006 for 500 s (more than the mean)
    for trial, started in (("t0005", NOW - 50), ("t0006", NOW - 500)):
        mark(workdir, f"results/search/cv/{trial}.json", started)
        mark(workdir, f"results/search/cv/{trial}.history.tsv", started)
    write(
        workdir / "logs/search/cross_validate/t0005.log",
        log_line("trial {'trial': 't0005'} on 51000 images, 1 threads, cpu")
        + log_line("fold 1/4: {'fold': 1, 'status': 'ok'}")
        + log_line("fold 2/4 epoch 17/100 train_loss 0.88580 valid_loss 0.27141 seconds 1.33"),
    )
    write(
        workdir / "logs/search/cross_validate/t0006.log",
        log_line(
            "trial {'trial': 't0006', 'Nh1': 335, 'Nh2': 196, 'dropout': 0.1, 'optimizer': "
            "'Adam', 'lr': 0.0012, 'L2': 1e-05} on 51000 images, 1 threads, cpu"
        ),
    )
    # a trial whose job left a log and no result (failed): not running, not done
    write(workdir / "logs/search/cross_validate/t0007.log", log_line("Traceback"))
    return workdir


def test_mid_search_counts_running_jobs_and_eta(tmp_path):
    state = collect(mid_search(tmp_path), now=NOW)
    assert (state.stage, state.cores, state.cores_source) == ("search", 2, "the main log")
    assert (state.trials, state.cross_validated, state.diverged) == (20, 5, 1)
    assert state.best["trial"] == "t0001"
    assert (state.retrained, state.retrainings, state.retrainings_known) == (0, 3 + 1, False)
    assert [(job.rule, job.trial, job.activity) for job in state.jobs] == [
        ("cross_validate", "t0006", "784-335-196 Adam lr 1.2e-03 · starting"),
        ("cross_validate", "t0005", "fold 2/4 · epoch 17/100"),
    ]
    assert [job.trial for job in state.stopped] == ["t0007"]

    search, final = state.parts
    # 15 trials left × 200 s, less 50 s (t0005) and 200 s (t0006, capped at the mean), on 2 cores
    assert search.seconds == pytest.approx((15 * 200 - 50 - 200) / 2)
    # 4 retrainings (top 3 + the reference) × 1.0 s per epoch scaled to 51,000 images × 300
    # epochs, two at once (one thread each on 2 cores)
    assert final.seconds == pytest.approx(4 * 1.0 * SCALE * 300 / 2)
    assert state.eta == pytest.approx(1375 + 1000)

    text = report(state, NOW)
    assert "Stage: search; Snakemake is running" in text
    assert "5/20 trials cross-validated (1 diverged); best so far t0001" in text
    assert "0/4 retrainings (top 3 + 1 reference, if none of the trials left diverges)" in text
    assert "cross_validate t0005: fold 2/4 · epoch 17/100, running 50 s" in text
    assert "logs/search/cross_validate/t0005.log" in text
    assert "With a log but no result" in text and "t0007" in text
    assert "ETA 39 min" in text  # 2,375 s
    flat = " ".join(text.split())  # the explanations are wrapped
    assert "15 trials left × 200 s (the mean of 5 finished), less 4 min 10 s already run" in flat
    assert "/ 2 jobs at once" in flat
    assert "4 retrainings × ~500 s on average (each of the current 3 best trials' CV" in flat
    assert "0.80-1.20 s per epoch of 30,600 images, scaled to 51,000 images × 300 epochs" in flat
    assert ".snakemake/log/2026-11-29T205548.270545.snakemake.log" in text


def test_cores_argument_wins_over_the_main_log(tmp_path):
    state = collect(mid_search(tmp_path), cores=4, now=NOW)
    assert (state.cores, state.cores_source) == (4, "--cores")
    search, final = state.parts
    assert search.seconds == pytest.approx((15 * 200 - 250) / 4)
    assert final.seconds == pytest.approx(4 * 500 / 4)


def test_without_the_lock_marked_jobs_are_interrupted(tmp_path):
    workdir = mid_search(tmp_path)
    (workdir / ".snakemake/locks/0.input.lock").unlink()
    state = collect(workdir, now=NOW)
    assert not state.running
    assert all(job.started is None for job in state.jobs)
    # an interrupted job starts again: nothing already spent
    assert state.parts[0].seconds == pytest.approx(15 * 200 / 2)
    text = report(state, NOW)
    assert "Snakemake is not running" in text
    assert "Interrupted (rerun with --rerun-incomplete) (2):" in text


def test_a_lock_left_by_a_killed_snakemake_is_not_a_running_one(tmp_path):
    workdir = mid_search(tmp_path)
    holder = _STAND_INS[-1]
    assert collect(workdir, now=NOW).running
    holder.send_signal(signal.SIGSTOP)  # paused (`mnist-mlp run pause`): still running
    try:
        assert collect(workdir, now=NOW).running
    finally:
        holder.send_signal(signal.SIGCONT)
    holder.kill()  # killed: its lock files stay
    holder.wait()
    # neither a process there that is no Snakemake, nor a Snakemake working elsewhere, holds it
    stand_in_for_snakemake(workdir, name="python-job")
    stand_in_for_snakemake(tmp_path, name="snakemake")
    state = collect(workdir, now=NOW)  # the fake run's logs: weeks before NOW
    assert (state.running, state.elsewhere, state.lock_left) == (False, False, True)
    assert all(job.started is None for job in state.jobs)  # interrupted, not running
    assert state.parts[0].seconds == pytest.approx(15 * 200 / 2)
    flat = " ".join(report(state, NOW).split())
    assert "no Snakemake process on this machine works here and its logs have not" in flat
    assert "If no Snakemake runs it on another machine, `snakemake --unlock`" in flat
    assert "Interrupted (rerun with --rerun-incomplete) (2):" in flat


def test_a_lock_without_a_process_here_in_a_run_whose_logs_change_runs_elsewhere(tmp_path):
    """A SLURM job's Snakemake, read from the login node: no process here, fresh logs."""
    workdir = mid_search(tmp_path)
    holder = _STAND_INS.pop()
    holder.kill()
    holder.wait()
    log = workdir / "logs/search/cross_validate/t0005.log"  # a running job's log
    now = log.stat().st_mtime + 30
    state = collect(workdir, now=now)
    assert (state.running, state.elsewhere, state.lock_left) == (True, True, False)
    assert [job.trial for job in state.jobs if job.started] == ["t0006", "t0005"]
    assert "it runs on another machine?" in " ".join(report(state, now).split())


def test_a_finished_result_still_marked_incomplete_is_not_done(tmp_path):
    workdir = mid_search(tmp_path)
    write_cv(workdir, "t0005", loss=0.05, seconds=10_000)  # written, not yet unmarked
    state = collect(workdir, now=NOW)
    assert state.cross_validated == 5
    assert state.best["trial"] == "t0001"


def final_running(tmp_path):
    config = {**CONFIG, "search": {**CONFIG["search"], "n_trials": 4}, "final": {**CONFIG["final"]}}
    config["final"]["top_k"] = 2
    workdir = make_run(tmp_path, config)
    write_cv(workdir, "t0000", loss=0.2, seconds=100)
    write_cv(workdir, "t0001", status="diverged", seconds=100)
    write_cv(workdir, "t0002", loss=0.1, seconds=100)
    write_cv(workdir, "t0003", loss=0.3, seconds=100)
    rows = [
        ("1", "t0002", "ok"),
        ("2", "t0000", "ok"),
        ("3", "t0003", "ok"),
        ("4", "t0001", "diverged"),
    ]
    write(
        workdir / "results/search/ranking.tsv",
        "rank\ttrial\tstatus\n" + "".join("\t".join(row) + "\n" for row in rows),
    )
    write(workdir / "results/final/t0002/metrics.json", "{}")
    write_benchmark(workdir / "benchmarks/final/retrain/t0002.tsv", 600)
    mark(workdir, "results/final/ref_a/metrics.json", NOW - 100)
    mark(workdir, "results/final/ref_a/model.pt", NOW - 100)
    write(
        workdir / "logs/final/retrain/ref_a.log",
        log_line("epoch 120/300 train_loss 0.1 valid_loss 0.2 valid_acc 0.97 seconds 2.00"),
    )
    return workdir


def test_search_done_final_running(tmp_path):
    state = collect(final_running(tmp_path), now=NOW)
    assert (state.stage, state.cross_validated, state.diverged) == ("final", 4, 1)
    assert (state.retrained, state.retrainings, state.retrainings_known) == (1, 3, True)
    assert [(job.rule, job.trial, job.activity) for job in state.jobs] == [
        ("retrain", "ref_a", "epoch 120/300")
    ]
    assert [part.name for part in state.parts] == ["final"]
    # t0002 took 600 s against its estimate of 500 s (1.0 s per CV epoch, scaled): t0000 (the
    # same epoch time) 1.2 × 500 s; ref_a (no CV) 1.2 × the trials' mean, but it is running:
    # 180 epochs left at its log's 2.00 s each; two at once
    assert state.eta == pytest.approx((1.2 * 500 + 2.0 * 180) / 2)
    text = report(state, NOW)
    assert "1/3 retrainings (top 2 + 1 reference)" in text
    assert "retrain ref_a: epoch 120/300, running 1 min 40 s" in text
    assert "ETA 8 min 0 s (" in text
    flat = " ".join(text.split())
    assert "2 retrainings × ~600 s on average (each of the ranking's 2 best trials' CV" in flat
    assert "× 1.20, what the 1 finished took against their own estimates)" in flat
    assert "less 4 min 0 s for the 1 running (their epochs)" in flat


def test_final_estimates_follow_each_trials_size_scaled_by_the_finished(tmp_path):
    """A small network finishes first: the rest are estimated each from its own CV epoch time,
    scaled by what the finished took against its estimate, not by the finished one's time."""
    workdir = final_running(tmp_path)
    write_cv(workdir, "t0000", loss=0.2, folds=((10, 20.0),), seconds=100)  # 2 s per epoch
    (workdir / ".snakemake/locks/0.input.lock").unlink()  # ref_a interrupted: starts again
    state = collect(workdir, now=NOW)
    (final,) = state.parts
    # t0000: 1.2 × 1,000 s; ref_a: 1.2 × the mean of t0002's 500 s and t0000's 1,000 s
    assert final.seconds == pytest.approx((1.2 * 1000 + 1.2 * 750) / 2)
    # the stage's mean job, the finished one as it ran: the projection of the whole stage
    assert final.per_job == pytest.approx((600 + 1200 + 900) / 3)
    assert "1.00-2.00 s per epoch" in final.explanation


def test_a_paused_candidates_epoch_time_is_the_time_it_computed(tmp_path):
    """The folds' seconds are wall clock: a CV job paused for most of its 1,000 s (its CPU
    time 85 s, so 100 s computed) stands for a tenth of its fold seconds per epoch."""
    workdir = final_running(tmp_path)
    write_cv(workdir, "t0000", loss=0.2, folds=((10, 20.0),))  # 2 s per epoch by the clock
    write(
        workdir / "benchmarks/search/cross_validate/t0000.tsv",
        "s\th:m:s\tmax_rss\tcpu_time\n1000.0\t0:16:40\t900.0\t85.0\n",
    )
    (final,) = collect(workdir, now=NOW).parts
    assert "0.20-1.00 s per epoch" in final.explanation


def test_a_stale_ranking_of_fewer_trials_is_not_used(tmp_path):
    """n_trials raised after a run: the ranking exists, the search is not done."""
    workdir = final_running(tmp_path)
    config = yaml.safe_load((workdir / RUN_CONFIG).read_text())
    config["search"]["n_trials"] = 6
    write(workdir / RUN_CONFIG, yaml.safe_dump(config))
    state = collect(workdir, now=NOW)
    assert (state.stage, state.cross_validated, state.retrainings_known) == ("search", 4, False)
    assert state.parts[0].seconds == pytest.approx(2 * 100 / 2)


def test_all_done(tmp_path):
    workdir = final_running(tmp_path)
    for trial in ("t0000", "ref_a"):
        write(workdir / f"results/final/{trial}/metrics.json", "{}")
        write_benchmark(workdir / f"benchmarks/final/retrain/{trial}.tsv", 600)
    for path in FIGURES:
        write(workdir / path, "x")
    winner = {"trial": "t0002", "test_accuracy": 0.981, "official_test_accuracy": 0.979}
    write(workdir / "results/winner/winner.json", json.dumps(winner))
    for marker in (workdir / ".snakemake/incomplete").iterdir():
        marker.unlink()
    (workdir / ".snakemake/locks/0.input.lock").unlink()
    state = collect(workdir, now=NOW)
    assert (state.stage, state.retrained, state.figures_done) == ("done", 3, len(FIGURES))
    assert state.jobs == [] and state.parts == [] and state.eta == 0
    text = report(state, NOW)
    assert "Stage: done; finished" in text
    assert "winner t0002 (test accuracy 0.9810, official test 0.9790)" in " ".join(text.split())
    assert "ETA: finished" in text
    assert "Running now" not in text


def test_figures_stage(tmp_path):
    workdir = final_running(tmp_path)
    for trial in ("t0000", "ref_a"):
        write(workdir / f"results/final/{trial}/metrics.json", "{}")
    write(workdir / "results/winner/winner.json", json.dumps({"trial": "t0002"}))
    for marker in (workdir / ".snakemake/incomplete").iterdir():
        marker.unlink()
    mark(workdir, "results/figures/learning_curves.png", NOW - 5)
    mark(workdir, "results/figures/receptive_fields_layer1.png", NOW - 4)
    mark(workdir, "results/figures/receptive_fields_layer2.png", NOW - 4)
    mark(workdir, "results/report/tables.tsv", NOW - 3)  # a rule progress does not know
    state = collect(workdir, now=NOW)
    assert (state.stage, state.figures_done, state.eta) == ("figures", 0, 0)
    assert [(job.rule, job.activity) for job in state.jobs] == [
        ("plot_learning_curves", "no log line yet"),
        ("plot_receptive_fields", "no log line yet"),
        ("a job", "writing results/report/tables.tsv"),
    ]
    assert "  a job: writing results/report/tables.tsv, running 3 s\n" in report(state, NOW)


def test_a_figure_older_than_a_result_it_shows_is_not_done(tmp_path):
    """Snakemake redoes an output older than an input: so does progress's count."""
    workdir = final_running(tmp_path)
    for result in (workdir / "results/search/cv").iterdir():
        os.utime(result, (NOW - 100, NOW - 100))
    write(workdir / FIGURES[3], "x")
    os.utime(workdir / FIGURES[3], (NOW - 10, NOW - 10))
    assert collect(workdir, now=NOW).figures_done == 1
    os.utime(workdir / "results/search/cv/t0001.json", (NOW - 5, NOW - 5))  # cross-validated again
    assert collect(workdir, now=NOW).figures_done == 0


def test_configfile_overrides_and_the_runs_own_config(tmp_path):
    workdir = mid_search(tmp_path)
    run_config = workdir / RUN_CONFIG
    run_config.unlink()  # a run started before the workflow wrote its config
    override = tmp_path / "small.yaml"
    write(override, yaml.safe_dump({"search": {"n_trials": 8}}))
    state = collect(workdir, [override], now=NOW)
    assert state.trials == 8
    assert state.config_sources == [str(REPO / "config.yaml"), str(override)]
    assert state.parts[0].seconds == pytest.approx((3 * 200 - 250) / 2)
    # nested keys merged: final comes from the repository's config
    final = yaml.safe_load((REPO / "config.yaml").read_text())["final"]
    assert state.retrainings == min(final["top_k"], 8 - 1) + len(final["references"])
    # the run's effective config, once written, is what counts
    write(run_config, yaml.safe_dump(merged(CONFIG, {"search": {"n_trials": 12}})))
    state = collect(workdir, [override], now=NOW)
    assert state.trials == 12
    assert state.config_sources == [RUN_CONFIG + " (the run's own; --configfile ignored)"]


def test_the_repositorys_config_without_the_runs_own(tmp_path):
    repo_config = yaml.safe_load((REPO / "config.yaml").read_text())
    write(tmp_path / "config.yaml", yaml.safe_dump({"search": {"n_trials": 3}}))  # not read
    state = collect(tmp_path, cores=1, now=NOW)
    assert state.trials == repo_config["search"]["n_trials"]
    assert state.config_sources == [str(REPO / "config.yaml")]


def test_markers_are_decoded_as_snakemake_writes_them(tmp_path):
    root = tmp_path / ".snakemake/incomplete"
    long = "results/final/" + "x" * 300 + "/metrics.json"
    encoded = base64.urlsafe_b64encode(long.encode()).decode()
    # names longer than the file system allows: folders "@<part>", the last part the file
    write(root / ("@" + encoded[:254]) / encoded[254:], "{}")
    write(root / base64.urlsafe_b64encode(b"results/search/cv/t0001.json").decode(), "{}")
    write(root / base64.urlsafe_b64encode(str(tmp_path / "results/a?b>").encode()).decode(), "{}")
    write(root / "migration_underway", "")
    assert set(progress.incomplete_outputs(tmp_path)) == {
        long,
        "results/search/cv/t0001.json",
        "results/a?b>",
    }


def test_the_main_log_gives_cores_errors_and_cluster_nodes(tmp_path):
    log = tmp_path / "main.log"
    write(
        log,
        "Provided remote nodes: 150\nProvided resources: gpu=1, mem_mb=2000\n"
        "Error in rule cross_validate:\n3 of 9 steps (33%) done\nError in rule retrain:\n",
    )
    facts = progress.read_main_log(log)
    assert (facts.cores, facts.remote_nodes, facts.gpus, facts.errors) == (None, 150, 1, 2)
    assert facts.steps == "3 of 9 steps (33%) done"
    assert progress.jobs_at_once("retrain", 2, facts, gpu=False) == 150
    local = progress.LogFacts(cores=8, gpus=1)
    assert progress.jobs_at_once("retrain", 8, local, gpu=False) == 8
    assert progress.jobs_at_once("retrain", 8, local, gpu=True) == 1
    assert progress.jobs_at_once("retrain", 1, local, gpu=False) == 1


def test_duration():
    assert [progress.duration(s) for s in (45, 185, 900, 7800, 97200)] == [
        "45 s",
        "3 min 5 s",
        "15 min",
        "2 h 10 min",
        "1 d 3 h",
    ]


def test_command_line(tmp_path, capsys):
    workdir = mid_search(tmp_path)
    assert progress.main(["--directory", str(workdir), "--cores", "3"]) == 0
    out = capsys.readouterr().out
    assert "cores: 3 (from --cores)" in out
    assert "5/20 trials cross-validated" in out


def test_fast(tmp_path):
    """10,000 trials take under half a second of CPU time: 500, a fortieth of that."""
    config = {**CONFIG, "search": {**CONFIG["search"], "n_trials": 500}}
    workdir = make_run(tmp_path, config)
    write_cv(workdir, "t0000", folds=((30, 40.0),) * 4, seconds=170)
    result = (workdir / "results/search/cv/t0000.json").read_text()
    benchmark = (workdir / "benchmarks/search/cross_validate/t0000.tsv").read_text()
    for i in range(1, 500):
        trial = f"t{i:04d}"
        text = result.replace('"t0000"', f'"{trial}"').replace("0.1,", f"{1 / (i + 1)},")
        (workdir / f"results/search/cv/{trial}.json").write_text(text)
        (workdir / f"benchmarks/search/cross_validate/{trial}.tsv").write_text(benchmark)
    start = time.process_time()
    state = collect(workdir)
    seconds = time.process_time() - start
    assert (state.cross_validated, state.best["trial"]) == (500, "t0499")
    assert seconds < 0.25


def test_a_missing_configfile_is_named(tmp_path, capsys):
    workdir = mid_search(tmp_path)
    (workdir / RUN_CONFIG).unlink()
    with pytest.raises(SystemExit):
        progress.main(["--directory", str(workdir), "--configfile", "nowhere.yaml"])
    assert "nowhere.yaml" in capsys.readouterr().err


def test_a_paused_or_slowed_job_counts_the_time_it_computed(tmp_path):
    header = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
    paused, busy = tmp_path / "paused.tsv", tmp_path / "busy.tsv"
    # SIGSTOPped for most of its 4,438 s: 158 s of CPU sampled (a job of the full run), plus
    # half of Snakemake's 30 s sampling interval
    write(paused, header + "4438.79\t1:13:58\t1333.08\t0\t0\t0\t0\t0\t3.56\t158.20\n")
    assert benchmark_seconds(paused) == pytest.approx(173.20)
    # one thread slowed by other work: the CPU time it got, plus half the sampling interval
    write(busy, header + "68.05\t0:01:08\t1333.08\t0\t0\t0\t0\t0\t0.6\t43.49\n")
    assert benchmark_seconds(busy) == pytest.approx(58.49)
    # one thread on a quiet machine: the last sample came late, the wall time bounds it
    write(busy, header + "100.0\t0:01:40\t1333.08\t0\t0\t0\t0\t0\t0.99\t91.0\n")
    assert benchmark_seconds(busy) == pytest.approx(100.0)
    # two threads, paused for half of its time: CPU time per thread
    write(busy, header + "1000.0\t0:16:40\t1.0\t0\t0\t0\t0\t0\t0.9\t800.0\n")
    assert benchmark_seconds(busy, threads=2) == pytest.approx(415.0)
    assert benchmark_seconds(busy, threads=1) == pytest.approx(815.0)
    write(busy, "s\th:m:s\tmax_rss\n100.0\t0:01:40\t1.0\n")  # no cpu_time column: wall seconds
    assert benchmark_seconds(busy) == pytest.approx(100.0)


def test_a_marker_older_than_the_running_snakemake_is_an_interrupted_job(tmp_path):
    workdir = mid_search(tmp_path)
    # this run took its lock 1,000 s ago (after other Snakemake commands wrote newer logs)
    os.utime(workdir / ".snakemake/locks/0.input.lock", (NOW - 1000, NOW - 1000))
    write(workdir / ".snakemake/log/2099-01-01T000000.000000.snakemake.log", "--unlock\n")
    assert progress.lock_time(workdir) == NOW - 1000
    # t0008: left by an earlier run that was stopped (its marker predates the lock)
    for output in ("results/search/cv/t0008.json", "results/search/cv/t0008.history.tsv"):
        mark(workdir, output, NOW - 5000)
    write(workdir / "logs/search/cross_validate/t0008.log", log_line("fold 4/4 epoch 49/100"))
    state = collect(workdir, cores=2, now=NOW)
    assert state.running
    assert [job.trial for job in state.jobs] == ["t0006", "t0005"]  # still those two only
    assert [job.trial for job in state.stopped] == ["t0008", "t0007"]
    text = report(state, NOW)
    assert "With a log but no result, not running (2;" in text and "t0008" in text


def test_a_running_jobs_epoch_time_is_its_newest_epochs_median(tmp_path):
    """The first epochs hold the start-up (imports, warm-up): the newest 10 set the pace."""
    times = [9.0, 3.0] + [2.0] * 9 + [2.5]
    log = tmp_path / "t.log"
    write(
        log,
        "".join(
            log_line(f"epoch {i}/300 train_loss 0.1 valid_loss 0.2 valid_acc 0.9 seconds {s:.2f}")
            for i, s in enumerate(times, start=1)
        )
        + log_line("a message after the epoch lines"),
    )
    assert progress.job_activity(log) == ("epoch 12/300", 2.0)
    write(log, log_line("trial {'trial': 't0001'} on 51000 images"))
    assert progress.job_activity(log) == ("starting", None)  # not a dict cut short


def test_a_folder_that_is_not_a_run_is_named(tmp_path, capsys):
    from mnist_mlp.progress import main

    with pytest.raises(SystemExit):
        main(["--directory", str(tmp_path)])
    assert "is not a run of this workflow" in capsys.readouterr().err


HALVING = merged(
    CONFIG,
    {
        "search": {
            "n_trials": 9,
            "max_epochs": 18,
            "pruning": "halving",
            "halving": {"eta": 3, "min_epochs": 2},  # rungs of 2, 6 and 18 epochs
        }
    },
)


def write_rung(workdir, trial, rung, score, epoch_seconds=1.0, seconds=20.0, status="running"):
    """A finished rung job of successive halving: its result (2 folds at the rung's budget)
    and its benchmark."""
    budget = (2, 6, 18)[rung]
    folds = [
        {"fold": f, "status": status, "epochs": budget, "seconds": budget * epoch_seconds}
        for f in (1, 2)
    ]
    result = {"trial": trial, "rung": rung, "budget": budget, "status": status, "folds": folds}
    if status == "running":
        result["score"] = score
    else:
        result |= {"mean_loss": score, "mean_accuracy": None if score is None else 0.9}
    write_json(workdir / f"results/search/halving/{trial}/rung{rung}.json", result)
    write_benchmark(workdir / f"benchmarks/search/train_rung/{trial}/rung{rung}.tsv", seconds)


def halving_first_rung(tmp_path):
    """Rung 0 (2 epochs) with 7 of its 9 jobs done (scores 0.7 ... 0.1: t0006 leads; epoch
    times 1.0 ... 1.6 s, median 1.3 s), t0007 and t0008 running for 5 s; the winner of a
    restored earlier search on disk."""
    workdir = make_run(tmp_path, HALVING)
    for i in range(7):
        write_rung(workdir, f"t{i:04d}", 0, score=0.7 - i / 10, epoch_seconds=1.0 + i / 10)
    for trial in ("t0007", "t0008"):
        for output in ("json", "history.tsv", "state.pt"):
            mark(workdir, f"results/search/halving/{trial}/rung0.{output}", NOW - 5)
    write_json(
        workdir / "results/winner/winner.json",
        {"trial": "t0084", "test_accuracy": 0.9858, "official_test_accuracy": 0.9841},
    )
    return workdir


def test_halving_progress_counts_each_rung_and_estimates_from_the_rungs(tmp_path):
    state = collect(halving_first_rung(tmp_path), now=NOW)
    assert (state.stage, state.cross_validated, state.pruned, state.best) == ("search", 0, 0, None)
    rungs = [(r.budget, r.done, r.expected, r.exact, r.leader) for r in state.rungs]
    assert rungs == [
        (2, 7, 9, True, ("t0006", pytest.approx(0.1))),
        (6, 0, 3, False, None),  # at most a third of rung 0: not decided yet
        (18, 0, 1, False, None),
    ]
    assert [(job.rule, job.trial) for job in state.jobs] == [
        ("train_rung", "t0007"),
        ("train_rung", "t0008"),
    ]
    search, final = state.parts
    # 10 s per epoch (20 s jobs of 2 epochs): 2 jobs × 20 s at rung 0, at most 3 × 40 s (4
    # epochs more) at rung 1 and 1 × 120 s at rung 2, less the 5 s each running job spent
    assert search.seconds == pytest.approx((2 * 20 + 3 * 40 + 120 - 2 * 5) / 2)
    # no trial through its last rung: 4 retrainings at the rung fits' median 1.3 s per epoch
    assert final.seconds == pytest.approx(4 * 1.3 * SCALE * 300 / 2)
    flat = " ".join(report(state, NOW).split())
    assert "0/9 trials done: pruned, diverged or through their last rung" in flat
    assert "rungs 2 epochs 7/9 (best t0006, score 0.1000); 6 epochs 0/≤3; 18 epochs 0/≤1" in flat
    assert "the median epoch time of the 7 trials' rung fits so far, 1.30 s per epoch" in flat
    assert "an earlier run's winner t0084" in flat
    assert "benchmarks/search/train_rung/<trial>/rung<r>.tsv" in flat
    assert "logs/search/train_rung/<trial>/rung<r>.log" in flat


def test_halving_progress_follows_the_rungs_decisions(tmp_path):
    workdir = halving_first_rung(tmp_path)
    write_rung(workdir, "t0007", 0, score=0.05)
    write_rung(workdir, "t0008", 0, score=None, status="diverged")
    for trial in ("t0007", "t0008"):  # both finished: no longer marked
        for output in ("json", "history.tsv", "state.pt"):
            unmark(workdir, f"results/search/halving/{trial}/rung0.{output}")
    decisions = [("t0007", "promoted"), ("t0006", "promoted"), ("t0005", "promoted")]
    decisions += [(f"t{i:04d}", "pruned") for i in range(5)] + [("t0008", "diverged")]
    write(
        workdir / "results/search/halving/batch0/rung0.tsv",
        "trial\trung\tbudget\tscore\tmean_epochs\tdecision\n"
        + "".join(f"{t}\t0\t2\t0.1\t2\t{d}\n" for t, d in decisions),
    )
    write_rung(workdir, "t0007", 1, score=0.04, seconds=40)
    # t0005 stopped early at rung 1 (early stopping): complete, its CV loss its score
    write_rung(workdir, "t0005", 1, score=0.03, seconds=40, status="ok")
    state = collect(workdir, now=NOW)
    assert (state.cross_validated, state.pruned, state.diverged) == (6, 5, 1)
    rungs = [(r.budget, r.done, r.expected, r.exact, r.leader) for r in state.rungs]
    assert rungs == [
        (2, 9, 9, True, ("t0007", pytest.approx(0.05))),
        (6, 2, 3, True, ("t0005", pytest.approx(0.03))),
        (18, 0, 1, False, None),
    ]
    (search, _) = state.parts
    # 1 rung-1 job left at 40 s (the mean of the finished), 1 at rung 2 at 10 s × 12 epochs
    assert search.seconds == pytest.approx((40 + 120) / 2)
    flat = " ".join(report(state, NOW).split())
    assert "6/9 trials done: pruned, diverged or through their last rung" in flat
    assert "(5 pruned, 1 diverged)" in flat
    assert "6 epochs 2/3 (best t0005, score 0.0300)" in flat


def test_with_tpe_batches_each_batch_is_a_bracket_of_its_own(tmp_path):
    """TPE with halving: batch 0 (2 startup trials) and batch 1 (3 proposed) each promote
    their own best half; the second rung's count is exact only once both decided."""
    config = merged(
        HALVING,
        {
            "search": {
                "n_trials": 5,
                "sampler": "tpe",
                "tpe": {"batch": 3, "startup_trials": 2},
                "halving": {"eta": 2, "min_epochs": 2},  # rungs of 2, 4, 8 and 16, then 18
            }
        },
    )
    workdir = make_run(tmp_path, config)
    decisions = "trial\trung\tbudget\tscore\tmean_epochs\tdecision\n"
    write(
        workdir / "results/search/halving/batch0/rung0.tsv",
        decisions + "t0000\t0\t2\t0.2\t2\tpromoted\nt0001\t0\t2\t0.3\t2\tpruned\n",
    )
    state = collect(workdir, now=NOW)
    # rung 1: batch 0's 1, batch 1's 3 halved at most (2); rung 2: 1 + 1
    assert [(r.budget, r.expected, r.exact) for r in state.rungs][:3] == [
        (2, 5, True),
        (4, 3, False),
        (8, 2, False),
    ]
    write(
        workdir / "results/search/halving/batch1/rung0.tsv",
        decisions + "t0002\t0\t2\t0.1\t2\tpromoted\nt0003\t0\t2\t0.2\t2\tpromoted\n"
        "t0004\t0\t2\t0.4\t2\tpruned\n",
    )
    state = collect(workdir, now=NOW)
    assert [(r.budget, r.expected, r.exact) for r in state.rungs][:3] == [
        (2, 5, True),
        (4, 1 + 2, True),
        (8, 1 + 1, False),
    ]


def test_with_tpe_results_older_than_their_batchs_proposal_are_not_done(tmp_path):
    """A TPE run restored from the random sampler's state: the restored t0002-t0005 are
    another search's trials under the same ids (Snakemake redoes them), and a trial of a batch
    not proposed yet has no result of its own; only the startup trials and those cross-validated
    since their batch's proposal count."""
    search = {"n_trials": 6, "sampler": "tpe", "tpe": {"batch": 2, "startup_trials": 2}}
    workdir = make_run(tmp_path, merged(CONFIG, {"search": search}))
    for trial in ("t0000", "t0001", "t0002", "t0003", "t0004", "t0005"):  # all restored
        write_cv(workdir, trial, seconds=100)
        os.utime(workdir / f"results/search/cv/{trial}.json", (NOW - 5000, NOW - 5000))
        os.utime(workdir / f"benchmarks/search/cross_validate/{trial}.tsv", (NOW - 5000,) * 2)
    proposal = workdir / "results/search/batches/batch1.json"
    write(proposal, "{}")
    os.utime(proposal, (NOW - 3000, NOW - 3000))
    write_cv(workdir, "t0003", loss=0.05, seconds=100)  # cross-validated since
    os.utime(workdir / "results/search/cv/t0003.json", (NOW - 1000, NOW - 1000))
    os.utime(workdir / "benchmarks/search/cross_validate/t0003.tsv", (NOW - 1000,) * 2)
    # running now: Snakemake removed its restored result, not its restored benchmark
    (workdir / "results/search/cv/t0002.json").unlink()
    # the restored state's retraining of t0003 (the random trial), and this run's of t0001
    for trial, when in (("t0003", NOW - 4000), ("t0001", NOW - 2000)):
        write(workdir / f"results/final/{trial}/metrics.json", "{}")
        os.utime(workdir / f"results/final/{trial}/metrics.json", (when, when))
    state = collect(workdir, now=NOW)
    assert state.cross_validated == 3  # t0000, t0001 and t0003
    assert state.best["trial"] == "t0003"
    assert "3/6 trials cross-validated" in " ".join(report(state, NOW).split())
    # what the run's cost counts: its own trials' jobs (publish.cost_table)
    assert state.search_trials == ["t0000", "t0001", "t0003"]
    assert state.retrained_trials == ["t0001"]
    # the restored state's figures are the other search's: none is this run's yet
    for figure in FIGURES:
        write(workdir / figure, "x")
        os.utime(workdir / figure, (NOW - 4500, NOW - 4500))
    assert collect(workdir, now=NOW).figures_done == 0


def test_a_restored_states_logs_do_not_stretch_the_runs_stage_span(tmp_path):
    """A run started from another run's saved state has that run's main logs, days older:
    the cost table's stage span (first start to last end) is this run's, from its first start;
    a run without a restore keeps all its logs (a resume on a new machine carries its own)."""
    from mnist_mlp import publish, runs

    workdir = make_run(tmp_path, cores=None, locked=False)
    write_cv(workdir, "t0000")
    write(  # Snakemake's benchmark columns, as the cost table reads them
        workdir / "benchmarks/search/cross_validate/t0000.tsv",
        "s\th:m:s\tmax_rss\tcpu_time\n100.0\t0:01:40\t900.0\t95.0\n",
    )
    logs = workdir / ".snakemake/log"
    write(  # the restored run's: three days earlier
        logs / "2026-11-30T090928.039149.snakemake.log",
        "[Mon Nov 30 09:09:30 2026]\nrule cross_validate:\n"
        "[Mon Nov 30 12:00:00 2026]\nFinished jobid: 4 (Rule: cross_validate)\n",
    )
    write(  # this run's
        logs / "2026-12-03T133015.893598.snakemake.log",
        "[Thu Dec  3 13:30:20 2026]\nrule cross_validate:\n"
        "[Thu Dec  3 14:30:20 2026]\nFinished jobid: 9 (Rule: cross_validate)\n",
    )
    settings = {"starts": ["started at 2026-12-03T13:30:14+00:00 on a machine"]}
    write(workdir / runs.SETTINGS, json.dumps(settings))
    assert publish.cost_table(workdir)[0]["stage_wall_s"] == 3 * 86400 + 5 * 3600 + 20 * 60 + 50
    write(workdir / runs.SETTINGS, json.dumps(settings | {"restored": "full_run.tar.gz"}))
    if runs.first_start(settings).hour != 13:  # the log names are the machine's local time
        pytest.skip("the machine's time zone is not UTC")
    assert publish.cost_table(workdir)[0]["stage_wall_s"] == 3600
