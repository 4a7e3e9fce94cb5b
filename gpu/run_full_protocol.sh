#!/usr/bin/env bash
# Runs THERE, on a machine with a CUDA GPU and PyTorch but no internet (gpu/README.md). Only what
# must be shell is here: the carried wheels installed, the CUDA MPS daemon started and stopped,
# the GPU sampled, a time budget kept. The run itself is the package's run tooling, the same
# command as for the long CPU runs: `mnist-mlp run start|resume NAME` (mnist_mlp.runs) with the
# GPU's Snakemake settings in a profile (SNAKEMAKE_PROFILE), `mnist-mlp run status NAME` (make
# progress) for where it stands, `mnist-mlp run publish NAME` for the tables, figures and cost.
#
#   bash gpu/run_full_protocol.sh [options]
#
# --name NAME       the run: runs/NAME-* (default gpu_run); an existing one is resumed
# --configfile F    a config over the workflow's defaults (e.g. examples/reduced.yaml)
# --config ITEM     a config item as Snakemake's --config takes it, repeatable; the last wins,
#                   e.g. --config 'search={n_trials: 40}'
# --device D        cuda (default), cuda:N, or cpu (no GPU: a test of this script)
# --cores N         the run's --cores, one per training job (default: the CPU cores)
# --gpu-jobs K      training jobs at once on the GPU (Snakemake's gpu resource; default N)
# --budget-s S      stop the run so that the script ends within S s of its start (default 0:
#                   no limit); RESERVE_S (default 30) of them are kept for stopping and the report
# --out DIR         where the results go (default: $OUT, else ./gpu-results)
# --wheels DIR      carried wheels (default: .whl); --mnist DIR: the four MNIST files (.mnist)
# --python PY       the Python that has torch (default: $PYTHON, else python3)
# --site DIR        where the wheels are installed, first on PYTHONPATH (/tmp/mnist-mlp-site)
# --force-install   install the wheels even if this site holds them already
# --setup-only      install and check, then stop
# --progress-s S    seconds between progress lines (default 60)
# --no-mps          no CUDA MPS daemon (by default one is started: docs/gpu/, 3.7x faster)
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
NAME=gpu_run
CONFIGFILE=
CONFIG_ITEMS=()
DEVICE=cuda
CORES=$(nproc)
GPU_JOBS=
BUDGET_S=0
RESERVE_S=${RESERVE_S:-30}
OUT_DIR=${OUT:-$PWD/gpu-results}
WHEELS=$REPO/.whl
MNIST=$REPO/.mnist
PY=${PYTHON:-python3}
SITE=/tmp/mnist-mlp-site
FORCE_INSTALL=0
SETUP_ONLY=0
PROGRESS_S=60
MPS=1
while [[ $# -gt 0 ]]; do
    case $1 in
        --name) NAME=$2; shift ;;
        --configfile) CONFIGFILE=$(realpath "$2"); shift ;;
        --config) [[ $2 == *=* ]] || { echo "run_full_protocol: --config KEY=VALUE, not $2" >&2; exit 2; }
            CONFIG_ITEMS+=("$2"); shift ;;
        --device) DEVICE=$2; shift ;;
        --cores) CORES=$2; shift ;;
        --gpu-jobs) GPU_JOBS=$2; shift ;;
        --budget-s) BUDGET_S=$2; shift ;;
        --out) OUT_DIR=$2; shift ;;
        --wheels) WHEELS=$2; shift ;;
        --mnist) MNIST=$2; shift ;;
        --python) PY=$2; shift ;;
        --site) SITE=$2; shift ;;
        --force-install) FORCE_INSTALL=1 ;;
        --setup-only) SETUP_ONLY=1 ;;
        --progress-s) PROGRESS_S=$2; shift ;;
        --no-mps) MPS=0 ;;
        -h | --help) sed -n '2,27p' "$0"; exit 0 ;;
        *) echo "run_full_protocol: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
GPU_JOBS=${GPU_JOBS:-$CORES}
SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/mnist-mlp-gpu.XXXXXX")
REPORT=$SCRATCH/report.txt
say() { printf '[%4d s] %s\n' "$SECONDS" "$*" | tee -a "$REPORT"; }
die() { say "ERROR: $*" >&2; exit 1; }
mnist_mlp() { "$PY" -m mnist_mlp.cli "$@"; }  # the package's commands (mnist-mlp)

