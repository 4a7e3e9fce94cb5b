"""Where a run stands and how long it has left: ``python -m mnist_mlp.progress [--directory DIR]
[--configfile FILE ...] [--cores N]`` (``make progress``).

It reads a run's working directory only (``results/``, ``benchmarks/``, ``logs/`` and
Snakemake's ``.snakemake/``), with the standard library and PyYAML: no Snakemake, no lock, so it
runs beside a running workflow, in well under a second for 10,000 trials.

What it counts. A trial is cross-validated when ``results/search/cv/<trial>.json`` exists; a
retraining is done when ``results/final/<trial>/metrics.json`` exists; a figure when its file
exists; an output that Snakemake still marks as incomplete (``.snakemake/incomplete/``) is not
done. Those markers also tell which jobs run now: their file names are the outputs' paths in
URL-safe base64, their modification times the jobs' start times; each running job's newest
epoch line in its log shows how far it is ("fold 2/4 epoch 17/100"). Snakemake holds files in
``.snakemake/locks/`` while it runs; without them, or where no Snakemake process of this machine
works in the folder (``/proc``: one killed leaves its lock files), the markers are jobs that
were interrupted, and so are markers older than the running Snakemake's lock files: an earlier
run left them, this one redoes them. With successive halving (``search.pruning: halving``) a
trial is done once a rung's decision (``results/search/halving/batch<b>/rung<r>.tsv``) pruned
it or it finished at a rung, and each rung's jobs are counted from
``results/search/halving/<trial>/rung<r>.json``.
The config is the run's own (``results/run_config.started.yaml``, written when a run starts,
else ``results/run_config.yaml``, the results' config) when it exists, else the workflow's
``config.yaml`` (beside the Snakefile, two folders above this module) with the
``--configfile`` files merged over it key by key, as Snakemake does. Files
count as they are: an output that a changed config will make Snakemake redo counts as done
until it is redone.

The time-left model. The stages run one after the other (the retrained trials are known only
once every trial is cross-validated), so the estimate is the sum of

- search: the trials left (running ones included) times the mean time of the finished
  cross-validation jobs (the ``s`` column of ``benchmarks/search/cross_validate/<trial>.tsv``,
  or rather the time it computed, less pauses and waits: ``job_seconds``),
  less the time the running ones have already spent (at most that mean each), divided by the
  jobs at once: ``cores // 1`` (one thread per job), at most the trials left;
- final: the sum over the retrainings left (the top ``final.top_k`` trials that did not
  diverge, plus the references) of each one's time. A trial's own cross-validation epoch time
  (seconds per epoch of its fold fits, from ``results/search/cv/<trial>.json``; of a job
  paused, the share its benchmark says it computed) is scaled from
  the images of a CV fit (the training folds less skorch's 20 % validation split: 30,600 of
  the 51,000 training images at 4 folds) to all the training images and ``final.epochs``
  epochs (one thread, as the CV jobs); a reference, which has no CV result, gets the mean of
  the trials'. The networks differ in size by 10x or more, so the small ones finish first:
  once retrainings have finished, the estimates are scaled by what those took (the ``s`` of
  ``benchmarks/final/retrain/<trial>.tsv``, as ``job_seconds``) against their own estimates,
  rather than replaced by their mean. A running retraining counts with its epochs left times
  the median time of its newest epochs (its log's "epoch e/E ... seconds s" lines), else as
  for the search; jobs at once are ``cores // 1``.

With successive halving the search part is the rung jobs left (every trial at the first rung,
then what each rung promoted, or while undecided a ``1/eta`` share, an upper bound) at each
rung's mean job time (an unstarted rung: the first rung's time per epoch times the epochs it
adds), and until a trial is through its last rung the retrainings take the median epoch time
of every trial's newest rung fits (the median: a paused fit counts its pause in its seconds).

``select_winner`` and the figures take about a minute and are not estimated. ``--cores`` is the
``--cores`` of the run; by default the "Provided cores" of the newest Snakemake log, else this
machine's CPU count (on a cluster, the log's "Provided remote nodes" count jobs at once instead;
with a GPU device, the log's ``gpu`` resource caps the training jobs at once).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import statistics
import sys
import textwrap
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import yaml

from . import layout
from .config import merge_config
from .constants import VALID_FRACTION
from .halving import budgets
from .io import read_tsv
from .records import (
    LogFacts,
    _shown,
    benchmark_seconds,
    benchmark_times,
    incomplete_outputs,
    lock_time,
    locked,
    main_log,
    read_main_log,
    snakemake_running,
)
from .trials import reference_id, search_batch_sizes, trial_ids

REPO_CONFIG = Path(__file__).resolve().parents[2] / "config.yaml"
RUN_CONFIG = layout.RESULTS_CONFIG  # the results' (written when a run ends well)
STARTED_CONFIG = layout.STARTED_CONFIG  # the run that started last
MNIST_TRAIN_IMAGES = 60_000  # the official training set, split into training and test parts
# The training rules' threads and the files of the last stage, from the run folder's layout.
THREADS = {rule: layout.threads(rule) for rule in ("cross_validate", "train_rung", "retrain")}
FIGURES = (*layout.stage_files("figures"), *layout.outputs("export_study").values())
WINNER = layout.output("select_winner", "winner")
RANKING = layout.output("rank_trials", "ranking")
EPOCH_LINE = re.compile(r"((?:fold \d+/\d+ )?epoch \d+/\d+)")
EPOCH_SECONDS = re.compile(r" seconds (\d+(?:\.\d+)?)\s*$")  # an epoch line's own time
RETRAIN_EPOCH = re.compile(r"epoch (\d+)/(\d+)$")  # a retraining's activity (no folds)
WIDTH = 100  # the report's lines are wrapped at this width
# A lock without a Snakemake process here, in a run whose logs changed this recently: one runs
# on another machine (a SLURM job's Snakemake read from a login node). A running job logs an
# epoch every few seconds (a minute for the largest network on a slow CPU); a run killed less
# than this ago reads as running elsewhere until then.
ACTIVE_SECONDS = 120
LOG_MESSAGE = re.compile(r"^\S+ \S+ [A-Z]+ [\w.]+: ")  # "2026-11-29 20:42:50,831 INFO name: "


# ---------------------------------------------------------------------------------------------
# Reading


def _read_yaml(path: Path) -> dict:
    return yaml.safe_load(path.read_text()) or {}


def load_config(directory: Path, configfiles=()) -> tuple[dict, list[str]]:
    """The run's config and where it came from (see the module docstring)."""
    for name in (STARTED_CONFIG, RUN_CONFIG):  # the run that started last, else the results'
        run_config = directory / name
        if run_config.is_file():
            ignored = (
                " (the run's own; --configfile ignored)" if configfiles else " (the run's own)"
            )
            return _read_yaml(run_config), [name + ignored]
    config, sources = _read_yaml(REPO_CONFIG), [str(REPO_CONFIG)]
    for path in map(Path, configfiles):
        # as given (from the current directory), else from the working directory
        config = merge_config(config, _read_yaml(path if path.is_file() else directory / path))
        sources.append(str(path))
    return config, sources


