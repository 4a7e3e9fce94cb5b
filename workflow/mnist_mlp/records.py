"""Snakemake's records of finished jobs (``.snakemake/metadata/``): one JSON file per output,
named by the output's path in URL-safe base64, holding the job's rule, params, input checksums
and times. Snakemake compares a planned job with them to decide what reruns.

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
import sys
from collections.abc import Iterator
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
