"""Move a run's finished work to another machine: ``python -m mnist_mlp.runstate save RUN STATE``
and ``python -m mnist_mlp.runstate restore STATE RUN``.

The full protocol takes many core-hours (README); a machine can be replaced (or a run moved from a
laptop to a cluster) long before it ends. ``save`` copies into STATE what Snakemake needs to
count the finished jobs as done elsewhere: every output with Snakemake's record of a finished
job (``.snakemake/metadata/``), those records, ``benchmarks/`` and the main Snakemake logs (the
cost per stage is read from them); not the jobs' own logs (about 30 kB per trial, progress
lines), which Snakemake does not need. The data stage's outputs
(``results/data/``, 55 MB) are left out: they are made again from the MNIST files in seconds,
with the same bytes. ``--leave-out PATTERN`` leaves out every job with an output that matches
(``fnmatch``; all of the job's outputs, so that it reruns whole): for instance the trained
networks, binary files that a state kept in git should not carry.

``restore`` needs the data stage run first in RUN, with the run's config
(``snakemake --cores 1 split_train_test``); it checks that the data has the bytes the saved jobs
read (their records hold its SHA-256), copies the state in and dates the restored outputs now,
so that they are newer than the data. Snakemake then counts them as done and computes only the
rest. Standard library and PyYAML (through ``progress``).
"""

from __future__ import annotations

import argparse
import fnmatch
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from .errors import UserFacingError
from .io import copy_file
from .progress import incomplete_outputs
from .records import METADATA, record_name, records, upgrade

REGENERATED = "results/data/"  # made again by the data stage, never carried
CARRIED_FOLDERS = ("benchmarks", ".snakemake/log")
MANIFEST = "state.json"


def finished_outputs(run: Path) -> dict[str, dict]:
    """Every output of a finished job in ``run`` that still exists, with its record. An output
    that Snakemake marks as incomplete (its job runs now, or was interrupted) is not finished,
    even beside a record from an earlier run of its job."""
    outputs = {}
    running = incomplete_outputs(run)
    for output, record, _ in records(run):
        if output in running or not (run / output).is_file():
            continue
        outputs[output] = record
    return outputs


def checksum(path: Path, recorded: str) -> str:
    """The checksum of ``path`` as Snakemake records it ("sha256:<hex>")."""
    algorithm = recorded.split(":", 1)[0] if ":" in recorded else "sha256"
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return f"{algorithm}:{digest.hexdigest()}" if ":" in recorded else digest.hexdigest()