[[ $DEVICE =~ ^(cpu|cuda(:[0-9]+)?)$ ]] || die "--device must be cpu, cuda or cuda:N, not $DEVICE"
command -v "$PY" >/dev/null || die "no Python '$PY' (--python)"
for file in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte \
    t10k-labels-idx1-ubyte; do
    [[ -f $MNIST/$file.gz || -f $MNIST/$file ]] || die "MNIST file $file(.gz) not in $MNIST (--mnist)"
done
MNIST=$(realpath "$MNIST")

# --- 1. packages: the carried wheels into $SITE, first on PYTHONPATH for Snakemake and its jobs
# (--no-deps: pip needs no index); the package itself from this checkout (not installed there).
export PYTHONPATH=$SITE:$REPO/workflow${PYTHONPATH:+:$PYTHONPATH}
shopt -s nullglob
wheels=("$WHEELS"/*.whl)
shopt -u nullglob
if ((${#wheels[@]} == 0)); then
    say "packages: no wheels in $WHEELS; using what $PY has"
elif ((FORCE_INSTALL == 0)) && [[ -f $SITE/.carried ]] &&
    diff -q <(printf '%s\n' "${wheels[@]##*/}") "$SITE/.carried" >/dev/null; then
    say "packages: the ${#wheels[@]} carried wheels are installed in $SITE already"
else
    say "packages: installing ${#wheels[@]} wheels into $SITE"
    "$PY" -m pip install --quiet --disable-pip-version-check --no-index --no-deps --no-compile \
        --no-cache-dir --upgrade --target "$SITE" "${wheels[@]}" || die "pip could not install $WHEELS"
    printf '%s\n' "${wheels[@]##*/}" >"$SITE/.carried"
fi
# pip never checked the requirements (--no-deps): a mismatch is a warning (pulp, only for
# Snakemake's ILP scheduler, is left out on purpose: the profile below picks the greedy one)
"$PY" -m pip check 2>&1 | grep -vi pulp | sed 's/^/  pip check: /' | tee -a "$REPORT" || true
"$PY" -c 'import sys, snakemake, skorch, torch
from mnist_mlp.config import check_cuda
device = sys.argv[1]
device == "cpu" or check_cuda(device)
gpu = "" if device == "cpu" else ", " + torch.cuda.get_device_name(int(device.partition(":")[2] or 0))
print(f"  snakemake {snakemake.__version__}, skorch {skorch.__version__}, torch {torch.__version__}; {device}{gpu}")
' "$DEVICE" | tee -a "$REPORT" || die "the packages or the device are not usable (above)"
say "setup done; --cores $CORES, $GPU_JOBS GPU jobs at once"
((SETUP_ONLY == 0)) || exit 0

# --- 2. the GPU's Snakemake settings: a profile (Snakemake merges it with profiles/default).
# Every config file is listed here, the device and --config items last: a --configfile on the
# command line would replace the list. `run start` adds --cores and --config mnist_dir=.
PROFILE=$SCRATCH/profile
mkdir -p "$PROFILE"
{
    printf 'device: %s\n' "$DEVICE"
    for item in "${CONFIG_ITEMS[@]}"; do printf '%s: %s\n' "${item%%=*}" "${item#*=}"; done
} >"$PROFILE/gpu.yaml"
files="'$PROFILE/gpu.yaml'"
[[ -z $CONFIGFILE ]] || files="'$CONFIGFILE', $files"
{
    printf 'configfile: [%s]\n' "$files"
    printf 'resources: [gpu=%s]\nscheduler: greedy\n' "$GPU_JOBS"
} >"$PROFILE/config.yaml"
export SNAKEMAKE_PROFILE=$PROFILE

