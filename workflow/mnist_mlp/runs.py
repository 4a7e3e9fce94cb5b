"""Long runs in the background, each from its own git worktree at a fixed commit, so that ongoing
work on the checkout neither reruns nor disturbs them: ``mnist-mlp run ...`` (or ``python -m
mnist_mlp.runs ...``), from the repository.

    run start NAME [--commit REV] [--configfile F] [--restore STATE]   worktree, venv, the run
    run resume NAME        after a work session ended, or on a new machine (from its state)
    run checkpoint NAME [--every MIN]   its finished work into its folder, now or while it runs
    run pause NAME | continue NAME     SIGSTOP / SIGCONT of the run's process group
    run save NAME          its finished work into docs/NAME/state.tar.gz (runs/NAME.state.tar.gz
                           where over 95 MB, too large for git), then publish
    run publish NAME       its results so far into docs/NAME/ (and the README, for full_run)
    run status [NAME]      make progress for the run

NAME is the run's name (``full_run``, the default protocol, is the one the README publishes;
others, such as ``halving``, are measurements of their own). A run is ``snakemake --cores N
--config mnist_dir=DIR [--configfile F] --rerun-incomplete --keep-going`` in
``runs/NAME-<commit>``, under ``nice -n 19``, logging to ``fullrun.log`` there; its settings
(commit, cores, MNIST folder, config file, starts) in ``run.json`` there. The config file is
copied into the run's folder (``run_configfile.yaml``) when it starts: an edit of the
checkout's file changes nothing of the run, and a saved state carries it. ``--restore STATE``
restores a saved state after the data stage, before the run starts: finished jobs of another
run with the same params (the same trials' retrainings, say) are then not computed again.
``resume`` on the same machine unlocks and starts it again; where the worktree is gone (a new
machine), it makes the worktree at the saved commit and its venv again, runs the data stage,
restores the saved state and starts it: Snakemake computes only what was not finished.

A machine can also go with the run's ignored files (``.venv/``, ``.snakemake/``, ``results/``)
while its folder's other files are carried to the new one: ``checkpoint`` saves the run's
finished work, rung states and networks included, as ``checkpoint.state.tar.gz`` in its folder
(not ignored there), ``--every MIN`` again and again while the run lives; ``resume`` of a folder
that lost its records restores the newest checkpoint, else the saved state.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from . import layout, runstate

REPO = Path(__file__).resolve().parents[2]
RUNS = REPO / "runs"
DOCS = REPO / "docs"
SETTINGS = "run.json"  # in the run's folder
LOG = "fullrun.log"
# the run's --configfile, copied into its folder when it starts: an edit of the checkout's file
# changes nothing of a run at a fixed commit, and the saved state carries it to another machine
CONFIGFILE = "run_configfile.yaml"
# the run's finished work, saved in its folder while it runs (``checkpoint``)
CHECKPOINT = "checkpoint.state.tar.gz"
# the trained networks (1-3 MB each) stay out of a state kept in git: after a restore on a new
# machine their retrainings run again (260-1,304 s each in the full run)
MODELS = (
    layout.output("retrain", "model").format(trial="*"),
    layout.output("select_winner", "model"),
    *layout.outputs("build_ensemble").values(),
    *layout.outputs("export_models").values(),
)


def git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=REPO, check=True, capture_output=True, text=True
    ).stdout.strip()


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


# A saved state larger than this stays out of docs/ (and git: hosts refuse files over 100 MB):
# a halving run keeps each trial's rung state (networks and optimizers of every fold, about
# 15 MB a trial in the default space)
GIT_FILE_LIMIT = 95_000_000


def state_of(name: str) -> Path:
    """The run's saved state: in docs/NAME/, or in runs/ where it was too large for git."""
    docs, kept = DOCS / name / "state.tar.gz", RUNS / f"{name}.state.tar.gz"
    return kept if kept.exists() and not docs.exists() else docs


def place_state(state: Path, kept: Path, limit: int = GIT_FILE_LIMIT) -> Path:
    """Where a state just saved at ``state`` stays: there, or at ``kept`` (moved) where it is
    larger than ``limit`` bytes."""
    size = state.stat().st_size
    if size <= limit:
        kept.unlink(missing_ok=True)
        return state
    kept.parent.mkdir(parents=True, exist_ok=True)
    state.replace(kept)
    print(
        f"the state is {size / 1e6:,.0f} MB, more than git hosts take ({limit / 1e6:.0f} MB): "
        f"kept at {kept}, out of docs/; `run resume` here finds it, on another machine copy "
        "it to the same path"
    )
    return kept


def the_run(name: str) -> Path:
    """The run's folder: the one runs/NAME-* here, else the saved state's commit's."""
    prefix = "full" if name == "full_run" else name  # the full run's folder of earlier releases
    found = sorted(RUNS.glob(f"{prefix}-*"))
    if len(found) == 1:
        return found[0]
    if found:
        sys.exit(f"several runs named {name} in {RUNS}: {', '.join(p.name for p in found)}")
    if state_of(name).exists():
        commit = runstate.manifest_of(state_of(name))["commit"]
        return RUNS / f"{prefix}-{commit[:7]}"
    sys.exit(f"no run {name} in {RUNS} and no saved state {state_of(name)}: start one")