def machine() -> str:
    """This machine's CPU and the widest vector instructions it has: another kind of CPU gives
    other last bits (README, "Threads, devices and reproducibility")."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    model = value.strip()
                elif key.strip() == "flags":
                    flags = set(value.split())
                    break
    except OSError:
        pass
    widest = next((f for f in ("avx512f", "avx2", "avx") if f in flags), None)
    return f"{model}, {os.cpu_count()} cores" + (f", {widest}" if widest else "")


def _git_commit(run: Path) -> str | None:
    result = subprocess.run(
        ["git", "-C", str(run), "rev-parse", "HEAD"], capture_output=True, text=True
    )
    return result.stdout.strip() if result.returncode == 0 else None


def _copy(source: Path, destination: Path) -> None:
    """Copy under a temporary name, then rename (an interrupted copy leaves no partial file at
    an output path), keeping the times."""
    copy_file(source, destination)
    shutil.copystat(source, destination)


def _job(output: str, record: dict) -> tuple:
    """The job that made ``output``: Snakemake records the same job hash for all its outputs."""
    return (record.get("rule"), record.get("job_hash")) if "job_hash" in record else (output,)


def save(
    run: Path, state: Path, extra: dict | None = None, leave_out: tuple[str, ...] = ()
) -> dict:
    """Copy the finished work of ``run`` into ``state`` (replacing what it held, once the new
    copy is complete), less every job with an output matching a ``leave_out`` pattern;
    ``extra`` goes into the manifest. Returns the manifest."""
    run, final_state = Path(run), Path(state)
    state = final_state.with_name(final_state.name + ".partial")
    if state.exists():
        shutil.rmtree(state)
    outputs = {
        output: record
        for output, record in finished_outputs(run).items()
        if not output.startswith(REGENERATED)
    }
    left_jobs = {
        _job(output, record)
        for output, record in outputs.items()
        if any(fnmatch.fnmatch(output, pattern) for pattern in leave_out)
    }
    left_out = sorted(o for o, record in outputs.items() if _job(o, record) in left_jobs)
    outputs = {o: record for o, record in outputs.items() if _job(o, record) not in left_jobs}
    files = set(outputs)
    for folder in CARRIED_FOLDERS:
        files.update(
            str(path.relative_to(run)) for path in (run / folder).rglob("*") if path.is_file()
        )
    if (run / "results/run_config.yaml").is_file():
        files.add("results/run_config.yaml")
    for name in sorted(files):
        _copy(run / name, state / name)
    for output in outputs:
        _copy(run / METADATA / record_name(output), state / METADATA / record_name(output))
    inputs = {}
    for record in outputs.values():
        inputs.update(record.get("input_checksums") or {})
    manifest = {
        "saved": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": _git_commit(run),
        "python": platform.python_version(),
        "machine": machine(),
        "outputs": sorted(outputs),
        "left_out": left_out,  # finished, but recomputed after a restore
        "regenerated_inputs": {
            name: digest for name, digest in sorted(inputs.items()) if name.startswith(REGENERATED)
        },
        "extra": extra or {},
    }
    (state / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    if final_state.exists():
        shutil.rmtree(final_state)
    state.rename(final_state)
    return manifest


def restore(state: Path, run: Path) -> dict:
    """Copy a saved state into ``run``, whose data stage has been run; returns the manifest."""
    state, run = Path(state), Path(run)
    try:
        manifest = json.loads((state / MANIFEST).read_text())
    except FileNotFoundError:
        raise UserFacingError(
            f"{state} holds no saved run ({MANIFEST} is missing); save one with "
            "`python -m mnist_mlp.runstate save RUN STATE`."
        ) from None
    for name, digest in manifest["regenerated_inputs"].items():
        path = run / name
        if not path.is_file():
            raise UserFacingError(
                f"{path} is missing: run the data stage in {run} first, with the saved run's "
                "config (`snakemake --cores 1 split_train_test`), then restore again."
            )
        if checksum(path, digest) != digest:
            raise UserFacingError(
                f"{path} differs from the file the saved jobs read: the data stage ran with "
                "another config (seed, test_fraction) or other MNIST files. Run it with the "
                f"saved run's config ({state / 'results/run_config.yaml'}) and restore again."
            )
    # the outputs before their records: a restore cut short leaves no record of a missing output
    files = [path for path in state.rglob("*") if path.is_file() and path.name != MANIFEST]
    records = state / METADATA
    for source in sorted(files, key=lambda path: path.is_relative_to(records)):
        _copy(source, run / source.relative_to(state))
    # newer than the data made again before them, so that Snakemake's mtime check passes
    data_times = [(run / name).stat().st_mtime for name in manifest["regenerated_inputs"]]
    stamp = max([time.time(), *(t + 1 for t in data_times)])
    for output in manifest["outputs"]:
        os.utime(run / output, (stamp, stamp))
    upgrade(run)  # a state saved before result versions: its records become version 1's
    return manifest


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    saving = commands.add_parser("save", help="copy RUN's finished work into STATE")
    saving.add_argument("run", type=Path)
    saving.add_argument("state", type=Path)
    saving.add_argument(
        "--leave-out",
        action="append",
        default=[],
        metavar="PATTERN",
        help="leave out the jobs with an output matching PATTERN (fnmatch; repeatable)",
    )
    restoring = commands.add_parser("restore", help="copy STATE into RUN (data stage run)")
    restoring.add_argument("state", type=Path)
    restoring.add_argument("run", type=Path)
    args = parser.parse_args(argv)
    try:
        if args.command == "save":
            manifest = save(args.run, args.state, leave_out=tuple(args.leave_out))
            print(
                f"saved {len(manifest['outputs'])} finished outputs of {args.run} in {args.state}"
                + (f", left out {len(manifest['left_out'])}" if manifest["left_out"] else "")
            )
        else:
            manifest = restore(args.state, args.run)
            print(f"restored {len(manifest['outputs'])} finished outputs into {args.run}")
    except UserFacingError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
