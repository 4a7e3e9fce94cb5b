"""The guard of result versions: ``python -m mnist_mlp.guard`` (``make guard``; CI runs it).

Each stage declares a result version (``mnist_mlp.versions``) and reruns only when it is bumped,
so a change that alters a stage's results without a bump would leave old results standing as
if they were the new code's. The guard catches that. It runs a tiny protocol on the real MNIST
with the code of the working tree (the *head run*); then, for each commit where the version of
some stage was last set (its *anchor*; version 1 of every stage is anchored at the published
full run's commit), it takes the code of that commit from git, deletes those stages' outputs
from a copy of the head run and has that commit's Snakefile compute them again from the same
inputs. Every output must come back with the same bytes, job times aside. A stage whose version
changed in the working tree has nothing to be compared with and is skipped.

What it cannot see (README, "Only what changed reruns"): changes that alter results only where
the tiny protocol does not reach (many epochs, a diverging trial, a GPU, other thread counts
than one, another kind of CPU), and changes of the pinned packages (both sides run in this
environment).
"""

from __future__ import annotations

import argparse
import ast
import csv
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .records import METADATA, records

VERSIONS_FILE = "workflow/mnist_mlp/versions.py"
# What a commit's code needs to plan and run the workflow (git archive takes only these).
CODE_PATHS = ("Snakefile", "config.yaml", "workflow", "profiles", "envs")
# The tiny protocols, a minute or two each on 2 cores. "lab": the lab's random search on real
# images, early stopping that triggers (patience 1), two trials and a reference retrained; only
# keys that every anchor commit's config knows (each commit reads them over its own defaults).
# "modes": TPE with successive halving, for the stages that only those modes run (compared with
# commits that know them).
PROTOCOLS = {
    "lab": {
        "device": "cpu",
        "search": {"n_trials": 3, "folds": 2, "max_epochs": 4, "patience": 1},
        "final": {"top_k": 2, "epochs": 2},
        "figures": {"ascent_steps": 50},
    },
    "modes": {
        "device": "cpu",
        "search": {
            "sampler": "tpe",
            "n_trials": 4,
            "folds": 2,
            "max_epochs": 3,
            "patience": 1,
            "pruning": "halving",
            "halving": {"eta": 2, "min_epochs": 1},
            "tpe": {"batch": 2, "startup_trials": 2},
        },
        "final": {"top_k": 1, "epochs": 1, "references": {}},
        "figures": {"ascent_steps": 10},
    },
    # "tracking": the MLflow export, which the other protocols switch off (so that the anchor
    # commits before it, which tracked during training, never run with tracking on)
    "tracking": {
        "device": "cpu",
        "search": {"n_trials": 2, "folds": 2, "max_epochs": 1},
        "final": {"top_k": 1, "epochs": 1, "references": {}},
        "figures": {"ascent_steps": 5},
        "tracking": {"backend": "mlflow"},
    },
}
CONFIG_NAME = "guard_config.yaml"  # in the head run: the config it was made with
# Job times differ from run to run; everything else an output holds must not. ("dur": skorch's
# epoch time, inside a halving rung's saved history.)
TIME_FIELD = re.compile(r"(^|_)seconds$|^dur$")


class GuardError(RuntimeError):
    pass


def git(repo: Path, *args: str, text: bool = True):
    result = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=text)
    if result.returncode != 0:
        message = result.stderr if text else result.stderr.decode(errors="replace")
        raise GuardError(f"git {' '.join(args)} failed: {message.strip()}")
    return result.stdout


def _assigned(source: str, name: str):
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id == name for target in node.targets
        ):
            return ast.literal_eval(node.value)
    return None


def versions_at(repo: Path, commit: str | None) -> dict[str, int]:
    """RESULT_VERSIONS at ``commit`` (None: the working tree); {} where the file is absent."""
    if commit is None:
        path = repo / VERSIONS_FILE
        return _assigned(path.read_text(), "RESULT_VERSIONS") if path.exists() else {}
    try:
        source = git(repo, "show", f"{commit}:{VERSIONS_FILE}")
    except GuardError:
        return {}
    return _assigned(source, "RESULT_VERSIONS") or {}


