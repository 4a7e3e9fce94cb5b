"""The one reader of what Snakemake keeps in a run folder: its records of finished jobs
(``.snakemake/metadata/``: one JSON file per output, named by the output's path in URL-safe
base64, holding the job's rule, params, input checksums and times; Snakemake compares a planned
job with them to decide what reruns), the markers of running or interrupted jobs
(``.snakemake/incomplete/``), its lock (``.snakemake/locks/``), its main log
(``.snakemake/log/``) and the jobs' benchmark files. ``make progress``, the saved run state,
the cost tables and the benchmarks read them through this module only.

``python -m mnist_mlp.records upgrade [RUN]`` keeps a run made before result versions: its
records carry a hash of the code as their param, which the workflow no longer passes, so every
job would run again; the hash of the code whose results are version 1 is replaced by the
version param (``mnist_mlp.versions``). Standard library only (the Snakefile warns about such
records when it plans a run).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .io import write_text
from .versions import legacy_upgrade

METADATA = Path(".snakemake/metadata")


def record_name(output: str) -> str:
    """Snakemake's file name for the record of ``output`` (URL-safe base64 of its path)."""
    return base64.urlsafe_b64encode(output.encode()).decode()


def records(run: Path) -> Iterator[tuple[str, dict, Path]]:
    """(output, record, record file) of every record in ``run``, in file name order; files that
    are not records of an output (Snakemake's own bookkeeping) are skipped."""
    folder = Path(run) / METADATA
    for path in sorted(folder.iterdir()) if folder.is_dir() else ():
        try:
            output = base64.urlsafe_b64decode(path.name).decode()
            record = json.loads(path.read_text())
        except (ValueError, OSError):
            continue
        if isinstance(record, dict):
            yield output, record, path


def legacy_records(run: Path) -> list[str]:
    """The outputs in ``run`` whose records predate result versions and can be upgraded."""
    return [
        output
        for output, record, _ in records(run)
        if legacy_upgrade(record.get("rule", ""), record.get("params") or []) is not None
    ]


def upgrade(run: Path) -> list[str]:
    """Upgrade every record in ``run`` made by the code of version 1 before result versions (see
    the module's docstring); returns the outputs whose records changed. Records made by other
    code are left as they are: their jobs run again."""
    upgraded = []
    for output, record, path in records(run):
        params = legacy_upgrade(record.get("rule", ""), record.get("params") or [])
        if params is not None:
            write_text(path, json.dumps(record | {"params": params}))
            upgraded.append(output)
    return upgraded


# --- the markers of running jobs, the lock, the main log, the benchmarks ----------------------


def _shown(path: Path, directory: Path) -> str:
    """``path`` relative to the working directory where it lies inside it."""
    try:
        return str(Path(path).resolve().relative_to(directory.resolve()))
    except ValueError:
        return str(path)


def incomplete_outputs(directory: Path) -> dict[str, float]:
    """Outputs that Snakemake marks as incomplete (jobs running, or interrupted), with the
    time each marker was written (the job's start). A marker's name is the output path in
    URL-safe base64; names too long for the file system are cut into folders named "@<part>"."""
    root = directory / ".snakemake" / "incomplete"
    markers = {}
    for folder, _, names in os.walk(root):
        prefix = "".join(part.removeprefix("@") for part in Path(folder).relative_to(root).parts)
        for name in names:
            try:
                path = base64.urlsafe_b64decode(prefix + name).decode()
                started = os.stat(os.path.join(folder, name)).st_mtime
            except (ValueError, UnicodeDecodeError, OSError):
                continue  # not a marker ("migration_underway"), or removed since the listing
            if os.path.isabs(path):
                path = _shown(Path(path), directory)
            markers[os.path.normpath(path)] = started
    return markers


def locked(directory: Path) -> bool:
    """Whether the working directory holds Snakemake's lock files: a Snakemake runs there, or
    one was killed (SIGKILL, a session or node that ended) and left them."""
    try:
        return any((directory / ".snakemake" / "locks").iterdir())
    except OSError:
        return False


def snakemake_processes(directory: Path) -> list[int] | None:
    """The pids of this machine's Snakemake processes working in ``directory`` (their current
    folder: Snakemake changes into ``--directory``), paused ones included; None where this
    machine cannot tell: no ``/proc`` (not Linux), lock files of another user, or a Snakemake
    process whose folder cannot be read. A job's script works there too, but its command line
    names ``.snakemake/scripts/tmp….py``, not ``snakemake``."""
    proc = Path("/proc")
    try:
        owner = min(path.stat().st_uid for path in (directory / ".snakemake/locks").iterdir())
    except (OSError, ValueError):
        owner = os.getuid()
    if not (proc / "self" / "cwd").exists() or owner != os.getuid():
        return None
    target = os.path.realpath(directory)
    found, unknown = [], False
    for entry in os.listdir(proc):
        if not entry.isdigit():
            continue
        try:
            argv = (proc / entry / "cmdline").read_bytes().split(b"\0")
            if not any(os.path.basename(arg) == b"snakemake" for arg in argv):
                continue
            if os.readlink(proc / entry / "cwd") == target:
                found.append(int(entry))
        except PermissionError:  # a Snakemake whose folder this user cannot see
            unknown = True
        except OSError:  # gone meanwhile
            continue
    return None if unknown and not found else found


def snakemake_running(directory: Path) -> bool:
    """Whether a Snakemake process holds the working directory's lock: its lock files, and,
    where this machine can tell (``snakemake_processes``), a Snakemake process working there.
    A Snakemake on another machine of a shared file system is not seen: ``progress`` then
    asks how recently the run's logs changed."""
    if not locked(directory):
        return False
    processes = snakemake_processes(directory)
    return processes is None or bool(processes)


