"""Reading and writing artifacts. Every output is written to a temporary name and renamed into
place, so an interrupted job never leaves a partial file at an output path. Standard library at
import (the Snakefile reads the ranking through ``read_tsv``); pandas only where a table is
written or read as a DataFrame."""

from __future__ import annotations

import csv
import errno
import json
import math
import os
import tempfile
from functools import cache
from pathlib import Path

from .errors import UserFacingError


@cache
def _umask() -> int:
    mask = os.umask(0)  # the only way to read it is to set it: put it back at once
    os.umask(mask)
    return mask


def atomic_write_bytes(path, write) -> None:
    """Write through ``write(handle)`` to a temporary file beside ``path``, then rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        # mkstemp makes the file private (0600); an output gets the permissions an ordinary
        # file written there would get, so that a group can read results on a shared cluster
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as handle:
            write(handle)
        os.replace(tmp, path)
    except BaseException as err:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(err, OSError) and err.errno == errno.ENOSPC:
            raise UserFacingError(
                f"no space left on the disk holding {path.parent} while writing {path.name}. "
                "Free some space there and run the workflow again (finished results are kept)."
            ) from err
        raise


def copy_file(source, path) -> None:
    with open(source, "rb") as handle:
        content = handle.read()
    atomic_write_bytes(path, lambda out: out.write(content))


def write_text(path, text: str) -> None:
    atomic_write_bytes(path, lambda handle: handle.write(text.encode()))


def _finite_or_none(value):
    """JSON has no NaN: a missing score (a diverged fit) is written as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite_or_none(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_none(item) for item in value]
    return value


def write_json(path, data) -> None:
    write_text(path, json.dumps(_finite_or_none(data), indent=2, sort_keys=True) + "\n")


def set_aside(path, problem: str) -> UserFacingError:
    """Move a damaged result aside to ``<name>.damaged`` (so that the next run recomputes it and
    everything after it) and return the error that names it."""
    damaged = Path(f"{path}.damaged")
    os.replace(path, damaged)
    return UserFacingError(
        f"{path} is damaged ({problem}); it was moved to {damaged}. Run the workflow again: it "
        "recomputes that result and everything that depends on it."
    )


def read_json(path):
    """A JSON file the workflow wrote. A damaged one (cut short by a full disk, edited by hand)
    is set aside (``set_aside``) and named in the error."""
    with open(path) as handle:
        text = handle.read()
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise set_aside(path, f"not valid JSON: {err}") from err


def check_zip(path) -> None:
    """A saved network (torch writes a zip archive) read through, without torch: one cut short
    or overwritten is set aside and named (``set_aside``)."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as err:
        raise set_aside(path, f"not a readable saved network: {err}") from err
    if bad is not None:
        raise set_aside(path, f"its member {bad} is corrupt")


def _number_or_null(value) -> bool:
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))


# What a trial's result holds (a CV result, or a rung of successive halving), by its status.
RESULT_KEYS = {"trial": str, "params": dict, "status": str, "folds": list, "mean_epochs": float}
FINISHED_KEYS = ("mean_loss", "std_loss", "mean_accuracy")


def read_result(path) -> dict:
    """A trial's result, its shape checked: a result that parses but lacks what the stages read
    (a key removed, no folds) is set aside and named, as a damaged file is."""
    result = read_json(path)
    if not isinstance(result, dict):
        raise set_aside(path, "not a JSON object")
    for key, kind in RESULT_KEYS.items():
        value = result.get(key)
        ok = (
            _number_or_null(value) and value is not None
            if kind is float
            else isinstance(value, kind)
        )
        if not ok:
            raise set_aside(path, f"{key} is missing or not a {kind.__name__}")
    if not result["folds"]:
        raise set_aside(path, "it lists no folds")
    # a result copied over another trial's would rank one trial twice and lose the other
    named = (Path(path).stem, Path(path).parent.name)  # cv/<trial>.json, halving/<trial>/rungN.json
    if result["trial"] not in named:
        raise set_aside(path, f"it holds trial {result['trial']!r}, not the trial its path names")
    status = result["status"]
    needed = {"ok": FINISHED_KEYS, "diverged": FINISHED_KEYS, "running": ("score",)}.get(status)
    if needed is None:
        raise set_aside(path, f"status {status!r} is none of ok, diverged, running")
    for key in needed:
        if key not in result or not _number_or_null(result[key]):
            raise set_aside(path, f"{key} is missing or not a number")
    if status == "ok" and result["mean_loss"] is None:
        raise set_aside(path, "a finished trial without its mean_loss")
    return result


FLOAT_FORMAT = "%.8g"  # enough digits to tell trials apart, stable across runs


def write_table(table, path) -> None:
    """A TSV of a DataFrame or of a list of dicts, floats with ``FLOAT_FORMAT``, NaN as NaN."""
    import pandas as pd

    text = pd.DataFrame(table).to_csv(
        sep="\t", index=False, float_format=FLOAT_FORMAT, na_rep="NaN"
    )
    write_text(path, text)


def read_table(path):
    """A TSV written by ``write_table``, as a DataFrame."""
    import pandas as pd

    return pd.read_csv(path, sep="\t")


def read_tsv(path) -> list[dict[str, str]]:
    """A TSV's rows as dicts of strings, without pandas."""
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))