def anchors(repo: Path) -> dict[str, str | None]:
    """Stage -> the commit where its current version was set (None: set in the working tree,
    nothing to compare with). The stages of the first versions file still at version 1 are
    anchored at VERSION_1_COMMIT, whose code made version 1's results before versions existed."""
    current = versions_at(repo, None)
    first = _assigned((repo / VERSIONS_FILE).read_text(), "VERSION_1_COMMIT")
    history = git(repo, "log", "--format=%H", "--", VERSIONS_FILE).split()
    found = {}
    for stage, version in current.items():
        anchor, reached_start = None, True
        for commit in history:
            if versions_at(repo, commit).get(stage) != version:
                reached_start = False
                break
            anchor = commit
        if reached_start and version == 1:
            anchor = first
        found[stage] = anchor
    return found


def snakemake(code: Path, run: Path, config: Path, *options: str, targets=(), log: Path) -> None:
    """The workflow of ``code`` in ``run``; its output goes to ``log``."""
    # targets first: options such as --rerun-triggers take every word after them
    command = [sys.executable, "-m", "snakemake", *targets, "--snakefile", str(code / "Snakefile")]
    command += ["--directory", str(run), "--configfile", str(config), "--cores", "2", *options]
    with open(log, "w") as handle:
        done = subprocess.run(command, stdout=handle, stderr=subprocess.STDOUT, cwd=run)
    if done.returncode != 0:
        tail = "".join(log.read_text().splitlines(keepends=True)[-30:])
        raise GuardError(f"snakemake failed in {run} with the code of {code}:\n{tail}")


def head_run(repo: Path, run: Path, mnist_dir: Path, protocol: str = "lab") -> Path:
    """A tiny protocol with the working tree's code, in ``run``."""
    run.mkdir(parents=True, exist_ok=True)
    config = run / CONFIG_NAME
    config.write_text(yaml.safe_dump(PROTOCOLS[protocol] | {"mnist_dir": str(mnist_dir)}))
    snakemake(repo, run, config, log=run / "guard_head.log")
    return run


def head_runs(repo: Path, folder: Path, mnist_dir: Path) -> dict[str, Path]:
    """Every protocol's head run, in ``folder/<protocol>``."""
    return {name: head_run(repo, folder / name, mnist_dir, name) for name in PROTOCOLS}


def stage_outputs(run: Path, stages) -> dict[str, list[str]]:
    """Stage -> the outputs its jobs made in ``run`` (from Snakemake's records)."""
    outputs: dict[str, list[str]] = {stage: [] for stage in stages}
    for output, record, _ in records(run):
        if record.get("rule") in outputs and (run / output).is_file():
            outputs[record["rule"]].append(output)
    return outputs


def code_at(repo: Path, commit: str, folder: Path) -> Path:
    """The workflow's code at ``commit``, extracted into ``folder``."""
    try:
        git(repo, "cat-file", "-e", f"{commit}^{{commit}}")
    except GuardError:
        raise GuardError(
            f"commit {commit} is not in {repo}: the guard needs the history back to it "
            "(a shallow clone? `git fetch --unshallow`)"
        ) from None
    folder.mkdir(parents=True)
    present = git(repo, "ls-tree", "--name-only", commit).split()
    archive = git(repo, "archive", commit, *[p for p in CODE_PATHS if p in present], text=False)
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder


def recompute(code: Path, head: Path, run: Path, outputs: list[str], log: Path) -> None:
    """A copy of the ``head`` run in ``run`` with ``outputs`` made again by ``code`` from the
    head run's inputs (modification times only: the records name the head run's code)."""
    for part in ("results", METADATA):
        shutil.copytree(head / part, run / part, symlinks=True)
    shutil.copy2(head / CONFIG_NAME, run / CONFIG_NAME)
    for output in outputs:
        (run / output).unlink()
    snakemake(code, run, run / CONFIG_NAME, "--rerun-triggers", "mtime", targets=outputs, log=log)


