#!/usr/bin/env bash
# Runs THERE, on a machine with a CUDA GPU and PyTorch but no internet: installs the carried
# wheels (gpu/prepare_carry.sh made them here) if the workflow's packages are missing, checks
# the GPU, runs the workflow's full default protocol in a fresh working directory with K
# training jobs sharing the GPU, and prints the wall time of each stage and the winner; the
# main results go to the output folder. See gpu/README.md.
#
#   bash gpu/run_full_protocol.sh [options] [-- SNAKEMAKE_ARGS...]
#
# --wheels DIR      carried wheels (default: .whl in the repository root)
# --mnist DIR       folder with the four MNIST files (default: .mnist in the repository root)
# --out DIR         where the results go (default: $OUT, else ./gpu-results)
# --device D        cuda (default), cuda:N, or cpu (no GPU: for a test of this script)
# --gpu-jobs K      training jobs at once on the GPU (default: the number of CPU cores; README)
# --cores N         Snakemake's --cores (default: the number of CPU cores)
# --budget-s S      stop Snakemake so that the whole script ends within S seconds of its
#                   start, then report how far it got (default 0: no limit)
# --workdir DIR     the run's working directory (default: a new one under /tmp); an existing
#                   one is resumed: what is complete there is not run again
# --python PY       the Python that has torch (default: $PYTHON, else python3)
# --site DIR        where the wheels are installed, put first on PYTHONPATH
#                   (default: /tmp/mnist-mlp-site)
# --force-install   install the wheels even if the packages are there
# --setup-only      install and check, then stop
# --progress-s S    seconds between progress lines (default 30)
# --no-mps          do not run the jobs under CUDA MPS. By default the script starts an MPS
#                   daemon (and stops it), so that kernels of different jobs run at once: on
#                   the H200 with 16 jobs, 0.37 s per CV epoch with MPS against 1.36 s without
#                   (docs/gpu/); without MPS the 16 processes take turns on the GPU
# --mps             (the default)
# SNAKEMAKE_ARGS    passed on, e.g. --config search='{n_trials: 20}' or --configfile F;
#                   --config and --set-threads are merged with this script's own
# Environment: PYTHON (as --python), OUT (as --out), RESERVE_S (seconds of --budget-s kept for
# stopping Snakemake and the report; default 30).
set -euo pipefail

START=$EPOCHREALTIME
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WHEELS=$REPO/.whl
MNIST=$REPO/.mnist
OUT_DIR=${OUT:-$PWD/gpu-results}
DEVICE=cuda
GPU_JOBS=
CORES=
BUDGET_S=0
WORKDIR=
PY=${PYTHON:-python3}
SITE=/tmp/mnist-mlp-site
FORCE_INSTALL=0
SETUP_ONLY=0
PROGRESS_S=30
MPS=1
# Seconds kept from the budget for Snakemake to stop its jobs and for the report.
RESERVE_S=${RESERVE_S:-30}

usage() { sed -n '2,31p' "$0"; }
while [[ $# -gt 0 ]]; do
    case $1 in
        --wheels) WHEELS=$2; shift ;;
        --mnist) MNIST=$2; shift ;;
        --out) OUT_DIR=$2; shift ;;
        --device) DEVICE=$2; shift ;;
        --gpu-jobs) GPU_JOBS=$2; shift ;;
        --cores) CORES=$2; shift ;;
        --budget-s) BUDGET_S=$2; shift ;;
        --workdir) WORKDIR=$2; shift ;;
        --python) PY=$2; shift ;;
        --site) SITE=$2; shift ;;
        --force-install) FORCE_INSTALL=1 ;;
        --setup-only) SETUP_ONLY=1 ;;
        --progress-s) PROGRESS_S=$2; shift ;;
        --mps) MPS=1 ;;
        --no-mps) MPS=0 ;;
        --) shift; break ;;
        -h | --help) usage; exit 0 ;;
        *) echo "run_full_protocol: unknown option $1 (snakemake's go after --)" >&2; exit 2 ;;
    esac
    shift
