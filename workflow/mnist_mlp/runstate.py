"""Move a run's finished work to another machine: ``python -m mnist_mlp.runstate save RUN
STATE.tar.gz`` and ``python -m mnist_mlp.runstate restore STATE.tar.gz RUN``.

The full protocol takes many core-hours (README); a machine can be replaced (or a run moved from a
laptop to a cluster) long before it ends. ``save`` packs into one compressed archive what
Snakemake needs to count the finished jobs as done elsewhere: every output with Snakemake's
record of a finished job (``.snakemake/metadata/``), those records, ``benchmarks/``, the main
Snakemake logs (the cost per stage is read from them) and ``results/run_config.yaml``, with a
manifest (``state.json``) that lists every file and its SHA-256; not the jobs' own logs, which
Snakemake does not need. The data stage's outputs (``results/data/``, 55 MB) are left out: they
are made again from the MNIST files in seconds, with the same bytes. ``--leave-out PATTERN``
leaves out every job with an output that matches (``fnmatch``; all of the job's outputs, so that
it reruns whole): for instance the trained networks, binary files that a state kept in git
should not carry.

``restore`` needs the data stage run first in RUN, with the run's config
(``snakemake --cores 1 split_train_test``); it checks that the data has the bytes the saved jobs
read (their records hold its SHA-256), writes the state's files into RUN and dates the restored
outputs now, so that they are newer than the data. Snakemake then counts them as done and
computes only the rest. A state is input from elsewhere (one is committed), so ``restore``
trusts nothing in it: it writes only the files its manifest lists, each with the digest the
manifest gives, only under ``results/`` (not ``results/data/``), ``benchmarks/``, ``logs/``,
``.snakemake/metadata/`` and ``.snakemake/log/`` of RUN (so never the workflow's code or
config), never through a link in the state or in RUN, and refuses a state that breaks any of
this, naming the entry, before it writes anything. A folder (the form of earlier releases)
restores under the same rules: the files of its manifest's outputs, their records, its
benchmarks and logs, and nothing else. Standard library and PyYAML (through ``progress``).
"""

from __future__ import annotations

import argparse
import fnmatch
import hashlib
import io
import json
import os
import platform
import subprocess
import sys
import tarfile
import time
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

from . import layout
from .errors import UserFacingError
from .io import atomic_write_bytes
from .progress import incomplete_outputs
from .records import METADATA, record_name, records, upgrade
from .versions import legacy_upgrade

# made again by the data stage, never carried: the folder of its outputs
REGENERATED = str(Path(layout.output("download_mnist", "dataset")).parent) + "/"
CARRIED_FOLDERS = ("benchmarks", ".snakemake/log")
MANIFEST = "state.json"
FORMAT = "mnist_mlp/state/2"
# Where a restore may write, relative to the run; everything else (the Snakefile, workflow/,
# config.yaml, profiles/, .snakemake's own files) is refused.
WRITABLE = ("results/", "benchmarks/", "logs/", ".snakemake/metadata/", ".snakemake/log/")


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


def _job(output: str, record: dict) -> tuple:
    """The job that made ``output``: Snakemake records the same job hash for all its outputs."""
    return (record.get("rule"), record.get("job_hash")) if "job_hash" in record else (output,)


def _sha256(content: bytes) -> str:
    return "sha256:" + hashlib.sha256(content).hexdigest()


def archive_path(state: Path) -> Path:
    """A state's archive name: ``.tar.gz`` added where it is missing."""
    state = Path(state)
    return state if state.name.endswith(".tar.gz") else state.with_name(state.name + ".tar.gz")


def save(
    run: Path, state: Path, extra: dict | None = None, leave_out: tuple[str, ...] = ()
) -> dict:
    """Pack the finished work of ``run`` into the archive ``state`` (``.tar.gz``; replaced once
    the new one is complete), less every job with an output matching a ``leave_out`` pattern;
    ``extra`` goes into the manifest. Returns the manifest."""
    run, state = Path(run), archive_path(state)
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
    names = set(outputs) | {str(METADATA / record_name(output)) for output in outputs}
    for folder in CARRIED_FOLDERS:
        names.update(
            str(path.relative_to(run)) for path in (run / folder).rglob("*") if path.is_file()
        )
    if (run / layout.RESULTS_CONFIG).is_file():
        names.add(layout.RESULTS_CONFIG)
    contents = {name: (run / name).read_bytes() for name in sorted(names)}
    inputs = {}
    for record in outputs.values():
        inputs.update(record.get("input_checksums") or {})
    manifest = {
        "format": FORMAT,
        "saved": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": _git_commit(run),
        "python": platform.python_version(),
        "machine": machine(),
        "outputs": sorted(outputs),
        "left_out": left_out,  # finished, but recomputed after a restore
        "regenerated_inputs": {
            name: digest for name, digest in sorted(inputs.items()) if name.startswith(REGENERATED)
        },
        "files": {name: _sha256(content) for name, content in contents.items()},
        "extra": extra or {},
    }
    _write_archive(state, manifest, contents, lambda name: (run / name).stat().st_mtime)
    return manifest