def settings_of(run: Path) -> dict:
    for name in (SETTINGS, "full_run.json"):  # the latter: earlier releases
        if (run / name).exists():
            return json.loads((run / name).read_text())
    return {}


def snakemake(run: Path, settings: dict, *args: str) -> None:
    command = [str(run / ".venv/bin/python"), "-m", "snakemake", *args]
    subprocess.run([*command, *config_args(settings)], cwd=run, check=True)


def config_args(settings: dict) -> list[str]:
    args = ["--config", f"mnist_dir={settings['mnist_dir']}"]
    if settings.get("configfile"):
        args = ["--configfile", settings["configfile"], *args]
    return args


def make_worktree(name: str, commit: str) -> Path:
    """The worktree at ``commit`` with its venv (kept where an earlier attempt made them)."""
    prefix = "full" if name == "full_run" else name
    run = RUNS / f"{prefix}-{commit[:7]}"
    if not run.exists():
        git("worktree", "prune")  # a worktree whose folder went with the old machine
        git("worktree", "add", "--detach", str(run), commit)
    # its own venv, with the package installed from the worktree (editable): the run imports
    # its own commit's code, never this checkout's
    subprocess.run(["make", "-C", str(run), ".venv/.installed-requirements"], check=True)
    return run


def launch(run: Path, settings: dict, event: str) -> None:
    settings.setdefault("starts", []).append(f"{event} at {now()} on {runstate.machine()}")
    (run / SETTINGS).write_text(json.dumps(settings, indent=1) + "\n")
    command = [str(run / ".venv/bin/python"), "-m", "snakemake", "--cores", str(settings["cores"])]
    command += [*config_args(settings), "--rerun-incomplete", "--keep-going"]
    with open(run / LOG, "ab") as log:
        process = subprocess.Popen(
            command,
            cwd=run,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: pause and continue it whole
            preexec_fn=lambda: os.nice(19),
            env=os.environ | {"PYTHONUNBUFFERED": "1"},
        )
    (run / "snakemake.pid").write_text(f"{process.pid}\n")
    try:  # Linux schedules by session group first: nice the group, or it still takes a core
        Path(f"/proc/{process.pid}/autogroup").write_text("19")
    except OSError:
        pass
    print(f"{event}: {run.name}, pid {process.pid}, log {run / LOG}")


def data_stage(run: Path, settings: dict) -> None:
    split = layout.outputs("split_train_test").values()
    snakemake(run, settings, *split, "--cores", "1")


def start(args) -> None:
    commit = git("rev-parse", args.commit)
    run = make_worktree(args.name, commit)
    settings = {"name": args.name, "commit": commit, "cores": args.cores}
    settings |= {"mnist_dir": str(args.mnist_dir)}
    if args.configfile:
        settings |= keep_configfile(run, Path(args.configfile).read_text())
    if args.restore:  # finished jobs of another run with the same params are kept
        data_stage(run, settings)
        runstate.restore(args.restore, run)
        settings["restored"] = str(args.restore)  # the state's logs are that run's: publish
    launch(run, settings, "started")


def keep_configfile(run: Path, text: str) -> dict:
    """The run's config file written into its folder; the settings that name it (relative to
    the folder, where Snakemake runs) and hold its text (for the saved state)."""
    (run / CONFIGFILE).write_text(text)
    return {"configfile": CONFIGFILE, "configfile_text": text}


def settings_from_state(extra: dict, run: Path) -> dict:
    """The settings a run resumed on a new machine takes from its saved state: its config
    file (written into the new folder) and its history of starts. A state saved before the
    config file was kept names the file by its path on the old machine."""
    settings = {"starts": extra.get("starts", [])}
    if isinstance(extra.get("restored"), str):
        settings["restored"] = extra["restored"]
    if "configfile_text" in extra:
        if not isinstance(extra["configfile_text"], str):  # a state is input to distrust
            sys.exit("the saved state's config file is not text: save the run again")
        settings |= keep_configfile(run, extra["configfile_text"])
    elif extra.get("configfile"):
        settings["configfile"] = extra["configfile"]
    return settings


def first_start(settings: dict) -> datetime | None:
    """When the run first started (its first entry in ``starts``), as the machine's local
    time, the clock of Snakemake's log names."""
    for start in settings.get("starts", [])[:1]:
        if match := re.search(r" at (\S+) on ", start):
            return datetime.fromisoformat(match.group(1)).astimezone().replace(tzinfo=None)
    return None


def running(run: Path) -> int | None:
    """The pid of the run's Snakemake while it lives (paused included)."""
    try:
        pid = int((run / "snakemake.pid").read_text())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