done
EXTRA=("$@")

elapsed() { awk -v a="$START" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }
say() { printf '[%7s s] %s\n' "$(elapsed)" "$*"; }
die() { say "ERROR: $*" >&2; exit 1; }

[[ $DEVICE =~ ^(cpu|cuda(:[0-9]+)?)$ ]] || die "--device must be cpu, cuda or cuda:N, not $DEVICE"
command -v "$PY" >/dev/null || die "no Python '$PY' (--python)"
NPROC=$(nproc)
CORES=${CORES:-$NPROC}
GPU_JOBS=${GPU_JOBS:-$NPROC}

# --- 1. packages --------------------------------------------------------------------------
# The carried wheels go into $SITE, first on PYTHONPATH for Snakemake and every job it starts
# (script rules run with Snakemake's own Python). They are installed when one of them is not
# there at its version (all at once: --no-deps, so pip needs no index).
export PYTHONPATH=$SITE${PYTHONPATH:+:$PYTHONPATH}
shopt -s nullglob
wheels=()
[[ -d $WHEELS ]] && wheels=("$WHEELS"/*.whl)
shopt -u nullglob
missing=$("$PY" - "${wheels[@]}" <<'PY' || die "$PY could not check the installed packages"
import importlib.metadata as metadata
import re
import sys
from pathlib import Path

for wheel in sys.argv[1:]:
    name, version = Path(wheel).name.split("-")[:2]
    try:
        if metadata.version(name) == version:
            continue
    except metadata.PackageNotFoundError:
        pass
    print(re.sub(r"[-_.]+", "-", name).lower())
PY
)
if ((${#wheels[@]} == 0)); then
    say "packages: no wheels in $WHEELS; using what $PY has"
elif [[ -z $missing && $FORCE_INSTALL == 0 ]]; then
    say "packages: all ${#wheels[@]} carried packages already installed at their versions"
else
    say "packages: installing ${#wheels[@]} wheels into $SITE (missing: $(echo "$missing" | wc -w))"
    mkdir -p "$SITE"
    "$PY" -m pip install --quiet --disable-pip-version-check --no-index --no-deps --no-compile \
        --no-cache-dir --upgrade --target "$SITE" "${wheels[@]}" ||
        die "pip could not install the wheels of $WHEELS"
    say "packages: installed ${#wheels[@]} wheels"
fi

# Imports, versions, and the version requirements of Snakemake and skorch among what is
# installed (a mismatch is reported, not fatal: pip never checked them with --no-deps).
"$PY" - "$DEVICE" <<'PY' || die "the packages or the device are not usable (above)"
import importlib.metadata as metadata
import sys

device = sys.argv[1]
import snakemake  # noqa: E402,F401
import snakemake.api  # noqa: E402,F401

versions = {name: metadata.version(name) for name in ("snakemake", "skorch", "jsonschema")}
try:
    from packaging.requirements import Requirement
except ImportError:
    Requirement = None
conflicts, seen, todo = [], set(), ["snakemake", "skorch"]
while todo and Requirement:
    name = todo.pop()
    if name in seen:
        continue
    seen.add(name)
    for line in metadata.requires(name) or []:
        requirement = Requirement(line)
        if requirement.marker and not requirement.marker.evaluate({"extra": ""}):
            continue
        try:
            installed = metadata.version(requirement.name)
        except metadata.PackageNotFoundError:
            if requirement.name.lower() != "pulp":  # only the ILP scheduler, not used here
                conflicts.append(f"{name} needs {requirement}: not installed")
            continue
        if not requirement.specifier.contains(installed, prereleases=True):
            conflicts.append(f"{name} needs {requirement}: {installed} installed")
        todo.append(requirement.name)
for conflict in conflicts:
    print(f"  warning: {conflict}")
line = " ".join(f"{name} {version}" for name, version in versions.items())
if device == "cpu":
    print(f"  {line}; device cpu (no GPU check)")
    sys.exit(0)
import torch  # noqa: E402

if not torch.cuda.is_available():
    sys.exit(f"  torch {torch.__version__} sees no CUDA device (run with --device cpu?)")
index = int(device.split(":")[1]) if ":" in device else 0
name = torch.cuda.get_device_name(index)
print(f"  {line}; torch {torch.__version__}, {device} = {name}")
PY

for name in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte \
    t10k-labels-idx1-ubyte; do
    [[ -f $MNIST/$name.gz || -f $MNIST/$name ]] || die "MNIST file $name(.gz) not in $MNIST (--mnist)"
done
MNIST=$(cd "$MNIST" && pwd)
SETUP_S=$(elapsed)
say "setup done in $SETUP_S s; $NPROC CPU cores, --cores $CORES, $GPU_JOBS GPU jobs at once"
if ((SETUP_ONLY)); then
    exit 0
fi

# --- 2. the workflow ------------------------------------------------------------------------
mkdir -p "$OUT_DIR"
OUT_DIR=$(cd "$OUT_DIR" && pwd)
if [[ -z $WORKDIR ]]; then
    WORKDIR=$(mktemp -d "${TMPDIR:-/tmp}/mnist-mlp-gpu.XXXXXX")
elif [[ -d $WORKDIR/.snakemake ]]; then
    say "resuming in $WORKDIR: complete outputs there are kept"
fi
mkdir -p "$WORKDIR"
WORKDIR=$(cd "$WORKDIR" && pwd)
LOG=$WORKDIR/snakemake.log

# --config and --set-threads of SNAKEMAKE_ARGS join this script's own (given twice, Snakemake
# would keep only the last); their items come last, so they win.
config=("device=$DEVICE" "mnist_dir=$MNIST")
threads=()  # the rules' one thread each: all 16 retrainings of the default run at once
passed=()
target=passed
for arg in "${EXTRA[@]}"; do
    case $arg in
        --config | -C) target=config ;;
        --config=*) config+=("${arg#--config=}"); target=config ;;
        --set-threads) target=threads ;;
        -*) passed+=("$arg"); target=passed ;;
        *)
            case $target in
                config) config+=("$arg") ;;
                threads) threads+=("$arg") ;;
                *) passed+=("$arg") ;;
            esac
            ;;
    esac
done
command=("$PY" -m snakemake --snakefile "$REPO/Snakefile" --directory "$WORKDIR"
    --cores "$CORES" --resources "gpu=$GPU_JOBS" --scheduler greedy --rerun-incomplete
    --config "${config[@]}")
((${#threads[@]} == 0)) || command+=(--set-threads "${threads[@]}")
command+=("${passed[@]}")

# Samples for the report: CPU busy share (from /proc/stat) and, on a GPU, its utilisation.
SAMPLES=$WORKDIR/samples
mkdir -p "$SAMPLES"
helpers=()
mps_on=0
cleanup() {
    local pid
    for pid in "${helpers[@]}"; do kill "$pid" 2>/dev/null || true; done
    if ((mps_on)); then
        echo quit | nvidia-cuda-mps-control >/dev/null 2>&1 || true
        mps_on=0
    fi
}
trap cleanup EXIT
# MPS lets kernels of different processes run at once; without it the GPU takes turns
# between the jobs' contexts. If the daemon does not start or CUDA fails under it, the run
# goes on without it.
start_mps() {
    command -v nvidia-cuda-mps-control >/dev/null || { say "--mps: no nvidia-cuda-mps-control"; return 1; }
    # short paths: the daemon's socket path has a length limit
    export CUDA_MPS_PIPE_DIRECTORY=/tmp/mnist-mlp-mps.$$/pipe
    export CUDA_MPS_LOG_DIRECTORY=/tmp/mnist-mlp-mps.$$/log
    mkdir -p "$CUDA_MPS_PIPE_DIRECTORY" "$CUDA_MPS_LOG_DIRECTORY"
    nvidia-cuda-mps-control -d || { say "--mps: the MPS daemon did not start"; return 1; }
    mps_on=1
    timeout 120 "$PY" -c 'import torch; torch.zeros(1, device="cuda").sum().item()' || {
        say "--mps: CUDA failed under MPS (log: $CUDA_MPS_LOG_DIRECTORY)"
        return 1
    }
}
if ((MPS)) && [[ $DEVICE != cpu ]]; then
    if start_mps; then
        say "CUDA MPS on (log: $CUDA_MPS_LOG_DIRECTORY)"
    else
        cleanup
        unset CUDA_MPS_PIPE_DIRECTORY CUDA_MPS_LOG_DIRECTORY
        MPS=0
        say "going on without MPS"
    fi
fi
# Each helper sleeps in the background and waits, so that a TERM ends it at once, its sleep
# too (a sleep left behind would hold this script's output open).
(
    trap 'kill "$nap" 2>/dev/null; exit 0' TERM
    read -ra fields </proc/stat  # cpu user nice system idle iowait irq softirq steal ...
    prev_total=$((fields[1] + fields[2] + fields[3] + fields[4] + fields[5] + fields[6] + fields[7] + fields[8]))
    prev_idle=$((fields[4] + fields[5]))
    while :; do
        sleep 2 &
        nap=$!
        wait "$nap"
        read -ra fields </proc/stat
        total=$((fields[1] + fields[2] + fields[3] + fields[4] + fields[5] + fields[6] + fields[7] + fields[8]))
        idle=$((fields[4] + fields[5]))
        printf '%s\t%s\t%s\n' "$EPOCHREALTIME" $((total - prev_total)) $((idle - prev_idle))
        prev_total=$total prev_idle=$idle
    done >"$SAMPLES/cpu.tsv"
) &
helpers+=($!)
if [[ $DEVICE != cpu ]] && command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used --format=csv,noheader,nounits \
        -l 2 >"$SAMPLES/gpu.csv" 2>/dev/null &
    helpers+=($!)
fi
progress() {
    local planned done_cv done_rt started_rt load gpu
    [[ -f $LOG ]] || return 0
    planned=$(awk '/^Job stats:/ { s = 1 } s && $1 == "cross_validate" { print $2; exit }' "$LOG")
    done_cv=$(grep -c '(Rule: cross_validate)' "$LOG" || true)
    done_rt=$(grep -c '(Rule: retrain)' "$LOG" || true)
    started_rt=$(grep -cE '^(local)?rule retrain:' "$LOG" || true)
    load=$(cut -d ' ' -f 1 /proc/loadavg)
    gpu=
    [[ -s $SAMPLES/gpu.csv ]] && gpu=", GPU busy $(tail -n 1 "$SAMPLES/gpu.csv" | cut -d , -f 2 | tr -d ' ') %"
    say "cross_validate $done_cv/${planned:-?} done, retrain $done_rt done of $started_rt started, load $load$gpu"
}
(
    trap 'kill "$tick" 2>/dev/null; exit 0' TERM
    while :; do
        sleep "$PROGRESS_S" &
        tick=$!
        wait "$tick"
        progress
    done
) &
helpers+=($!)

limit=0
if ((BUDGET_S > 0)); then
    limit=$(awk -v b="$BUDGET_S" -v e="$(elapsed)" -v r="$RESERVE_S" 'BEGIN { printf "%d", b - e - r }')
    ((limit > 0)) || die "--budget-s $BUDGET_S leaves no time for the workflow after the setup"
    command=(timeout --signal=TERM --kill-after=20 "$limit" "${command[@]}")
fi

budget_note=
((limit == 0)) || budget_note=", stopped after $limit s if not done"
say "snakemake in $WORKDIR (log: $LOG)$budget_note"
printf '%q ' "${command[@]}" >"$WORKDIR/command.txt"
SNAKEMAKE_START=$EPOCHREALTIME
rc=0
PYTHONUNBUFFERED=1 "${command[@]}" >"$LOG" 2>&1 </dev/null || rc=$?
SNAKEMAKE_END=$EPOCHREALTIME
cleanup
helpers=()
if ((rc == 124 || rc == 137)) && ((limit > 0)); then
    say "snakemake stopped by the time budget (--budget-s $BUDGET_S) after $limit s"
elif ((rc != 0)); then
    say "snakemake failed (exit $rc); the end of its log:"
    tail -n 25 "$LOG" | sed 's/^/    /'
else
    say "snakemake finished"
fi

# --- 3. the report ----------------------------------------------------------------------------
device_note=$DEVICE
((MPS == 0)) || device_note="$DEVICE with MPS"
"$PY" - "$WORKDIR" "$OUT_DIR" "$SNAKEMAKE_START" "$SNAKEMAKE_END" "$SETUP_S" "$rc" \
    "$device_note" "$GPU_JOBS" "$CORES" <<'PY' || rc=$?
import csv
import gzip
import json
import re
import shutil
import statistics
import sys
import tarfile
import time
from datetime import datetime
from pathlib import Path

work, out = Path(sys.argv[1]), Path(sys.argv[2])
t0, t1, setup_s = float(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
rc, device, gpu_jobs, cores = int(sys.argv[6]), sys.argv[7], sys.argv[8], sys.argv[9]
status = "stopped by the time budget" if rc in (124, 137) else f"failed (exit {rc})" if rc else ""
log_text = (work / "snakemake.log").read_text(errors="replace")
lines = []


def say(text=""):
    print(text)
    lines.append(text)


# Job starts and ends from Snakemake's log: a "[Sun Nov 29 20:55:51 2026]" line, then
# "rule NAME:" / "localrule NAME:" (start) or "Finished jobid: N (Rule: NAME)" (end).
started, finished, stamp = {}, {}, t0
for line in log_text.splitlines():
    match = re.fullmatch(r"\[(\w{3} \w{3} +\d+ \d\d:\d\d:\d\d \d{4})\]", line.strip())
    if match:
        stamp = time.mktime(time.strptime(match.group(1), "%a %b %d %H:%M:%S %Y"))
        continue
    match = re.match(r"(?:local)?(?:rule|checkpoint) (\w+):$", line)
    if match:
        started.setdefault(match.group(1), []).append(stamp)
        continue
    match = re.search(r"Finished jobid: \d+ \(Rule: (\w+)\)", line)
    if match:
        finished.setdefault(match.group(1), []).append(stamp)
planned = {}
match = re.search(r"Job stats:\n.*?\n-+ +-+\n(.*?)\n\n", log_text + "\n\n", re.S)
if match:
    planned = {name: int(n) for name, n in re.findall(r"^(\w+) +(\d+)$", match.group(1), re.M)}
    planned.pop("total", None)


def n_done(rule):
    return len(finished.get(rule, []))


def end_of(*rules):
    stamps = [s for rule in rules for s in finished.get(rule, [])]
    return max(stamps) if stamps else None


def read_tsv(path):
    with open(path) as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def mean_share(path, start, end, parse):
    """Mean of the samples in [start, end] of a samples file."""
    values = []
    if path.exists():
        for row in path.read_text().splitlines():
            try:
                when, value = parse(row)
            except (ValueError, IndexError, ZeroDivisionError):
                continue
            if start <= when <= end:
                values.append(value)
    return statistics.fmean(values) if values else None


def cpu_sample(row):
    when, total, idle = row.split("\t")
    return float(when), 100 * (1 - int(idle) / int(total))


def gpu_sample(row):
    stamp, util, _ = (field.strip() for field in row.split(","))
    return datetime.strptime(stamp, "%Y/%m/%d %H:%M:%S.%f").timestamp(), float(util)


def busy(start, end):
    parts = []
    cpu = mean_share(work / "samples/cpu.tsv", start, end, cpu_sample)
    if cpu is not None:
        parts.append(f"CPU busy {cpu:.0f} %")
    gpu = mean_share(work / "samples/gpu.csv", start, end, gpu_sample)
    if gpu is not None:
        parts.append(f"GPU busy {gpu:.0f} %")
    return ", ".join(parts)


# Per training job: the benchmark's wall seconds and the epochs and training seconds it
# reports, written to benchmarks.tsv.
jobs = []
for stage, rule in (("search", "cross_validate"), ("final", "retrain")):
    for bench in sorted((work / f"benchmarks/{stage}/{rule}").glob("*.tsv")):
        if bench.stat().st_mtime < t0 - 1:
            continue  # finished in an earlier run of a resumed working directory
        trial = bench.stem
        row = {"stage": stage, "trial": trial}
        try:
            first = read_tsv(bench)[0]
            row.update(s=float(first["s"]), max_rss_mb=first["max_rss"], cpu_s=first["cpu_time"])
            if stage == "search":
                folds = json.loads((work / f"results/search/cv/{trial}.json").read_text())["folds"]
                row["epochs"] = sum(fold["epochs"] for fold in folds)
                row["train_s"] = sum(fold["seconds"] for fold in folds)
            else:
                metrics = json.loads((work / f"results/final/{trial}/metrics.json").read_text())
                row["epochs"], row["train_s"] = metrics["epochs"], metrics["train_seconds"]
        except (OSError, KeyError, IndexError, ValueError):
            continue
        jobs.append(row)


def job_line(stage, wall):
    rows = [row for row in jobs if row["stage"] == stage]
    if not rows:
        return ""
    seconds = [row["s"] for row in rows]
    epochs = sum(row.get("epochs", 0) for row in rows)
    train = sum(row.get("train_s", 0) for row in rows)
    text = f"jobs {statistics.median(seconds):.1f} s median, {max(seconds):.1f} s max"
    if epochs:
        text += f"; {epochs} epochs, {train / epochs:.3f} s per epoch in a job"
    if wall:
        text += f"; {sum(seconds) / wall:.1f} jobs at once on average"
    return text


say()
say(f"== wall time per stage (device {device}, {gpu_jobs} GPU jobs at once, --cores {cores}) ==")
say(f"snakemake: {status or 'complete'}")
say(f"{'setup':<8} {setup_s:8.1f} s  wheels and checks")
# A stage is complete when all its jobs planned at the start (the first "Job stats" table)
# have finished; its wall time runs from the end of the stage before it. The retrainings are
# planned only once the ranking exists (a checkpoint), so select_winner stands for them.
STAGES = {
    "data": ("download_mnist", "split_train_test"),
    "search": ("sample_trials", "cross_validate", "rank_trials"),
    "final": ("retrain", "select_winner"),
}
# The rest (figures, report tables, any rule added later) after the winner is chosen.
known = {rule for rules in STAGES.values() for rule in rules} | {"all"}
STAGES["figures"] = tuple(sorted({*planned, *started} - known))
TRAINING = {"search": "cross_validate", "final": "retrain"}


def stage_line(stage, start, end, complete):
    rule = TRAINING.get(stage)
    parts = []
    if rule:
        done, began = n_done(rule), len(started.get(rule, []))
        total = planned.get(rule)
        parts.append(f"{done} of {total if total is not None else began} {rule} jobs")
        if not complete and began > done:
            parts[-1] += f" ({began - done} running)"
        if not complete and total and done and end > start:
            left = (total - done) * (end - start) / done
            parts.append(f"the other {total - done} need about {left:.0f} s more at this rate")
    parts.append(busy(start, end))
    head = f"{end - start:8.1f} s  " + ("" if complete else f"{status or 'incomplete'}: ")
    say(f"{stage:<8} {head}" + "; ".join(part for part in parts if part))
    if job_line(stage, end - start):
        say(f"{'':<19}{job_line(stage, end - start)}")


previous, cut = t0, False
for stage, rules in STAGES.items():
    todo = {rule: planned[rule] for rule in rules if rule in planned}
    if cut:
        say(f"{stage:<8} {'-':>8}    not reached")
    elif planned and not todo:
        say(f"{stage:<8} {'-':>8}    complete before this run")
    elif todo and all(n_done(rule) >= n for rule, n in todo.items()):
        end = max(end_of(*rules), previous)
        stage_line(stage, previous, end, complete=True)
        previous = end
    else:
        stage_line(stage, previous, max(t1, previous), complete=False)
        cut = True
say(f"{'total':<8} {t1 - t0 + setup_s:8.1f} s  (snakemake {t1 - t0:.1f} s)")

failed = re.findall(r"Error in rule (\w+):\n(?:.*\n)*?\s+log: (\S+)", log_text)
if rc in (124, 137):
    failed = []  # the jobs that the stop ended, not failures
for rule, path in failed[:2]:
    say(f"\n== failed: {rule}, the end of {path} ==")
    job_log = work / path
    if job_log.exists():
        for row in job_log.read_text(errors="replace").splitlines()[-15:]:
            say(f"    {row}")

winner_path = work / "results/winner/winner.json"
say("\n== winner ==")
if winner_path.exists():
    winner = json.loads(winner_path.read_text())
    params = ", ".join(f"{key}={value:.3g}" if isinstance(value, float) else f"{key}={value}"
                       for key, value in winner["params"].items())
    say(f"trial {winner['trial']}: {params}")
    say(f"  test part {100 * winner['test_accuracy']:.2f} %, official test set "
        f"{100 * winner['official_test_accuracy']:.2f} %, all 60,000 training images "
        f"{100 * winner['whole_dataset_accuracy']:.2f} %")
else:
    say("none (the run did not reach select_winner)")

# The output folder: at most 8 files (what the GPU tool sends back).
out.mkdir(parents=True, exist_ok=True)
copies = {
    "results/search/ranking.tsv": "ranking.tsv",
    "results/final/summary.tsv": "summary.tsv",
    "results/winner/winner.json": "winner.json",
}
for source, name in copies.items():
    if (work / source).exists():
        shutil.copy2(work / source, out / name)
if jobs:
    with open(out / "benchmarks.tsv", "w", newline="") as handle:
        fields = ["stage", "trial", "s", "epochs", "train_s", "max_rss_mb", "cpu_s"]
        writer = csv.DictWriter(handle, fields, delimiter="\t", extrasaction="ignore")
        writer.writeheader()
        writer.writerows(jobs)
with gzip.open(out / "snakemake.log.gz", "wt") as handle:
    handle.write(log_text)
figures = sorted(work.glob("results/**/*.png"))
if figures:
    with tarfile.open(out / "figures.tar.gz", "w:gz") as archive:
        for path in figures:
            archive.add(path, arcname=str(path.relative_to(work)))
# Everything small: results without models and data, logs, benchmarks, samples.
with tarfile.open(out / "results.tar.gz", "w:gz") as archive:
    for pattern in ("results/**/*", "logs/**/*", "benchmarks/**/*", "samples/*", "command.txt"):
        for path in sorted(work.glob(pattern)):
            if path.is_file() and path.suffix not in (".pt", ".npz", ".npy", ".png"):
                archive.add(path, arcname=str(path.relative_to(work)))
(out / "report.txt").write_text("\n".join(lines) + "\n")
print(f"\nresults in {out}: {', '.join(sorted(p.name for p in out.iterdir()))}")
print(f"working directory: {work}")
PY
exit "$rc"