def _write_archive(state: Path, manifest: dict, contents: dict[str, bytes], mtime) -> None:
    """The archive: the manifest first, then every file in name order (atomically)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=9) as archive:
        files = [(MANIFEST, (json.dumps(manifest, indent=1) + "\n").encode()), *contents.items()]
        for name, content in files:
            member = tarfile.TarInfo(name)
            member.size, member.mode = len(content), 0o644
            member.mtime = int(mtime(name) if name != MANIFEST else time.time())
            archive.addfile(member, io.BytesIO(content))
    atomic_write_bytes(state, lambda handle: handle.write(buffer.getvalue()))


class _Refused(UserFacingError):
    def __init__(self, state, entry, why):
        super().__init__(
            f"{state}: entry {entry!r} {why}; nothing was restored. A state is input from "
            "elsewhere: restore only states you trust, made by `python -m mnist_mlp.runstate "
            "save`."
        )


class _Folder:
    """A state saved as a folder (earlier releases): its regular files, never links."""

    def __init__(self, path: Path):
        self.path = path

    def read(self, name: str) -> bytes | None:
        path = self.path
        for part in PurePosixPath(name).parts:  # no link anywhere on the way
            path = path / part
            if path.is_symlink():
                raise _Refused(self.path, name, "is a link in the state")
        return path.read_bytes() if path.is_file() else None

    def listing(self, folder: str) -> list[str]:
        root = self.path / folder
        if root.is_symlink():
            raise _Refused(self.path, folder, "is a link in the state")
        return sorted(
            str(p.relative_to(self.path)) for p in root.rglob("*") if p.is_file() or p.is_symlink()
        )


class _Archive:
    """A state saved as a ``.tar.gz``: its regular file members, never links or devices."""

    def __init__(self, path: Path):
        self.path = path
        try:
            self.tar = tarfile.open(path, mode="r:gz")
            self.members = {m.name: m for m in self.tar.getmembers()}
        except (tarfile.TarError, OSError, EOFError) as err:
            raise UserFacingError(f"{path} is not a readable state archive ({err})") from None

    def read(self, name: str) -> bytes | None:
        member = self.members.get(name)
        if member is None:
            return None
        if not member.isfile():
            raise _Refused(self.path, name, "is not a regular file (a link or a device)")
        return self.tar.extractfile(member).read()

    def listing(self, folder: str) -> list[str]:
        return sorted(name for name in self.members if name.startswith(folder))


def _checked_name(state, name) -> str:
    """``name`` as a path inside the run where a restore may write, or refused."""
    if not isinstance(name, str) or not name or "\0" in name or "\\" in name:
        raise _Refused(state, name, "is not a file name")
    path = PurePosixPath(name)
    if path.is_absolute() or any(part in ("..", ".", "") for part in name.split("/")):
        raise _Refused(state, name, "points outside the run folder")
    if not name.startswith(WRITABLE) or name.startswith(REGENERATED):
        raise _Refused(
            state,
            name,
            "lies outside what a state may hold (results/ less results/data/, benchmarks/, "
            "logs/, .snakemake/metadata/, .snakemake/log/): a restore never writes the "
            "workflow's code, config or data",
        )
    return name


def _manifest(source, state) -> dict:
    text = source.read(MANIFEST)
    if text is None:
        raise UserFacingError(
            f"{state} holds no saved run ({MANIFEST} is missing); save one with "
            "`python -m mnist_mlp.runstate save RUN STATE.tar.gz`."
        )
    try:
        manifest = json.loads(text)
        if not isinstance(manifest, dict):
            raise ValueError("not a JSON object")
        for key, kind in (("outputs", list), ("regenerated_inputs", dict)):
            if not isinstance(manifest.get(key), kind):
                raise ValueError(f"{key} is missing or not a {kind.__name__}")
    except ValueError as err:
        raise UserFacingError(
            f"{state}: its {MANIFEST} is damaged ({err}); save the state again from its run."
        ) from None
    return manifest


def manifest_of(state: Path) -> dict:
    """The manifest of a saved state (an archive or a folder)."""
    state = Path(state)
    return _manifest(_Folder(state) if state.is_dir() else _Archive(state), state)


def contents_of(state: Path) -> dict[str, bytes]:
    """Every file a restore of ``state`` would write (checked as a restore checks them)."""
    state = Path(state)
    source = _Folder(state) if state.is_dir() else _Archive(state)
    return _planned(source, state, _manifest(source, state))


def _planned(source, state, manifest) -> dict[str, bytes]:
    """Every file the restore writes: name -> content, all checked."""
    if "files" in manifest:  # this release: every file with its digest
        if not isinstance(manifest["files"], dict):
            raise UserFacingError(f"{state}: its {MANIFEST} is damaged (files is not a mapping)")
        wanted = manifest["files"]
    else:  # a folder of an earlier release: its outputs, their records, benchmarks and logs
        wanted = dict.fromkeys(manifest["outputs"])
        wanted |= dict.fromkeys(str(METADATA / record_name(o)) for o in manifest["outputs"])
        for folder in CARRIED_FOLDERS:
            wanted |= dict.fromkeys(source.listing(folder + "/"))
        if source.read(layout.RESULTS_CONFIG) is not None:
            wanted[layout.RESULTS_CONFIG] = None
    for output in manifest["outputs"]:
        if output not in wanted:
            raise _Refused(state, output, "is an output the manifest does not carry")
    planned = {}
    for name, digest in wanted.items():
        content = source.read(_checked_name(state, name))
        if content is None:
            raise _Refused(state, name, "is listed but missing")
        if digest is not None and _sha256(content) != digest:
            raise _Refused(state, name, "does not have the digest its manifest gives")
        planned[name] = content
    return planned


def _destination(run: Path, name: str, state) -> Path:
    """Where ``name`` goes in ``run``, refusing a link on the way (it would lead elsewhere)."""
    path = run
    for part in PurePosixPath(name).parts:
        path = path / part
        if path.is_symlink():
            raise _Refused(state, name, f"would be written through the link {path} in the run")
    return path


def restore(state: Path, run: Path) -> dict:
    """Write a saved state (an archive, or a folder of an earlier release) into ``run``, whose
    data stage has been run; returns the manifest."""
    state, run = Path(state), Path(run)
    if not state.exists():
        raise UserFacingError(
            f"{state} holds no saved run ({state} does not exist); save one with "
            "`python -m mnist_mlp.runstate save RUN STATE.tar.gz`."
        )
    source = _Folder(state) if state.is_dir() else _Archive(state)
    manifest = _manifest(source, state)
    for name, digest in manifest["regenerated_inputs"].items():
        if not (isinstance(name, str) and name.startswith(REGENERATED) and ".." not in name):
            raise _Refused(state, name, "is not an input the data stage makes")
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
                "saved run's config (its results/run_config.yaml) and restore again."
            )
    planned = _planned(source, state, manifest)
    targets = {name: _destination(run, name, state) for name in planned}
    # the outputs before their records: a restore cut short leaves no record of a missing output
    for name in sorted(planned, key=lambda name: name.startswith(str(METADATA))):
        atomic_write_bytes(targets[name], lambda handle, name=name: handle.write(planned[name]))
    # newer than the data made again before them, so that Snakemake's mtime check passes
    data_times = [(run / name).stat().st_mtime for name in manifest["regenerated_inputs"]]
    stamp = max([time.time(), *(t + 1 for t in data_times)])
    for output in manifest["outputs"]:
        os.utime(targets[output], (stamp, stamp), follow_symlinks=False)
    upgrade(run)  # a state saved before result versions: its records become version 1's
    return manifest


def convert(folder: Path, state: Path) -> dict:
    """Pack a state saved as a folder (earlier releases) into an archive, under the restore's
    rules (only what its manifest names, no links); records of code before result versions are
    upgraded on the way. Returns the new manifest."""
    folder, state = Path(folder), archive_path(state)
    source = _Folder(folder)
    manifest = _manifest(source, folder)
    contents = _planned(source, folder, manifest)
    for name in contents:
        if name.startswith(str(METADATA) + "/"):
            record = json.loads(contents[name])
            params = legacy_upgrade(record.get("rule", ""), record.get("params") or [])
            if params is not None:
                contents[name] = json.dumps(record | {"params": params}).encode()
    manifest = {key: value for key, value in manifest.items() if key != "files"}
    manifest |= {"format": FORMAT, "files": {n: _sha256(c) for n, c in sorted(contents.items())}}
    _write_archive(state, manifest, contents, lambda name: time.time())
    return manifest


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    saving = commands.add_parser("save", help="pack RUN's finished work into STATE.tar.gz")
    saving.add_argument("run", type=Path)
    saving.add_argument("state", type=Path)
    saving.add_argument(
        "--leave-out",
        action="append",
        default=[],
        metavar="PATTERN",
        help="leave out the jobs with an output matching PATTERN (fnmatch; repeatable)",
    )
    restoring = commands.add_parser("restore", help="write STATE into RUN (data stage run)")
    restoring.add_argument("state", type=Path)
    restoring.add_argument("run", type=Path)
    converting = commands.add_parser("convert", help="pack a folder state into STATE.tar.gz")
    converting.add_argument("folder", type=Path)
    converting.add_argument("state", type=Path)
    args = parser.parse_args(argv)
    try:
        if args.command == "save":
            manifest = save(args.run, args.state, leave_out=tuple(args.leave_out))
            print(
                f"saved {len(manifest['outputs'])} finished outputs of {args.run} in "
                f"{archive_path(args.state)}"
                + (f", left out {len(manifest['left_out'])}" if manifest["left_out"] else "")
            )
        elif args.command == "convert":
            manifest = convert(args.folder, args.state)
            print(f"packed {len(manifest['files'])} files of {args.folder} into {args.state}")
        else:
            manifest = restore(args.state, args.run)
            print(f"restored {len(manifest['outputs'])} finished outputs into {args.run}")
    except UserFacingError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
