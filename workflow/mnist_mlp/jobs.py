"""Set-up shared by the rule scripts: logging to the job's log file, and errors that a user can
fix reported as one plain message instead of a traceback."""

from __future__ import annotations

import logging
import sys

from .errors import UserFacingError


def start_job(log_path: str) -> None:
    """Send INFO and above to ``log_path`` (the rule's ``log:``) and warnings to stderr, where
    Snakemake shows them; make an uncaught exception end up in both."""
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
        else:
            root.error("job failed", exc_info=(kind, error, traceback))

    sys.excepthook = report