# --- 3. MPS, so that the kernels of the jobs' processes run at once, and the GPU samples.
helpers=()
mps_on=0
run=
stop_run() {  # the run's Snakemake and its jobs (their own process group, see mnist_mlp.runs)
    local pid
    pid=$(cat "$run/snakemake.pid" 2>/dev/null) || return 0
    alive "$pid" || return 0
    say "stopping the run (SIGTERM to process group $pid)"
    kill -TERM -- "-$pid" 2>/dev/null || true
    for _ in {1..20}; do alive "$pid" || return 0; sleep 1; done
    kill -KILL -- "-$pid" 2>/dev/null || true
}
alive() {  # a zombie counts as ended: the launcher that was its parent is gone
    local state
    read -r _ _ state _ 2>/dev/null <"/proc/$1/stat" && [[ $state != Z ]]
}
cleanup() {
    [[ -z $run ]] || stop_run
    local pid
    for pid in "${helpers[@]}"; do kill "$pid" 2>/dev/null || true; done
    helpers=()
    if ((mps_on)); then echo quit | nvidia-cuda-mps-control >/dev/null 2>&1 || true; fi
    mps_on=0
}
trap cleanup EXIT
if ((MPS)) && [[ $DEVICE != cpu ]]; then
    # short paths: the daemon's socket path has a length limit; the jobs inherit them
    export CUDA_MPS_PIPE_DIRECTORY=/tmp/mnist-mlp-mps.$$/pipe CUDA_MPS_LOG_DIRECTORY=/tmp/mnist-mlp-mps.$$/log
    mkdir -p "$CUDA_MPS_PIPE_DIRECTORY" "$CUDA_MPS_LOG_DIRECTORY"
    if nvidia-cuda-mps-control -d && mps_on=1 &&
        timeout 120 "$PY" -c 'import torch; torch.zeros(1, device="cuda").sum().item()'; then
        say "CUDA MPS on (log: $CUDA_MPS_LOG_DIRECTORY)"
    else
        cleanup
        unset CUDA_MPS_PIPE_DIRECTORY CUDA_MPS_LOG_DIRECTORY
        say "MPS did not start or CUDA failed under it: going on without MPS"
    fi
fi
if [[ $DEVICE != cpu ]] && command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used --format=csv,noheader,nounits \
        -l 2 >"$SCRATCH/gpu.csv" 2>/dev/null &
    helpers+=($!)
fi
cpu_ticks() {  # total and idle jiffies of all CPUs
    local _ user nice system idle iowait irq softirq steal
    read -r _ user nice system idle iowait irq softirq steal _ </proc/stat
    echo "$((user + nice + system + idle + iowait + irq + softirq + steal)) $((idle + iowait))"
}
status() { mnist_mlp run status "$NAME" 2>/dev/null || true; }
(  # a progress line now and then; its sleep waited for, so that a TERM ends it at once
    trap 'kill "$nap" 2>/dev/null; exit 0' TERM
    while :; do
        sleep "$PROGRESS_S" &
        nap=$!
        wait "$nap"
        gpu=$(tail -n 1 "$SCRATCH/gpu.csv" 2>/dev/null | cut -d , -f 2 | tr -d ' ' || true)
        say "load $(cut -d ' ' -f 1 /proc/loadavg)${gpu:+, GPU busy $gpu %}"
        status | grep -E '^(  search   |  final    |ETA)' | tee -a "$REPORT" || true
    done
) &
helpers+=($!)

# --- 4. the run: `mnist-mlp run start` (or `resume`, where runs/NAME-* exists) ---------------
limit=0
if ((BUDGET_S > 0)); then
    limit=$((BUDGET_S - SECONDS - RESERVE_S))
    ((limit > 0)) || die "--budget-s $BUDGET_S leaves no time for the run after the setup"
fi
existing=$(compgen -G "$REPO/runs/$NAME-*" | head -n 1 || true)
read -r ticks_start idle_start < <(cpu_ticks)
rc=0
if [[ $(mnist_mlp run --help) == *--wait* ]]; then
    # runs.py with `start --here` and `--wait` (gpu/README.md, "What the package lacks")
    if [[ -n $existing ]]; then
        command=(run resume "$NAME" --wait)
    else
        command=(run start "$NAME" --here --wait --cores "$CORES" --mnist-dir "$MNIST")
    fi
    ((limit == 0)) || command=(timeout --signal=TERM --kill-after=30 "$limit" "$PY" -m mnist_mlp.cli "${command[@]}")
    ((limit > 0)) || command=("$PY" -m mnist_mlp.cli "${command[@]}")
    "${command[@]}" | tee -a "$REPORT" || rc=$?
    run=$(compgen -G "$REPO/runs/$NAME-*" | head -n 1 || true)