def _tensors_as_bytes(value):
    """A checkpoint with every tensor, however deep, as (dtype, shape, bytes): comparable."""
    if hasattr(value, "numpy") and hasattr(value, "dtype"):
        return (str(value.dtype), tuple(value.shape), value.numpy().tobytes())
    if isinstance(value, dict):
        return {key: _tensors_as_bytes(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_tensors_as_bytes(item) for item in value]
    return value


def _without_times(value):
    if isinstance(value, dict):
        return {k: _without_times(v) for k, v in value.items() if not TIME_FIELD.search(str(k))}
    if isinstance(value, (list, tuple)):
        return [_without_times(item) for item in value]
    return value


def comparable(path: Path):
    """What of an output must not change: its bytes, less job times (fields named ``seconds``,
    ``*_seconds`` or ``dur``) in JSON, TSV and saved networks and states."""
    if path.suffix == ".json":
        return _without_times(json.loads(path.read_text()))
    if path.suffix == ".tsv":
        with open(path, newline="") as handle:
            rows = list(csv.reader(handle, delimiter="\t"))
        keep = [i for i, name in enumerate(rows[0] if rows else []) if not TIME_FIELD.search(name)]
        return [[row[i] for i in keep if i < len(row)] for row in rows]
    if path.suffix == ".pt2":  # a torch.export program: every member but its random id
        with zipfile.ZipFile(path) as archive:
            return {
                name: archive.read(name)
                for name in sorted(archive.namelist())
                if not name.endswith("/serialization_id")
            }
    if path.suffix == ".db":  # an Optuna study or an MLflow store: rows less times and ids
        return _sqlite_rows(path)
    if path.suffix not in (".npz", ".npy") and zipfile.is_zipfile(path):  # a saved network
        import torch

        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        return _without_times(_tensors_as_bytes(checkpoint))
    return path.read_bytes()


# Columns that hold when a row was written (Optuna's datetime_*, MLflow's times) or where (MLflow's
# artifact folders, absolute paths of the run): not what a stage computes.
SQLITE_VOLATILE = re.compile(r"^datetime_|(^|_)time$|^timestamp$|^artifact_(uri|location)$")


def _sqlite_rows(path: Path) -> list:
    """Every table's rows, less SQLITE_VOLATILE columns, with MLflow's random run ids replaced
    by the runs' names (which the export sets: the trial, its folds)."""
    import sqlite3

    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = [
            name
            for (name,) in connection.execute(
                "SELECT name FROM sqlite_master WHERE type='table' ORDER BY name"
            ).fetchall()
        ]
        names = {}
        if "runs" in tables:
            names = dict(connection.execute("SELECT run_uuid, name FROM runs").fetchall())
        rows = []
        for table in tables:
            cursor = connection.execute(f'SELECT * FROM "{table}"')
            columns = [d[0] for d in cursor.description]
            keep = [i for i, n in enumerate(columns) if not SQLITE_VOLATILE.search(n)]
            content = (tuple(names.get(row[i], row[i]) for i in keep) for row in cursor)
            rows.append((table, sorted(content, key=repr)))
        return rows
    finally:
        connection.close()


@dataclass
class Outcome:
    stage: str
    version: int
    anchor: str | None
    compared: list[str] = field(default_factory=list)
    differing: list[str] = field(default_factory=list)

    @property
    def line(self) -> str:
        where = self.anchor[:10] if self.anchor else "-"
        if self.anchor is None:
            state = "version set in the working tree: nothing to compare with"
        elif self.differing:
            state = f"DIFFERS from {where}: " + ", ".join(self.differing)
        else:
            state = f"same as {where} ({len(self.compared)} files)"
        return f"  {self.stage:<22} v{self.version:<3} {state}"

    def advice(self) -> str:
        return (
            f"stage {self.stage}: {', '.join(self.differing)} differ from what the code of "
            f"{self.anchor[:10]}, where its version ({self.version}) was set, computes from the "
            "same inputs. If this change is meant to alter these results, bump it: "
            f'RESULT_VERSIONS["{self.stage}"] = {self.version + 1} in {VERSIONS_FILE} (its jobs '
            "and those after them then rerun). If not, the change is not a pure refactor: find "
            "what altered the bytes. (A later stage may differ only because an earlier one does.)"
        )


def check(
    repo: Path, heads: dict[str, Path], work: Path, stages: list[str] | None = None, log=print
) -> list[Outcome]:
    """Compare each stage of the head runs (``head_runs``: protocol -> run) with its anchor
    commit's code; a stage is compared in the first protocol that runs it. ``work`` holds the
    anchor commits' code and runs. Returns one outcome per stage."""
    versions = versions_at(repo, None)
    found = anchors(repo)
    unknown = sorted(set(stages or ()) - set(versions))
    if unknown:
        raise GuardError(f"no such stage: {', '.join(unknown)} (stages: {', '.join(versions)})")
    outcomes = {
        stage: Outcome(stage, versions[stage], found[stage]) for stage in stages or versions
    }
    compared: set[str] = set()
    for protocol, head in heads.items():
        made = {s: o for s, o in stage_outputs(head, outcomes).items() if o and s not in compared}
        compared |= set(made)
        group_anchors = dict.fromkeys(outcomes[s].anchor for s in made if outcomes[s].anchor)
        for anchor in group_anchors:
            group = [outcomes[s] for s in made if outcomes[s].anchor == anchor]
            outputs = sorted(output for o in group for output in made[o.stage])
            log(
                f"{protocol}: computing {len(group)} stages ({len(outputs)} files) with the "
                f"code of {anchor[:10]}"
            )
            code = work / f"code-{anchor[:10]}"
            if not code.exists():
                code_at(repo, anchor, code)
            run = work / f"run-{protocol}-{anchor[:10]}"
            recompute(code, head, run, outputs, log=work / f"{run.name}.log")
            for outcome in group:
                for output in made[outcome.stage]:
                    outcome.compared.append(output)
                    again = run / output
                    if not again.is_file() or comparable(again) != comparable(head / output):
                        outcome.differing.append(output)
    return list(outcomes.values())


def default_mnist_dir(repo: Path) -> Path:
    return Path(os.environ.get("MNIST_DIR", repo.parent / "shared" / "data" / "mnist"))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repo", type=Path, default=Path(__file__).resolve().parents[2])
    parser.add_argument("--stages", nargs="+", metavar="STAGE", help="only these (rule names)")
    parser.add_argument("--mnist-dir", type=Path, help="default: $MNIST_DIR or ../shared/...")
    parser.add_argument(
        "--head-runs",
        type=Path,
        help="a folder of head runs made before, one per protocol (kept); default: made now",
    )
    parser.add_argument("--keep", type=Path, help="keep the runs in this folder (for a look)")
    args = parser.parse_args(argv)
    repo = args.repo.resolve()
    mnist_dir = (args.mnist_dir or default_mnist_dir(repo)).resolve()
    work = args.keep.resolve() if args.keep else Path(tempfile.mkdtemp(prefix="guard-"))
    try:
        if args.head_runs:
            folder = args.head_runs.resolve()
            heads = {name: folder / name for name in PROTOCOLS if (folder / name).is_dir()}
        else:
            if not mnist_dir.is_dir():
                raise GuardError(
                    f"MNIST not found in {mnist_dir}: the guard runs on the real images; give "
                    "--mnist-dir or set MNIST_DIR"
                )
            print(f"head runs: the tiny protocols with the working tree's code in {work}")
            heads = head_runs(repo, work / "head", mnist_dir)
        outcomes = check(repo, heads, work, args.stages)
    except GuardError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print("result versions:")
    for outcome in outcomes:
        print(outcome.line)
    failed = [o for o in outcomes if o.differing]
    for outcome in failed:
        print(f"\nerror: {outcome.advice()}", file=sys.stderr)
    if not failed:
        print("every stage whose version did not change computes the same results")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
