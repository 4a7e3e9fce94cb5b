"""Set-up shared by the rule scripts: logging to the job's log file, errors that a user can fix
reported as one plain message instead of a traceback, a check that the outputs can be written,
an interrupt that says so, and a watch on the Snakemake process that started the job.

Standard library only, and imported before anything heavy: a script calls ``start_job`` first,
then imports its stage (torch and skorch take seconds to import), so that the watch is armed
before them.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

from .errors import UserFacingError


class JobInterrupted(BaseException):
    """SIGINT or SIGTERM reached the job. Not a KeyboardInterrupt, which skorch takes for "stop
    training" and then goes on as if the fit had ended."""


log = logging.getLogger(__name__)

# How often a job checks that the Snakemake process that started it is still there.
WATCH_INTERVAL_S = 1.0


def check_writable(outputs) -> None:
    """Refuse to start a job whose outputs cannot be written (a read-only results folder): the
    write itself would fail only after the training. Writes and removes a file beside each."""
    for folder in sorted({Path(output).resolve().parent for output in outputs}):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            handle, probe = tempfile.mkstemp(prefix=".write-check-", dir=folder)
            os.close(handle)
            os.unlink(probe)
        except OSError as err:
            raise UserFacingError(
                f"cannot write into {folder} ({err.strerror}): this job's results go there. "
                "Make it writable (chmod u+w, or free the disk), then run the workflow again; "
                "nothing was computed."
            ) from None


def _interrupted(signum, frame):
    raise JobInterrupted(signal.Signals(signum).name)


def start_job(log_path: str, outputs=(), watch: bool = True) -> None:
    """Send INFO and above to ``log_path`` (the rule's ``log:``) and warnings to stderr, where
    Snakemake shows them; make an uncaught exception end up in both; stop with "interrupted"
    on SIGINT or SIGTERM; refuse outputs that cannot be written (``check_writable``); and
    (``watch``) stop the job when the Snakemake process that started it ends."""
    formatter = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    to_file = logging.FileHandler(log_path, mode="w")
    to_file.setFormatter(formatter)
    to_console = logging.StreamHandler(sys.stderr)
    to_console.setLevel(logging.WARNING)
    to_console.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    root.handlers[:] = [to_file, to_console]

    def report(kind, error, traceback):
        if issubclass(kind, UserFacingError):
            root.error("%s", error)
        elif issubclass(kind, JobInterrupted):
            root.error(
                "interrupted by %s: the job stopped before writing its outputs (none is left "
                "half-written); the next run of the workflow computes it again",
                error,
            )
        else:
            root.error("job failed", exc_info=(kind, error, traceback))

    sys.excepthook = report
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _interrupted)
    if watch:
        watch_snakemake()
    check_writable([*outputs, log_path])


def _stat(pid: int) -> tuple[str, int, int] | None:
    """(state, parent pid, start time) of a process from /proc, or None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name (field 2) is in parentheses and may hold spaces: split after it
    fields = text[text.rindex(")") + 2 :].split()
    return fields[0], int(fields[1]), int(fields[19])


def _is_snakemake(pid: int) -> bool:
    """Whether a process runs Snakemake (``snakemake ...`` or ``python -m snakemake ...``)."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[:3]
    except OSError:
        return False
    return "snakemake" in (Path(arg.decode(errors="replace")).name for arg in argv)


def snakemake_ancestors(pid: int | None = None) -> list[tuple[int, int]]:
    """(pid, start time) of this process's ancestors up to the nearest Snakemake process; empty
    when there is none (a job run by hand or by a test) or where /proc does not exist."""
    chain = []
    stat = _stat(pid or os.getpid())
    while stat is not None and stat[1] > 1:
        parent = stat[1]
        stat = _stat(parent)
        if stat is None:
            break
        chain.append((parent, stat[2]))
        if _is_snakemake(parent):
            return chain
    return []


def _alive(pid: int, start: int) -> bool:
    stat = _stat(pid)
    return stat is not None and stat[2] == start and stat[0] not in ("Z", "X")


def watch_snakemake(interval: float = WATCH_INTERVAL_S) -> threading.Thread | None:
    """Stop this job within ``interval`` seconds once the Snakemake process that started it (or
    a process between them) has ended, e.g. after ``kill -9`` of the main process: an orphan
    would run on beside the job that a resumed run starts for the same output. Outputs are
    written atomically, so nothing partial is left behind. Returns the watching thread."""
    if not Path("/proc/self/stat").exists():
        log.warning(
            "this system has no /proc (macOS, BSD): the job cannot notice that the Snakemake "
            "process that started it ended; if you kill Snakemake, stop its jobs too (pkill -f "
            ".snakemake/scripts)"
        )
        return None
    chain = snakemake_ancestors()
    if not chain:
        return None

    def watch():
        while True:
            time.sleep(interval)
            for pid, start in chain:
                if not _alive(pid, start):
                    log.error(
                        "the Snakemake process that started this job (pid %d) has ended: "
                        "stopping the job. Resume the run with --rerun-incomplete.",
                        chain[-1][0],
                    )
                    logging.shutdown()
                    os._exit(1)

    thread = threading.Thread(target=watch, name="watch-snakemake", daemon=True)
    thread.start()
    return thread