def lock_time(directory: Path) -> float | None:
    """When the running Snakemake took the working directory's lock: the oldest lock file's
    modification time (it writes them once, before its first job; same clock as the markers)."""
    try:
        return min(path.stat().st_mtime for path in (directory / ".snakemake/locks").iterdir())
    except (OSError, ValueError):
        return None


def job_seconds(wall: float, cpu: float | None, threads: int = 1) -> float:
    """A finished job's time: the time it computed, not the time it waited (SIGSTOP, a laptop
    asleep, other work on the machine). Snakemake samples a job's CPU time twice a second for
    its first 15 s, then every 30 s, so the last sample misses up to 30 s: a one-thread job
    computed its CPU seconds plus 15 s, at most its wall time. A job of more threads uses them
    only in part, so its wall time counts unless it was clearly paused (under half a
    core-second per second and thread); then its CPU seconds per thread plus 15 s."""
    if not cpu or not cpu > 0:  # no sample (a job under a second), or no cpu_time column
        return wall
    if threads == 1 or cpu / threads < 0.5 * wall:
        return min(wall, cpu / threads + 15)
    return wall


def benchmark_seconds(path, threads: int = 1) -> float | None:
    """A finished job's time (``job_seconds``) from its Snakemake benchmark file."""
    times = benchmark_times(path, threads)
    return times[1] if times else None


def benchmark_times(path, threads: int = 1) -> tuple[float, float] | None:
    """A finished job's wall time and the time it computed (``job_seconds``) from its Snakemake
    benchmark file."""
    try:
        with open(path, "rb") as handle:
            header, row = handle.read().split(b"\n", 2)[:2]
        names, values = header.split(b"\t"), row.split(b"\t")
        seconds = float(values[names.index(b"s")])
    except (OSError, ValueError, IndexError):
        return None
    try:
        cpu_seconds = float(values[names.index(b"cpu_time")])
    except (ValueError, IndexError):
        cpu_seconds = None
    return seconds, job_seconds(seconds, cpu_seconds, threads)


def main_log(directory: Path) -> Path | None:
    """The log of the newest Snakemake that started jobs (the names are start times), else the
    newest log: one refused at the start (the folder locked by a running one, a bad config)
    writes a log too, which says nothing about the run."""
    logs = sorted((directory / ".snakemake" / "log").glob("*.snakemake.log"))
    for log in reversed(logs):
        facts = read_main_log(log)
        if facts.cores is not None or facts.remote_nodes is not None:
            return log
    return logs[-1] if logs else None


@dataclass
class LogFacts:
    """What the main log says about parallelism and errors."""

    cores: int | None = None
    remote_nodes: int | None = None  # a cluster run: jobs at once, whatever their threads
    gpus: int | None = None
    errors: int = 0
    steps: str | None = None  # "3 of 159 steps (2%) done"


def read_main_log(path: Path | None) -> LogFacts:
    facts = LogFacts()
    if path is None:
        return facts
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return facts
    if match := re.search(r"^Provided cores: (\d+)", text, re.MULTILINE):
        facts.cores = int(match.group(1))
    if match := re.search(r"^Provided remote nodes: (\d+|unlimited)", text, re.MULTILINE):
        facts.remote_nodes = sys.maxsize if match.group(1) == "unlimited" else int(match[1])
    if match := re.search(r"^Provided resources: .*\bgpu=(\d+)", text, re.MULTILINE):
        facts.gpus = int(match.group(1))
    facts.errors = len(re.findall(r"^Error in rule ", text, re.MULTILINE))
    steps = re.findall(r"^\d+ of \d+ steps \(\d+%\) done", text, re.MULTILINE)
    facts.steps = steps[-1] if steps else None
    return facts


STAMP = re.compile(r"^\[(\w{3} \w{3} +\d+ \d\d:\d\d:\d\d \d{4})\]$")


def rule_spans(directory: Path, since=None) -> dict[str, tuple]:
    """First start and last end (datetimes) of each rule's jobs over the run's main logs (those
    begun at ``since`` or later, a local datetime, where given: a restored state brings the
    logs of the run it came from)."""
    from datetime import datetime

    spans: dict[str, list] = {}
    for log in sorted((Path(directory) / ".snakemake" / "log").glob("*.snakemake.log")):
        if since is not None and log.name[:17] < since.strftime("%Y-%m-%dT%H%M%S"):
            continue  # its name: when it began
        stamp = None
        for line in log.read_text(errors="replace").splitlines():
            if match := STAMP.match(line.strip()):
                stamp = datetime.strptime(match.group(1), "%a %b %d %H:%M:%S %Y")
            elif stamp and (m := re.match(r"^(?:local)?(?:rule|checkpoint) (\w+):", line)):
                spans.setdefault(m.group(1), []).append(stamp)
            elif stamp and (m := re.match(r"^Finished jobid: \d+ \(Rule: (\w+)\)", line)):
                spans.setdefault(m.group(1), []).append(stamp)
    return {rule: (min(times), max(times)) for rule, times in spans.items()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    upgrading = commands.add_parser(
        "upgrade", help="keep a run made before result versions (rewrites its records)"
    )
    upgrading.add_argument("run", type=Path, nargs="?", default=Path("."))
    args = parser.parse_args(argv)
    if not (args.run / METADATA).is_dir():
        print(f"error: {args.run} holds no Snakemake records ({METADATA})", file=sys.stderr)
        return 1
    upgraded = upgrade(args.run)
    print(f"upgraded the records of {len(upgraded)} outputs in {args.run} to result versions")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