else
    # Until then: `start` as runs.py does it, less the git worktree and its venv, which need the
    # git history and PyPI: the workflow copied as a worktree would hold it, this Python as its
    # venv's, then runs.launch (the same Snakemake command, log, pid file and run.json).
    if [[ -n $existing ]]; then
        mnist_mlp run resume "$NAME" | tee -a "$REPORT"
        run=$existing
    else
        run=$REPO/runs/$NAME-here
        mkdir -p "$run/.venv/bin"
        cp -r "$REPO"/{Snakefile,config.yaml,workflow,profiles,envs} "$run"/
        printf '#!/bin/sh\nexec %q "$@"\n' "$(command -v "$PY")" >"$run/.venv/bin/python"
        chmod +x "$run/.venv/bin/python"
        commit=$(git -C "$REPO" rev-parse HEAD 2>/dev/null || echo unknown)
        "$PY" -c 'import sys; from pathlib import Path; from mnist_mlp.runs import launch
name, commit, cores, mnist, run = sys.argv[1:]
launch(Path(run), {"name": name, "commit": commit, "cores": int(cores), "mnist_dir": mnist}, "started")
' "$NAME" "$commit" "$CORES" "$MNIST" "$run" | tee -a "$REPORT"
    fi
    pid=$(cat "$run/snakemake.pid")
    while alive "$pid"; do
        if ((limit > 0 && SECONDS >= BUDGET_S - RESERVE_S)); then
            rc=124
            stop_run
            break
        fi
        sleep 1
    done
fi
read -r ticks_end idle_end < <(cpu_ticks)
[[ -n $run ]] || die "no run folder runs/$NAME-*"
stop_run  # nothing of the run outlives the script (it runs in a session of its own)
kill "${helpers[@]}" 2>/dev/null || true
helpers=()
if ((rc == 124 || rc == 137)); then
    say "the run was stopped by the time budget (--budget-s $BUDGET_S)"
elif ((rc != 0)); then
    say "the run failed (exit $rc); the end of $run/fullrun.log:"
    tail -n 25 "$run/fullrun.log" | sed 's/^/    /' | tee -a "$REPORT"
fi

# --- 5. the report: where the run stands, its busy shares, its finished work saved and
# published (`run save`: docs/NAME/state.tar.gz without the networks, then `run publish`) ----
status >"$SCRATCH/status.txt"
tee -a "$REPORT" <"$SCRATCH/status.txt"
gpu_mean=$(awk -F, '{ s += $2; n++ } END { if (n) printf "%.0f %% (%d samples)", s / n, n }' \
    "$SCRATCH/gpu.csv" 2>/dev/null || true)
busy=$((100 - 100 * (idle_end - idle_start) / (ticks_end - ticks_start + 1)))
say "during the run: CPU busy $busy %${gpu_mean:+, GPU busy $gpu_mean}"
DOCS=$REPO/docs/$NAME
if mnist_mlp run save "$NAME" >"$SCRATCH/save.txt" 2>&1; then
    head -n 1 "$SCRATCH/save.txt" | tee -a "$REPORT"
    say "cost of the training jobs ($DOCS/cost.tsv; stage_wall_s: first start to last end):"
    column -t -s $'\t' "$DOCS/cost.tsv" 2>/dev/null | tee -a "$REPORT" || tee -a "$REPORT" <"$DOCS/cost.tsv"
else
    say "mnist-mlp run save failed:"
    tail -n 5 "$SCRATCH/save.txt" | tee -a "$REPORT"
fi
# Back to $OUT_DIR (the device tool returns at most 8 files): the report, Snakemake's output,
# the published folder with the saved state, its main tables, and the jobs' logs with the
# profile and the GPU samples.
mkdir -p "$OUT_DIR"
cp "$REPORT" "$OUT_DIR/report.txt"
gzip -c "$run/fullrun.log" >"$OUT_DIR/fullrun.log.gz"
for file in summary.md cost.tsv winner.json; do
    [[ ! -f $DOCS/$file ]] || cp "$DOCS/$file" "$OUT_DIR/"
done
[[ ! -d $DOCS ]] || tar -czf "$OUT_DIR/$NAME.tar.gz" -C "$REPO/docs" "$NAME"
cp "$SCRATCH/gpu.csv" "$PROFILE/" 2>/dev/null || true
# (a folder not there yet is left out; tar still writes the rest)
tar -czf "$OUT_DIR/logs.tar.gz" -C "$run" run.json logs -C "$SCRATCH" profile 2>/dev/null || true
echo "results in $OUT_DIR: $(cd "$OUT_DIR" && echo *)"
echo "the run: $run"
if ((rc == 0)) && ! grep -q '^Stage: done' "$SCRATCH/status.txt"; then rc=1; fi
exit "$rc"