def _listing(folder) -> set[str]:
    try:
        return set(os.listdir(folder))
    except OSError:
        return set()


def _tail(path: Path, size: int = 8192) -> list[str]:
    """The last lines of a text file (its last ``size`` bytes)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - size))
            lines = handle.read().decode(errors="replace").splitlines()
    except OSError:
        return []
    return [line for line in lines if line.strip()]


TRIAL_LINE = re.compile(r" (?:trial|retraining) (\{.*?\})(?: on | for )")


def trial_shape(log: Path) -> str:
    """ "784-335-196 Adam lr 1.2e-03": the trial a training job's log names in its first lines,
    as a person reads it; "" where the log does not say yet."""
    import ast

    try:
        with open(log, "rb") as handle:
            head = handle.read(4096).decode(errors="replace")
        params = ast.literal_eval(TRIAL_LINE.search(head).group(1))
        return f"784-{params['Nh1']}-{params['Nh2']} {params['optimizer']} lr {params['lr']:.1e}"
    except (OSError, AttributeError, ValueError, SyntaxError, KeyError, TypeError):
        return ""


def job_activity(log: Path) -> tuple[str, float | None]:
    """How far a running job is: its trial and its newest epoch line ("t0000 784-335-196 Adam lr
    1.2e-03 · fold 2/4 · epoch 17/100"), else its newest log message; and the median time of
    its newest epochs (up to 10), where logged."""
    lines = _tail(log)
    epoch_lines = [line for line in lines if "INFO" in line and EPOCH_LINE.search(line)]
    times = [float(m[1]) for line in epoch_lines[-10:] if (m := EPOCH_SECONDS.search(line))]
    per_epoch = statistics.median(times) if times else None
    shape = trial_shape(log)
    if epoch_lines:
        where = EPOCH_LINE.search(epoch_lines[-1]).group(1).replace(" epoch", " · epoch")
        return (f"{shape} · {where}" if shape else where), per_epoch
    if not lines:
        return "no log line yet", None
    message = LOG_MESSAGE.sub("", lines[-1])
    if TRIAL_LINE.search(" " + message):
        return (f"{shape} · starting" if shape else "starting"), None
    return (message if len(message) <= 60 else message[:57] + "..."), None


# ---------------------------------------------------------------------------------------------
# The run's state


@dataclass
class Job:
    rule: str
    trial: str | None
    log: str  # relative to the working directory
    started: float | None  # None: interrupted, not running
    activity: str
    seconds_per_epoch: float | None = None  # its newest epochs' median, where its log says


@dataclass
class Part:
    """One stage's share of the time left; ``seconds`` None where it cannot be estimated."""

    name: str
    seconds: float | None
    explanation: str
    per_job: float | None = None  # the time one of the stage's jobs takes, where known
    jobs_left: int | None = None  # where known


@dataclass
class Rung:
    """One rung of successive halving: its epochs per fold, the rung jobs finished, the jobs it
    will have (``exact`` False: not decided yet, ``1/eta`` of the rung before at most), their
    times, and the best trial at it so far (lowest rung score)."""

    budget: int
    done: int
    expected: int
    exact: bool
    seconds: list[float]
    leader: tuple[str, float] | None = None


@dataclass
class Progress:
    directory: Path
    config_sources: list[str]
    cores: int
    cores_source: str
    running: bool  # a Snakemake process holds the lock
    stage: str  # data, search, final, figures, done
    trials: int
    cross_validated: int
    diverged: int
    best: dict | None  # the best finished trial so far (lowest mean held-out loss)
    retrainings: int
    retrainings_known: bool  # False: from the trials so far (the ranking does not exist yet)
    references: int
    retrained: int
    figures: int
    figures_done: int
    winner: dict | None
    jobs: list[Job]  # running (or, when Snakemake is not running, interrupted)
    stopped: list[Job]  # training jobs with a log but no output, not running: failed?
    parts: list[Part]
    main_log: str | None
    log_facts: LogFacts = field(default_factory=LogFacts)
    pruned: int = 0  # with successive halving
    rungs: list[Rung] = field(default_factory=list)  # with successive halving
    # each finished trial's final result (relative path): its CV result, or with halving the
    # rung where it was pruned or completed
    finished_results: dict[str, str] = field(default_factory=dict)
    # the run's trials whose results on disk are its own or not there yet: not those beyond
    # n_trials or TPE's older than their batch's proposal (a restored state's, another search's)
    search_trials: list[str] = field(default_factory=list)
    # of the retrainings this run makes (the ranking's top, else the best so far; the
    # references), those done: by this run, not a restored state's older retraining
    retrained_trials: list[str] = field(default_factory=list)
    lock_left: bool = False  # lock files, but no Snakemake process here: killed?
    elsewhere: bool = False  # lock files, no Snakemake process here, logs that still change

    @property
    def eta(self) -> float | None:
        """Seconds left, None when a part cannot be estimated yet."""
        if any(part.seconds is None for part in self.parts):
            return None
        return sum(part.seconds for part in self.parts)


CV_KEYS = ("mean_accuracy", "mean_loss", "status")


def cv_summary(text: bytes, trial: str) -> dict:
    """A CV result's status, mean loss and mean accuracy. Where the file is laid out as
    ``io.write_json`` writes it (indent 2: a top-level key starts a line with two spaces), they
    are cut out of their lines: a full JSON parse of 10,000 results takes most of a second.
    Otherwise, from the parsed JSON."""
    found = {"trial": trial}
    for key in CV_KEYS:
        start = text.find(b'\n  "' + key.encode() + b'": ')
        if start < 0:
            result = json.loads(text)
            return {"trial": trial, **{key: result.get(key) for key in CV_KEYS}}
        start += len(key) + 7
        value = text[start : text.find(b"\n", start)].rstrip(b", \r")
        if value == b"null":
            found[key] = None
        elif value.startswith(b'"'):
            found[key] = value.strip(b'"').decode()
        else:
            found[key] = float(value)
    return found


def _cv_epoch_seconds(path) -> float | None:
    """Seconds per epoch of a trial's fold fits (from its CV result's folds)."""
    try:
        with open(path, "rb") as handle:
            result = json.loads(handle.read())
    except (OSError, ValueError):
        return None
    folds = [f for f in result.get("folds", []) if f.get("seconds") and f.get("epochs")]
    epochs = sum(f["epochs"] for f in folds)
    return sum(f["seconds"] for f in folds) / epochs if epochs else None


def jobs_at_once(rule: str, cores: int, facts: LogFacts, gpu: bool) -> int:
    """How many jobs of ``rule`` Snakemake runs at once."""
    if facts.remote_nodes:
        return facts.remote_nodes
    jobs = max(1, cores // THREADS[rule])  # Snakemake scales a rule's threads down to --cores
    if gpu and facts.gpus:
        jobs = min(jobs, facts.gpus)
    return jobs


def collect(directory, configfiles=(), cores: int | None = None, now: float | None = None):
    """The ``Progress`` of the run in ``directory``."""
    directory = Path(directory)
    now = time.time() if now is None else now
    config, sources = load_config(directory, configfiles)
    search, final = config["search"], config["final"]
    n_trials, folds = int(search["n_trials"]), int(search["folds"])
    top_k, epochs = int(final["top_k"]), int(final["epochs"])
    references = [reference_id(name) for name in final.get("references") or {}]
    train_images = MNIST_TRAIN_IMAGES - math.ceil(float(config["test_fraction"]) * 60_000)
    cv_images = round(train_images * (folds - 1) / folds * (1 - VALID_FRACTION))
    gpu = str(config.get("device", "")).startswith("cuda")

    log_path = main_log(directory)
    facts = read_main_log(log_path)
    if cores is not None:
        cores_source = "--cores"
    elif facts.cores is not None:
        cores, cores_source = facts.cores, "the main log"
    else:
        cores, cores_source = os.cpu_count() or 1, "this machine's CPUs"

    running = snakemake_running(directory)
    markers = incomplete_outputs(directory)
    lock_left = elsewhere = False
    if not running and locked(directory):
        # no Snakemake of this machine: killed, or on another machine of a shared file system,
        # where its logs still change
        quiet = now - _last_activity(directory, log_path, markers)
        elsewhere = quiet < ACTIVE_SECONDS
        running, lock_left = elsewhere, not elsewhere

    def done(path: str) -> bool:
        return path not in markers and (directory / path).is_file()

    # Search: every finished trial's CV result (small JSON files) and benchmark. Plain strings,
    # os.listdir and open(): pathlib would double the time at 10,000 trials.
    trials = trial_ids(n_trials)
    cv_pattern = layout.output("cross_validate", "cv")
    bench_pattern = layout.benchmark("cross_validate", trial="{trial}")
    cv_dir = os.path.join(directory, os.path.dirname(cv_pattern))
    benchmark_dir = os.path.join(directory, os.path.dirname(bench_pattern))
    cv_files, cv_benchmarks = _listing(cv_dir), _listing(benchmark_dir)
    proposed_at = _proposed_at(directory, search, trials)
    # a trial cross-validated again (or running now, its restored benchmark still on disk)
    superseded = {
        trial
        for trial in proposed_at
        if _older_than_proposal(directory, proposed_at, trial, cv_pattern.format(trial=trial))
        or _older_than_proposal(directory, proposed_at, trial, bench_pattern.format(trial=trial))
    }
    results, cv_seconds, computed_share = {}, [], {}
    for trial in trials:
        result = cv_pattern.format(trial=trial)
        if os.path.basename(result) not in cv_files or result in markers or trial in superseded:
            continue
        try:
            with open(os.path.join(directory, result), "rb") as handle:
                results[trial] = cv_summary(handle.read(), trial) | {"path": result}
        except (OSError, ValueError):
            continue
        bench = bench_pattern.format(trial=trial)
        if os.path.basename(bench) in cv_benchmarks:
            times = benchmark_times(os.path.join(directory, bench), THREADS["cross_validate"])
            if times is not None:
                cv_seconds.append(times[1])
                computed_share[trial] = times[1] / times[0] if times[0] > 0 else 1.0
    halving = search.get("pruning") == "halving"
    rungs, rung_epoch_seconds = [], []
    if halving:  # the trials' final results are their last rungs
        results, rung_jobs, promoted, rung_epoch_seconds = _halving_results(
            directory, markers, trials
        )
        eta = int(search["halving"]["eta"])
        budgets_ = budgets(search["halving"]["min_epochs"], eta, folds_epochs(search))
        rungs = _rungs(rung_jobs, promoted, budgets_, search_batch_sizes(search), eta)
    ok = sorted(
        (r for r in results.values() if r["status"] == "ok" and r["mean_loss"] is not None),
        key=lambda r: (r["mean_loss"], r["trial"]),
    )
    diverged = sum(r["status"] == "diverged" for r in results.values())
    pruned = sum(r["status"] == "pruned" for r in results.values())
    best = ok[0] if ok else None

    # Final: the retrained trials are the ranking's (once it exists for this search), else the
    # best so far stand in for them.
    search_done = len(results) == n_trials
    ranked = None
    if search_done and done(RANKING):
        rows = sorted(read_tsv(directory / RANKING), key=lambda row: int(row["rank"]))
        ranked = [row["trial"] for row in rows if row["status"] == "ok"][:top_k]
    candidates = ranked if ranked is not None else [r["trial"] for r in ok[:top_k]]
    if ranked is not None:
        retrainings = len(ranked) + len(references)
    else:
        retrainings = min(top_k, n_trials - diverged - pruned) + len(references)
    metrics_of = layout.output("retrain", "metrics").format
    retrain_benchmarks = _listing(directory / Path(layout.benchmark("retrain", trial="x")).parent)
    retrained, retrain_seconds, not_retrained = 0, {}, []
    for trial in [*candidates, *references]:
        metrics = metrics_of(trial=trial)
        if not done(metrics) or _older_than_proposal(directory, proposed_at, trial, metrics):
            not_retrained.append(trial)
            continue
        retrained += 1
        if f"{trial}.tsv" in retrain_benchmarks:
            seconds = benchmark_seconds(
                directory / layout.benchmark("retrain", trial=trial), THREADS["retrain"]
            )
            if seconds is not None:
                retrain_seconds[trial] = seconds
    # a figure counts once made after every result it shows (Snakemake redoes an output older
    # than an input): a smaller search's, or a restored state's of another search, does not
    newest = max((_mtime(directory, r["path"]) for r in results.values()), default=0.0)
    figures_done = sum(done(path) and _mtime(directory, path) >= newest for path in FIGURES)
    figures_done = figures_done if search_done else 0
    winner = None
    if done(WINNER):
        try:
            winner = json.loads((directory / WINNER).read_text())
        except (OSError, ValueError):
            winner = None

    if not done(layout.output("split_train_test", "train")) and not results:
        stage = "data"
    elif not search_done or ranked is None:
        stage = "search"
    elif retrained < retrainings or winner is None:
        stage = "final"
    elif figures_done < len(FIGURES):
        stage = "figures"
    else:
        stage = "done"

    # Running jobs: one per output marked incomplete; interrupted ones when Snakemake is not
    # running.
    jobs, interrupted = [], []
    run_started = lock_time(directory) if running else None
    for path, started in sorted(markers.items(), key=lambda item: item[1]):
        # a marker older than the running Snakemake is a job an earlier run left, not one that
        # runs now (this run redoes it when its turn comes, under --rerun-incomplete)
        stale = running and run_started is not None and started < run_started - 1
        started = started if running and not stale else None
        found = layout.rule_of(path)
        if found is None:  # a file no rule of this workflow makes
            if not stale:
                jobs.append(Job("a job", None, "", started, f"writing {path}"))
            continue
        rule, name, wildcards = found
        if name != next(iter(layout.outputs(rule, halving=True))):
            continue  # one job per first output: its other outputs' markers are the same job
        trial = wildcards.get("trial")
        log = layout.log(rule, **wildcards)
        if stale:
            interrupted.append(Job(rule, trial, log, None, ""))
        else:
            jobs.append(Job(rule, trial, log, started, *job_activity(directory / log)))
    # Training jobs that left a log but no output and are not running: failed, or interrupted
    # before Snakemake marked them (Snakemake reruns them).
    marked = {job.trial for job in [*jobs, *interrupted]}
    stopped = interrupted + [
        Job("cross_validate", trial, layout.log("cross_validate", trial=trial), None, "")
        for trial in sorted(
            {
                name.removesuffix(".log")
                for name in _listing(
                    directory / Path(layout.log("cross_validate", trial="x")).parent
                )
            }
            & set(trials) - set(results) - marked
        )
    ]
    stopped += [
        Job("retrain", trial, layout.log("retrain", trial=trial), None, "")
        for trial in sorted(
            {
                name.removesuffix(".log")
                for name in _listing(directory / Path(layout.log("retrain", trial="x")).parent)
            }
            & set([*candidates, *references]) - marked
        )
        if not done(metrics_of(trial=trial))
    ]

    parts = []
    if stage in ("data", "search") and halving:
        parts.append(
            _halving_part(
                rungs,
                int(search["halving"]["eta"]),
                [job for job in jobs if job.rule == "train_rung"],
                jobs_at_once("train_rung", cores, facts, gpu),
                now,
            )
        )
    elif stage in ("data", "search"):
        parts.append(
            _search_part(
                n_trials - len(results),
                cv_seconds,
                [job for job in jobs if job.rule == "cross_validate"],
                jobs_at_once("cross_validate", cores, facts, gpu),
                now,
            )
        )
    if stage in ("data", "search", "final"):
        # the folds' seconds are wall clock: a job paused (SIGSTOP) counts the share it computed
        epoch_seconds = {
            trial: seconds * computed_share.get(trial, 1.0)  # at most 1: job_seconds <= wall
            for trial in candidates
            if trial in results
            and (seconds := _cv_epoch_seconds(os.path.join(directory, results[trial]["path"])))
        }
        parts.append(
            _final_part(
                retrainings - retrained,
                not_retrained,
                retrain_seconds,
                epoch_seconds,
                dict(
                    ranked=ranked is not None,
                    cv_images=cv_images,
                    train_images=train_images,
                    epochs=epochs,
                ),
                [job for job in jobs if job.rule == "retrain"],
                jobs_at_once("retrain", cores, facts, gpu),
                now,
                rung_epoch_seconds,
            )
        )

    return Progress(
        directory=directory,
        config_sources=sources,
        cores=cores,
        cores_source=cores_source,
        running=running,
        stage=stage,
        trials=n_trials,
        cross_validated=len(results),
        diverged=diverged,
        pruned=pruned,
        best=best,
        retrainings=retrainings,
        retrainings_known=ranked is not None,
        references=len(references),
        retrained=retrained,
        figures=len(FIGURES),
        figures_done=figures_done,
        winner=winner,
        jobs=jobs,
        stopped=stopped,
        parts=parts,
        main_log=_shown(log_path, directory) if log_path else None,
        log_facts=facts,
        rungs=rungs,
        finished_results={trial: result["path"] for trial, result in sorted(results.items())},
        search_trials=[trial for trial in trials if trial not in superseded],
        retrained_trials=[t for t in [*candidates, *references] if t not in not_retrained],
        lock_left=lock_left,
        elsewhere=elsewhere,
    )


def folds_epochs(search: dict) -> int:
    return int(search["max_epochs"])


def _proposed_at(directory: Path, search: dict, trials: list[str]) -> dict[str, float | None]:
    """With TPE, when each proposed trial's batch was proposed (batch 1 on; None: not yet).
    A result of such a trial older than its proposal is another search's (a restored state of
    the random sampler's, under the same id) or of a batch proposed again: Snakemake redoes it,
    as it does any output older than its input."""
    if search.get("sampler") != "tpe":
        return {}
    times, start = {}, 0
    for batch, size in enumerate(search_batch_sizes(search)):
        members, start = trials[start : start + size], start + size
        if batch == 0:  # the startup trials: the random sampler's, no proposal
            continue
        proposal = directory / layout.output("propose_trials", "batch").format(batch=batch)
        try:
            proposed = proposal.stat().st_mtime
        except OSError:
            proposed = None
        times.update(dict.fromkeys(members, proposed))
    return times


def _mtime(directory: Path, path: str) -> float:
    try:
        return (directory / path).stat().st_mtime
    except OSError:
        return math.nan  # compares false: not done


def _older_than_proposal(directory: Path, proposed_at: dict, trial: str, path: str) -> bool:
    if trial not in proposed_at:
        return False
    if proposed_at[trial] is None:
        return True
    try:
        return (directory / path).stat().st_mtime < proposed_at[trial]
    except OSError:
        return False


def _last_activity(directory: Path, log_path: Path | None, markers: dict) -> float:
    """When the run last wrote its main log or a running job's log (0: never)."""
    logs = [log_path] if log_path else []
    for path in markers:
        if found := layout.rule_of(path):
            rule, _, wildcards = found
            logs.append(directory / layout.log(rule, **wildcards))
    times = [0.0]
    for log in logs:
        try:
            times.append(log.stat().st_mtime)
        except OSError:
            pass
    return max(times)


def _rung_folder(directory: Path, trial: str) -> Path:
    """The folder of one trial's rung results (successive halving)."""
    return (
        directory / Path(layout.output("train_rung", "result").format(trial=trial, rung=0)).parent
    )


def _halving_results(directory: Path, markers: dict, trials: list[str]):
    """With successive halving: the trials that finished (completed, diverged or pruned) by
    the rungs' decisions, a completed one with its last rung's result; per rung the finished
    rung jobs' times (benchmarks) and best trial; per (batch, rung) decided, the trials it
    promoted; every trial's newest rung fits' seconds per epoch."""
    root = _rung_folder(directory, "x").parent
    decisions: dict[tuple[int, int], list[dict]] = {}  # by (rung, batch)
    for table in sorted(root.glob("batch*/rung*.tsv")):
        if str(table.relative_to(directory)) in markers:
            continue
        rung = int(table.stem.removeprefix("rung"))
        decisions[rung, int(table.parent.name.removeprefix("batch"))] = read_tsv(table)
    results, last = {}, {}
    for key in sorted(decisions):
        for row in decisions[key]:
            last[row["trial"]] = (key[0], row["decision"])
    result_of = layout.output("train_rung", "result").format
    for trial, (rung, decision) in last.items():
        path = result_of(trial=trial, rung=rung)
        if decision == "promoted":
            continue
        if decision == "pruned":
            results[trial] = {"trial": trial, "status": "pruned", "mean_loss": None}
            results[trial] |= {"mean_accuracy": None, "path": path}
            continue
        try:
            with open(directory / path, "rb") as handle:
                results[trial] = cv_summary(handle.read(), trial) | {"path": path}
        except (OSError, ValueError):
            continue
    jobs, newest = {}, {}
    for path in root.glob("t*/rung*.json"):
        if str(path.relative_to(directory)) in markers:
            continue
        rung = int(path.stem.removeprefix("rung"))
        entry = jobs.setdefault(rung, {"done": 0, "seconds": [], "leader": None})
        entry["done"] += 1
        if rung >= newest.get(path.parent.name, (-1, None))[0]:
            newest[path.parent.name] = (rung, path)
        try:  # a trial still running has a rung score, one that completed its CV loss
            with open(path, "rb") as handle:
                result = json.loads(handle.read())
            score = result.get("score", result.get("mean_loss"))
        except (OSError, ValueError, AttributeError):
            score = None
        if isinstance(score, (int, float)) and math.isfinite(score):
            if entry["leader"] is None or (score, path.parent.name) < entry["leader"][::-1]:
                entry["leader"] = (path.parent.name, float(score))
        rung_number = path.stem.removeprefix("rung")
        bench = directory / layout.benchmark("train_rung", trial=path.parent.name, rung=rung_number)
        if (seconds := benchmark_seconds(bench, THREADS["train_rung"])) is not None:
            entry["seconds"].append(seconds)
    promoted = {
        (batch, rung): sum(row["decision"] == "promoted" for row in rows)
        for (rung, batch), rows in decisions.items()
    }
    # each trial's newest rung fits: their seconds per epoch (the folds' times add up rung on
    # rung), for the retrainings' estimate before any trial is through its last rung
    epoch_seconds = [s for _, path in newest.values() if (s := _cv_epoch_seconds(path))]
    return results, jobs, promoted, epoch_seconds


def _rungs(rung_jobs, promoted, budgets_: list[int], sizes: list[int], eta: int) -> list[Rung]:
    """The rungs as they stand. Each batch (its ``sizes``: one batch with the random sampler,
    TPE's batches else) is a bracket of its own: at rung 0 its trials, then what its rung
    before promoted (where decided, else ``1/eta`` of its jobs there, an upper bound: trials
    that stop early leave the race); a rung's count is exact once every batch decided."""
    expected, exact = list(sizes), [True] * len(sizes)
    rungs = []
    for rung, budget in enumerate(budgets_):
        if rung:
            for batch in range(len(sizes)):
                count = promoted.get((batch, rung - 1))
                exact[batch] = count is not None
                expected[batch] = count if exact[batch] else math.ceil(expected[batch] / eta)
        entry = rung_jobs.get(rung, {})
        rungs.append(
            Rung(
                budget,
                entry.get("done", 0),
                sum(expected),
                all(exact),
                entry.get("seconds", []),
                entry.get("leader"),
            )
        )
    return rungs


def _halving_part(rungs: list[Rung], eta, running, jobs, now) -> Part:
    """The rung jobs left (``_rungs``), each at its rung's mean job time (where none finished
    yet: the first rung's, scaled by the epochs the rung adds)."""
    first = rungs[0].seconds
    if not first:
        return Part("search", None, "not known yet: no rung job has finished")
    per_epoch = (sum(first) / len(first)) / rungs[0].budget
    left, total = 0, 0.0
    for index, rung in enumerate(rungs):
        added = rung.budget - (rungs[index - 1].budget if index else 0)
        mean = sum(rung.seconds) / len(rung.seconds) if rung.seconds else per_epoch * added
        todo = max(rung.expected - rung.done, 0)
        left += todo
        total += todo * mean
    if left == 0:
        return Part("search", 0.0, "every rung trained; ranking the trials")
    spent = _spent(running, total / left, now)
    at_once = min(jobs, left)
    epochs = ", ".join(str(rung.budget) for rung in rungs)
    text = (
        f"about {left:,} rung jobs left (rungs of {epochs} epochs, "
        f"1/{eta} promoted at each), at each rung's mean job time / {at_once} jobs at once"
    )
    return Part(
        "search", max(total - spent, 0.0) / at_once, text, per_job=total / left, jobs_left=left
    )


def _spent(jobs: list[Job], per_job: float, now: float) -> float:
    """The time the running ``jobs`` have already spent, at most ``per_job`` each."""
    return sum(min(max(now - job.started, 0.0), per_job) for job in jobs if job.started)


def _search_part(left, seconds, running, jobs, now) -> Part:
    if left == 0:
        return Part("search", 0.0, "every trial cross-validated; ranking them")
    if not seconds:
        return Part("search", None, "not known yet: no cross-validation job has finished")
    mean = sum(seconds) / len(seconds)
    spent = _spent(running, mean, now)
    at_once = min(jobs, left)
    estimate = max(left * mean - spent, 0.0) / at_once
    already = (
        f", less {duration(spent)} already run by the {len(running)} running," if spent else ""
    )
    text = (
        f"{left:,} trials left × {mean:,.0f} s (the mean of {_plural(len(seconds), 'finished')})"
        f"{already} / {at_once} jobs at once"
    )
    return Part("search", estimate, text, per_job=mean)


def _final_part(
    left, not_retrained, finished, epoch_seconds, sizes, running, jobs, now, rung_epochs=()
) -> Part:
    """``not_retrained``: the retrainings left where known (at most ``left``; the best trials so
    far stand in for the ranking's); ``finished``: the finished ones' seconds by trial;
    ``epoch_seconds``: the candidates' CV seconds per epoch by trial; ``rung_epochs``: with
    successive halving, every trial's newest rung fits' seconds per epoch, which stand in while
    no candidate is known."""
    if left <= 0:
        return Part("final", 0.0, "every retraining done; choosing the winner")
    scale = sizes["train_images"] / sizes["cv_images"] * sizes["epochs"]
    predicted = {trial: seconds * scale for trial, seconds in epoch_seconds.items()}
    if predicted:
        typical = sum(predicted.values()) / len(predicted)  # a reference's, an unknown trial's
        which = "ranking's" if sizes["ranked"] else "current"
        low, high = min(epoch_seconds.values()), max(epoch_seconds.values())
        per_epoch = f"{low:.2f}" if f"{low:.2f}" == f"{high:.2f}" else f"{low:.2f}-{high:.2f}"
        source = f"each of the {which} {len(epoch_seconds)} best trials' CV epoch time, {per_epoch}"
        source_tail = "; a reference: their mean"
    elif rung_epochs:
        # the median: a fit paused (SIGSTOP) meanwhile counts its pause in its seconds
        median = statistics.median(rung_epochs)
        typical = median * scale
        source = (
            f"no trial is through its last rung yet: the median epoch time of the "
            f"{len(rung_epochs):,} trials' rung fits so far, {median:.2f}"
        )
        source_tail = ""
    else:  # no CV result yet (each the workflow writes has its folds' epoch times)
        return Part("final", None, "not known yet: no cross-validation job has finished")
    measured = [trial for trial in finished if trial in predicted]
    factor = (
        sum(finished[t] for t in measured) / sum(predicted[t] for t in measured)
        if measured
        else 1.0
    )
    estimates = {trial: factor * predicted.get(trial, typical) for trial in not_retrained}
    total = sum(estimates.values()) + (left - len(estimates)) * factor * typical
    basis = (
        f"~{total / left:,.0f} s on average ({source} s per epoch of "
        f"{sizes['cv_images']:,} images, scaled to {sizes['train_images']:,} images × "
        f"{sizes['epochs']} epochs{source_tail}"
    )
    if measured:
        basis += (
            f"; × {factor:.2f}, what the {_plural(len(measured), 'finished')} took against "
            "their own estimates"
        )
    basis += ")"
    # a running one: its epochs left × its newest epochs' time where its log says (not its time
    # so far: that holds the start-up), else as the search's
    change = 0.0  # to the total: minus what the running ones have done
    for job in running:
        own = estimates.get(job.trial, total / left)
        epochs = RETRAIN_EPOCH.search(job.activity)
        if job.started and epochs and job.seconds_per_epoch:
            change += job.seconds_per_epoch * (int(epochs[2]) - int(epochs[1])) - own
        else:
            change -= _spent([job], own, now)  # nothing for an interrupted one: it starts again
    at_once = min(jobs, left)
    estimate = max(total + change, 0.0) / at_once
    already = ""
    if change:
        verb = "less" if change < 0 else "plus"
        already = f", {verb} {duration(abs(change))} for the {len(running)} running (their epochs),"
    text = f"{_plural(left, 'retraining')} × {basis}{already} / {at_once} at once"
    per_job = (sum(finished.values()) + total) / (len(finished) + left)  # finished ones as run
    return Part("final", estimate, text, per_job=per_job)


def _plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}" if count == 1 or noun == "finished" else f"{count:,} {noun}s"


# ---------------------------------------------------------------------------------------------
# The report


def duration(seconds: float) -> str:
    """ "45 s", "3 min 5 s", "2 h 10 min", "1 d 3 h"."""
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s" if seconds < 600 else f"{seconds // 60} min"
    minutes = round(seconds / 60)
    if minutes < 24 * 60:
        return f"{minutes // 60} h {minutes % 60} min"
    hours = round(seconds / 3600)
    return f"{hours // 24} d {hours % 24} h"


def _rung_text(rung: Rung) -> str:
    """ "9 epochs 75/150 (best t0042, score 0.0876)", "27 epochs 0/≤50"."""
    text = f"{rung.budget} epochs {rung.done:,}/{'' if rung.exact else '≤'}{rung.expected:,}"
    if rung.leader:
        text += f" (best {rung.leader[0]}, score {rung.leader[1]:.4f})"
    return text


def _wrapped(text: str, indent: int) -> list[str]:
    return textwrap.wrap(text, WIDTH, subsequent_indent=" " * indent, break_on_hyphens=False)


def report(progress: Progress, now: float | None = None) -> str:
    """The text ``python -m mnist_mlp.progress`` prints."""
    now = time.time() if now is None else now
    p = progress
    search_rule = "train_rung" if p.rungs else "cross_validate"
    lines = [
        f"Run in {p.directory.resolve()}",
        f"  config: {' + '.join(p.config_sources)}; cores: {p.cores} (from {p.cores_source})",
    ]
    if p.elsewhere:
        state = (
            "Snakemake holds .snakemake/locks/; no process of it runs on this machine, but the "
            "run's logs changed in the last 2 minutes: it runs on another machine?"
        )
    elif p.running:
        state = "Snakemake is running (it holds .snakemake/locks/)"
    elif p.stage == "done":
        state = "finished"
    elif p.lock_left:
        state = (
            "no Snakemake process on this machine works here and its logs have not changed "
            "for 2 minutes, but one left its lock in .snakemake/locks/: killed? If no "
            "Snakemake runs it on another machine, `snakemake --unlock` (or `mnist-mlp run "
            "resume`) clears it"
        )
    else:
        state = "Snakemake is not running (no lock in .snakemake/locks/)"
    lines += _wrapped(f"Stage: {p.stage}; {state}", 2) + [""]

    best = ""
    if p.best:
        best = (
            f"; best so far {p.best['trial']} (mean held-out loss {p.best['mean_loss']:.4f}, "
            f"accuracy {p.best['mean_accuracy']:.4f})"
        )
    if p.rungs:  # successive halving: a trial is done once pruned or through its last rung
        lines += _wrapped(
            f"  search   {p.cross_validated:,}/{p.trials:,} trials done: pruned, diverged or "
            f"through their last rung ({p.pruned:,} pruned, {p.diverged:,} diverged){best}",
            11,
        )
        lines += _wrapped("  rungs    " + "; ".join(map(_rung_text, p.rungs)), 11)
    else:
        lines += _wrapped(
            f"  search   {p.cross_validated:,}/{p.trials:,} trials cross-validated "
            + (f"or pruned ({p.pruned:,} pruned, " if p.pruned else "(")
            + f"{p.diverged:,} diverged){best}",
            11,
        )
    guess = "" if p.retrainings_known else ", if none of the trials left diverges"
    final = (
        f"  final    {p.retrained}/{p.retrainings} retrainings (top "
        f"{p.retrainings - p.references} + {_plural(p.references, 'reference')}{guess})"
    )
    if p.winner:
        # before the retrainings end, the winner on disk is an earlier run's (a restored state's)
        title = "an earlier run's winner" if p.stage in ("data", "search", "final") else "winner"
        final += (
            f"; {title} {p.winner.get('trial')} (test accuracy "
            f"{p.winner.get('test_accuracy', math.nan):.4f}, official test "
            f"{p.winner.get('official_test_accuracy', math.nan):.4f})"
        )
    lines += _wrapped(final, 11)
    lines += [f"  figures  {p.figures_done}/{p.figures}", ""]

    if p.jobs:
        title = "Running now" if p.running else "Interrupted (rerun with --rerun-incomplete)"
        lines.append(f"{title} ({len(p.jobs)}):")
        for job in p.jobs:
            name = f"{job.rule} {job.trial}" if job.trial else job.rule
            since = f", running {duration(now - job.started)}" if job.started else ""
            log = f"  ({job.log})" if job.log else ""
            lines.append(f"  {name}: {job.activity}{since}{log}")
    elif p.stage != "done":
        lines.append("Running now: no job" + ("" if p.running else " (Snakemake is not running)"))
    if p.stopped:
        shown = ", ".join(job.trial for job in p.stopped[:8])
        more = f" and {len(p.stopped) - 8} more" if len(p.stopped) > 8 else ""
        lines += _wrapped(
            f"With a log but no result, not running ({len(p.stopped)}; failed or interrupted, "
            f"Snakemake reruns them): {shown}{more}; see {p.stopped[0].log}",
            2,
        )
    lines.append("")

    if p.stage == "done":
        lines.append("ETA: finished")
    else:
        eta = p.eta
        if eta is None:
            lines.append("ETA: not known yet, no job has been timed; the parts:")
        else:
            at = datetime.fromtimestamp(now + eta).astimezone().strftime("%Y-%m-%d %H:%M %Z")
            lines.append(f"ETA {duration(eta)} (about {at}), the sum of the stages left:")
        for part in p.parts:
            took = "" if part.seconds is None else f"{duration(part.seconds)} = "
            lines += _wrapped(f"  {part.name:<7} {took}{part.explanation}", 10)
        lines += _wrapped(
            "  then select_winner and the figures (about a minute, not estimated). Job times: "
            "the s column (wall seconds; CPU time for paused jobs) of "
            f"{layout.benchmark(search_rule, trial='<trial>', rung='<r>')} and "
            f"{layout.benchmark('retrain', trial='<trial>')}.",
            2,
        )
        if not p.running:
            lines.append("  (The time left once Snakemake is restarted.)")
    lines.append("")

    lines.append("Logs:")
    if p.main_log:
        facts = p.log_facts
        extra = [facts.steps] if facts.steps else []
        if facts.errors:
            extra.append(f"{_plural(facts.errors, 'Error in rule')}: grep -A 20 'Error in rule'")
        lines.append(f"  main:    {p.main_log}")
        if extra:
            lines.append(f"           Snakemake: {'; '.join(extra)}")
    else:
        lines.append("  main:    none yet (.snakemake/log/ is empty)")
    lines += [
        f"  per job: {layout.log(search_rule, trial='<trial>', rung='<r>')}, "
        f"{layout.log('retrain', trial='<trial>')},",
        "           logs/final/select_winner.log, logs/figures/<rule>.log",
    ]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mnist_mlp.progress",
        description="Where a run of the workflow stands and how long it has left "
        "(reads its working directory only; safe beside a running Snakemake).",
    )
    parser.add_argument("--directory", "-d", default=".", help="the run's working directory")
    parser.add_argument(
        "--configfile",
        nargs="+",
        action="extend",
        default=[],
        metavar="FILE",
        help="the run's --configfile files (used when results/run_config.yaml is missing)",
    )
    parser.add_argument(
        "--cores",
        type=int,
        help="the run's --cores (default: from the newest Snakemake log, else the CPU count)",
    )
    args = parser.parse_args(argv)
    directory = Path(args.directory)
    if not directory.is_dir():
        parser.error(f"no such directory: {directory}")
    if not (directory / ".snakemake").is_dir() and not (directory / "results").is_dir():
        parser.error(
            f"{directory} is not a run of this workflow (it has neither .snakemake/ nor "
            "results/): give --directory the folder Snakemake ran in"
        )
    now = time.time()
    try:
        state = collect(directory, args.configfile, args.cores, now)
    except FileNotFoundError as error:
        parser.error(f"{error.strerror}: {error.filename}")
    print(report(state, now))
    return 0


if __name__ == "__main__":
    sys.exit(main())
