"""The full default protocol in the background, from its own git worktree at a fixed commit, so
that ongoing changes to this checkout neither rerun nor disturb it (README, "Measured results").

    python bench/full_run.py start [--commit REV]   worktree runs/full-<commit>, its venv, the run
    python bench/full_run.py resume                 after a session ended, or on a new machine
    python bench/full_run.py pause | continue       SIGSTOP / SIGCONT, to measure something else
    python bench/full_run.py save                   finished work into
                                                    docs/full_run/state.tar.gz, the results so
                                                    far into docs/full_run/ and the README

The run is ``snakemake --cores N --config mnist_dir=DIR --rerun-incomplete --keep-going`` on the
defaults, under ``nice -n 19``, logging to ``runs/full-<commit>/fullrun.log``; ``make progress``
style status: ``python -m mnist_mlp.progress --directory runs/full-<commit>``. ``resume`` on the
same machine unlocks and starts it again; where the worktree is gone (a new machine), it makes
the worktree at the saved commit and its venv again, runs the data stage, restores the saved
state (``mnist_mlp.runstate``) and starts it: Snakemake computes only what was not finished.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow"))

from mnist_mlp import runstate  # noqa: E402

RUNS = REPO / "runs"
DOCS = REPO / "docs" / "full_run"
STATE = DOCS / "state.tar.gz"
SETTINGS = "full_run.json"  # in the run's folder: its commit, cores, MNIST folder, starts
# the trained networks (1-3 MB each) stay out of the state kept in git: after a restore on a
# new machine their retrainings run again (260-1,304 s each in the full run, 730 s on average)
MODELS = ("results/final/*/model.pt", "results/winner/winning_net.dat")


def git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=REPO, check=True, capture_output=True, text=True
    ).stdout.strip()


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def the_run() -> Path:
    """The run's folder: the one runs/full-* here, else the saved state's commit's."""
    found = sorted(RUNS.glob("full-*"))
    if len(found) == 1:
        return found[0]
    if found:
        sys.exit(f"several runs in {RUNS}: {', '.join(p.name for p in found)}; keep one")
    if STATE.exists():
        commit = runstate.manifest_of(STATE)["commit"]
        return RUNS / f"full-{commit[:7]}"
    sys.exit(f"no run in {RUNS} and no saved state in {STATE}: start one")


def snakemake(run: Path, *args: str) -> None:
    subprocess.run([str(run / ".venv/bin/python"), "-m", "snakemake", *args], cwd=run, check=True)


def make_worktree(commit: str) -> Path:
    """The worktree at ``commit`` with its venv (kept where an earlier attempt made them)."""
    run = RUNS / f"full-{commit[:7]}"
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
    command += ["--config", f"mnist_dir={settings['mnist_dir']}", "--rerun-incomplete"]
    command += ["--keep-going"]
    with open(run / "fullrun.log", "ab") as log:
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
    print(f"{event}: {run.name}, pid {process.pid}, log {run / 'fullrun.log'}")


def start(args) -> None:
    commit = git("rev-parse", args.commit)
    run = make_worktree(commit)
    settings = {"commit": commit, "cores": args.cores, "mnist_dir": str(args.mnist_dir)}
    launch(run, settings, "started")


def running(run: Path) -> int | None:
    """The pid of the run's Snakemake while it lives (paused included)."""
    try:
        pid = int((run / "snakemake.pid").read_text())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


def resume(args) -> None:
    run = the_run()
    if pid := running(run):
        sys.exit(f"the run is still going (pid {pid}; paused? `continue` it): not started twice")
    if (run / SETTINGS).exists():  # launched here before: the same machine
        settings = json.loads((run / SETTINGS).read_text())
        snakemake(run, "--unlock", "--cores", "1", "--config", f"mnist_dir={settings['mnist_dir']}")
        launch(run, settings, "resumed")
        return
    manifest = runstate.manifest_of(STATE)
    run = make_worktree(manifest["commit"])
    settings = {"commit": manifest["commit"], "cores": args.cores, "mnist_dir": str(args.mnist_dir)}
    settings["starts"] = manifest["extra"].get("starts", [])
    if manifest["python"] != platform.python_version():
        print(
            f"warning: saved under Python {manifest['python']}, resumed under "
            f"{platform.python_version()}: a state saved before result versions carries code "
            "hashes of its Python; where they are not version 1's, Snakemake reruns those jobs"
        )
    # the data stage again (its outputs are not carried), then the saved work on top of it
    snakemake(run, "split_train_test", "--cores", "1", "--config", f"mnist_dir={args.mnist_dir}")
    runstate.restore(STATE, run)
    launch(run, settings, f"resumed on a new machine from the state saved {manifest['saved']}")


def signal_run(sig: signal.Signals) -> None:
    pid = int((the_run() / "snakemake.pid").read_text())
    os.killpg(pid, sig)  # the group: Snakemake and its running jobs
    print(f"{sig.name} sent to process group {pid}")


def save(args) -> None:
    run = the_run()
    settings = json.loads((run / SETTINGS).read_text())
    manifest = runstate.save(run, STATE, extra=settings, leave_out=MODELS)
    print(
        f"saved {len(manifest['outputs'])} finished outputs in {STATE} (left out, as they hold "
        f"trained networks: the {len(manifest['left_out'])} outputs of their jobs)"
    )
    # with the run's venv (pandas, matplotlib), whichever Python runs this script
    publish = [str(run / ".venv/bin/python"), str(REPO / "bench/publish_run.py"), str(run)]
    subprocess.run([*publish, str(DOCS), "--readme", str(REPO / "README.md")], check=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=("start", "resume", "pause", "continue", "save"))
    parser.add_argument("--commit", default="HEAD", help="start: the commit to run")
    parser.add_argument("--cores", type=int, default=os.cpu_count() or 2)
    parser.add_argument(
        "--mnist-dir", type=Path, default=(REPO.parent / "shared/data/mnist").resolve()
    )
    args = parser.parse_args(argv)
    if args.command == "start":
        start(args)
    elif args.command == "resume":
        resume(args)
    elif args.command == "pause":
        signal_run(signal.SIGSTOP)
    elif args.command == "continue":
        signal_run(signal.SIGCONT)
    else:
        save(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