def resume(args) -> None:
    run = the_run(args.name)
    if pid := running(run):
        sys.exit(f"the run is still going (pid {pid}; paused? `continue` it): not started twice")
    settings = settings_of(run)
    state = resume_from(run, args.name)
    if state is None:  # launched here before: the same machine
        snakemake(run, settings, "--unlock", "--cores", "1")
        launch(run, settings, "resumed")
        return
    manifest = runstate.manifest_of(state)
    run = make_worktree(args.name, manifest["commit"])
    settings = {"name": args.name, "commit": manifest["commit"], "cores": args.cores}
    settings |= {"mnist_dir": str(args.mnist_dir)}
    settings |= settings_from_state(manifest["extra"], run)
    if manifest["python"] != platform.python_version():
        print(
            f"warning: saved under Python {manifest['python']}, resumed under "
            f"{platform.python_version()}: a state saved before result versions carries code "
            "hashes of its Python; where they are not version 1's, Snakemake reruns those jobs"
        )
    data_stage(run, settings)  # the data stage again (its outputs are not carried)
    runstate.restore(state, run)
    launch(run, settings, f"resumed on a new machine from the state saved {manifest['saved']}")


def resume_from(run: Path, name: str) -> Path | None:
    """The state a resume restores: none where the run's folder still has Snakemake's records
    (the same machine), else its checkpoint (the folder carried to a new machine without its
    ignored files), else the run's saved state."""
    if settings_of(run) and (run / ".snakemake").is_dir():
        return None
    for state in (run / CHECKPOINT, state_of(name)):
        if state.exists():
            return state
    sys.exit(
        f"{run} lost its records (a new machine?) and there is neither a checkpoint "
        f"({run / CHECKPOINT}) nor a saved state ({state_of(name)}): start the run again"
    )


def checkpoint(args) -> None:
    """Save the run's finished work in its folder, once or every ``args.every`` minutes while
    it runs (niced: the run keeps the cores)."""
    run = the_run(args.name)
    if args.every:
        os.nice(19)
    while True:
        alive = running(run)  # read before the save: the last save follows the run's end
        manifest = runstate.save(run, run / CHECKPOINT, extra=settings_of(run))
        print(f"{now()}: {len(manifest['outputs'])} finished outputs in {run / CHECKPOINT}")
        if not args.every or not alive:
            return
        time.sleep(args.every * 60)


def signal_run(name: str, sig: signal.Signals) -> None:
    pid = int((the_run(name) / "snakemake.pid").read_text())
    os.killpg(pid, sig)  # the group: Snakemake and its running jobs
    print(f"{sig.name} sent to process group {pid}")


def save(args) -> None:
    run = the_run(args.name)
    leave_out = MODELS if args.name == "full_run" or not args.with_models else ()
    docs = DOCS / args.name / "state.tar.gz"
    manifest = runstate.save(run, docs, extra=settings_of(run), leave_out=leave_out)
    state = place_state(docs, RUNS / f"{args.name}.state.tar.gz")
    print(
        f"saved {len(manifest['outputs'])} finished outputs in {state}"
        + (
            f" (left out: the {len(manifest['left_out'])} outputs of jobs with networks)"
            if manifest["left_out"]
            else ""
        )
    )
    publish(args)


def publish(args) -> None:
    """The run's results into docs/NAME (and the README for the full run; another run is
    compared with the full run as published in docs/full_run), with the run's venv (pandas,
    matplotlib) and this checkout's publication code."""
    run = the_run(args.name)
    command = [str(run / ".venv/bin/python"), "-m", "mnist_mlp.publish", str(run)]
    command += [str(DOCS / args.name)]
    if args.name == "full_run":
        command += ["--readme", str(REPO / "README.md")]
    elif (DOCS / "full_run" / "ranking.tsv").exists():  # a measurement: against the full run
        command += ["--against", str(DOCS / "full_run")]  # as published: its folder may be gone
    env = os.environ | {"PYTHONPATH": str(REPO / "workflow")}  # this checkout's package
    subprocess.run(command, check=True, env=env)


def status(args) -> None:
    from .progress import main as progress

    progress(["--directory", str(the_run(args.name))])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="mnist-mlp run", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "command",
        choices=("start", "resume", "checkpoint", "pause", "continue", "save", "publish", "status"),
    )
    parser.add_argument("name", nargs="?", default="full_run", help="the run (default full_run)")
    parser.add_argument("--commit", default="HEAD", help="start: the commit to run")
    parser.add_argument("--configfile", help="start: a config file over the defaults")
    parser.add_argument("--restore", type=Path, help="start: a saved state to restore first")
    parser.add_argument("--with-models", action="store_true", help="save: keep the networks")
    parser.add_argument("--cores", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--every", type=float, help="checkpoint: again every MIN minutes")
    parser.add_argument(
        "--mnist-dir", type=Path, default=(REPO.parent / "shared/data/mnist").resolve()
    )
    args = parser.parse_args(argv)
    actions = {
        "start": start,
        "resume": resume,
        "checkpoint": checkpoint,
        "save": save,
        "publish": publish,
        "status": status,
        "pause": lambda a: signal_run(a.name, signal.SIGSTOP),
        "continue": lambda a: signal_run(a.name, signal.SIGCONT),
    }
    actions[args.command](args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
