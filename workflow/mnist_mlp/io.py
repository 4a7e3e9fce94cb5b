"""Artifact writing: every output is written to a temporary name and renamed into place, so an
interrupted job never leaves a partial file at an output path."""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path


def atomic_write_bytes(path, write) -> None:
    """Write through ``write(handle)`` to a temporary file beside ``path``, then rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
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


def read_json(path):
    with open(path) as handle:
        return json.load(handle)
