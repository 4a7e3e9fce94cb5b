"""Result versions: each rule passes its stage's version as a param, records made before versions
are kept, and the guard's parts (its anchors in git history, what it compares). Fast tier; the
guard itself runs in ``test_guard.py``."""

import ast
import json
import re
import subprocess
import sys

import pytest
import torch
from conftest import REPO

from mnist_mlp import guard, records, versions
from mnist_mlp.model import MLP, save_model

RULE = re.compile(r"^(?:rule|checkpoint) (\w+):\n((?:[ \t]+.*\n|\n)*)", re.MULTILINE)


def rules():
    """Rule name -> its text, from every .smk file."""
    found = {}
    for path in sorted((REPO / "workflow" / "rules").glob("*.smk")):
        found |= dict(RULE.findall(path.read_text()))
    return found


def test_every_rule_that_writes_results_passes_its_own_version():
    passed = {
        name: re.findall(r'version=result_version\("(\w+)"\)', text)
        for name, text in rules().items()
    }
    assert set(passed) == set(versions.RESULT_VERSIONS)  # no rule without, no stale entry
    for name, named in passed.items():
        assert named == [name], f"rule {name} passes the version of {named}"
    assert set(versions.LEGACY_CODE_HASHES) <= set(versions.RESULT_VERSIONS)
    assert versions.result_version("retrain") == "v1"
    with pytest.raises(KeyError, match="add it to RESULT_VERSIONS"):
        versions.result_version("no_such_stage")


def test_no_rule_passes_a_hash_of_its_code():
    """Versions replace the code hashes: a refactor must not change any param."""
    text = "".join(rules().values())
    assert "code=" not in text and "code_version" not in text


def write_record(run, output, rule, params):
    path = run / records.METADATA / records.record_name(output)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"rule": rule, "params": params, "incomplete": False}))
    return path


def test_records_made_before_versions_become_version_1_and_others_are_left(tmp_path):
    legacy = repr(versions.LEGACY_CODE_HASHES["cross_validate"])
    settings = "{'seed': 0, 'folds': 4}"
    kept = write_record(
        tmp_path, "results/search/cv/t0000.json", "cross_validate", [legacy, settings]
    )
    other = write_record(
        tmp_path, "results/search/cv/t0001.json", "cross_validate", ["'0123456789abcdef'", settings]
    )
    # the hash of another rule's code is no proof of this rule's results
    wrong = write_record(tmp_path, "results/search/ranking.tsv", "rank_trials", [legacy])
    (tmp_path / records.METADATA / "not-base64!").write_text("x")  # Snakemake's own files
    before = {path: path.read_text() for path in (other, wrong)}
    assert records.legacy_records(tmp_path) == ["results/search/cv/t0000.json"]
    assert records.upgrade(tmp_path) == ["results/search/cv/t0000.json"]
    assert json.loads(kept.read_text())["params"] == sorted(["'v1'", settings])
    assert json.loads(kept.read_text())["rule"] == "cross_validate"
    assert {path: path.read_text() for path in (other, wrong)} == before
    assert records.upgrade(tmp_path) == []  # once is enough
    assert records.legacy_records(tmp_path) == []


def test_the_upgrade_command_names_a_folder_without_records(tmp_path, capsys):
    assert records.main(["upgrade", str(tmp_path)]) == 1
    assert "holds no Snakemake records" in capsys.readouterr().err


def test_the_published_state_is_the_current_versions_results():
    """Every record of the published full run carries its rule's current version (for a stage
    still at version 1, possibly the code hash of version 1, which a restore upgrades): after a
    restore none of its jobs reruns for its code."""
    from mnist_mlp import runstate

    files = runstate.contents_of(REPO / "docs" / "full_run" / "state.tar.gz")
    found = {
        name: json.loads(content)
        for name, content in files.items()
        if name.startswith(str(records.METADATA) + "/")
    }
    assert len(found) > 300
    for name, record in found.items():
        version = versions.RESULT_VERSIONS[record["rule"]]
        ok = {repr(f"v{version}")}
        if version == 1 and record["rule"] in versions.LEGACY_CODE_HASHES:
            ok.add(repr(versions.LEGACY_CODE_HASHES[record["rule"]]))
        assert ok & set(record["params"]), (name, record["rule"], record["params"])


# --- the guard's parts ---------------------------------------------------------------------


def commit_versions(repo, stages, message):
    path = repo / guard.VERSIONS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"VERSION_1_COMMIT = 'published'\nRESULT_VERSIONS = {stages!r}\n")
    subprocess.run(["git", "-C", repo, "add", "-A"], check=True)
    subprocess.run(["git", "-C", repo, "commit", "-qm", message], check=True)
    return subprocess.run(
        ["git", "-C", repo, "rev-parse", "HEAD"], check=True, capture_output=True, text=True
    ).stdout.strip()


def test_each_stage_is_anchored_where_its_version_was_last_set(tmp_path):
    subprocess.run(["git", "init", "-q", tmp_path], check=True)
    for key, value in (("user.name", "t"), ("user.email", "t@t")):
        subprocess.run(["git", "-C", tmp_path, "config", key, value], check=True)
    commit_versions(tmp_path, {"a": 1, "b": 1, "c": 1}, "versions")
    bumped = commit_versions(tmp_path, {"a": 2, "b": 1, "c": 1}, "bump a")
    added = commit_versions(tmp_path, {"a": 2, "b": 1, "c": 1, "d": 1}, "add d")
    (tmp_path / "README").write_text("other work")  # commits that leave the file alone
    commit_versions(tmp_path, {"a": 2, "b": 1, "c": 1, "d": 1}, "unrelated")
    path = tmp_path / guard.VERSIONS_FILE
    path.write_text(path.read_text().replace("'c': 1", "'c': 2"))  # bumped, not committed
    assert guard.anchors(tmp_path) == {
        "a": bumped,
        "b": "published",  # version 1 since the first file: the code that made version 1
        "c": None,  # set in the working tree: nothing to compare with
        "d": added,
    }


def test_only_job_times_may_differ(tmp_path):
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    first.write_text(json.dumps({"loss": 0.5, "folds": [{"seconds": 1.0, "epochs": 3}]}))
    second.write_text(json.dumps({"loss": 0.5, "folds": [{"seconds": 9.0, "epochs": 3}]}))
    assert guard.comparable(first) == guard.comparable(second)
    second.write_text(json.dumps({"loss": 0.5, "folds": [{"seconds": 1.0, "epochs": 4}]}))
    assert guard.comparable(first) != guard.comparable(second)
    first, second = tmp_path / "a.tsv", tmp_path / "b.tsv"
    first.write_text("epoch\tloss\tseconds\n1\t0.5\t2.0\n")
    second.write_text("epoch\tloss\tseconds\n1\t0.5\t3.5\n")
    assert guard.comparable(first) == guard.comparable(second)
    second.write_text("epoch\tloss\tseconds\n1\t0.50001\t2.0\n")
    assert guard.comparable(first) != guard.comparable(second)
    torch.manual_seed(0)
    module = MLP(20, 10)
    trial = {"trial": "t0000", "Nh1": 20, "Nh2": 10, "dropout": 0.0}
    save_model(tmp_path / "a.pt", module, trial, {"accuracy": 0.9, "train_seconds": 1.0})
    save_model(tmp_path / "b.pt", module, trial, {"accuracy": 0.9, "train_seconds": 7.0})
    assert guard.comparable(tmp_path / "a.pt") == guard.comparable(tmp_path / "b.pt")
    with torch.no_grad():
        module.layers.output.bias[0] += 1e-7
    save_model(tmp_path / "b.pt", module, trial, {"accuracy": 0.9, "train_seconds": 1.0})
    assert guard.comparable(tmp_path / "a.pt") != guard.comparable(tmp_path / "b.pt")
    (tmp_path / "a.png").write_bytes(b"\x89PNG1")
    (tmp_path / "b.png").write_bytes(b"\x89PNG2")
    assert guard.comparable(tmp_path / "a.png") != guard.comparable(tmp_path / "b.png")


# --- planning needs only Snakemake ---------------------------------------------------------


def _imports(path):
    """(package modules, other top-level packages) a module imports when it is imported."""
    ours, others = set(), set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.ImportFrom) and node.level:
            ours |= {node.module} if node.module else {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            others.add(node.module.split(".")[0])
        elif isinstance(node, ast.Import):
            others |= {alias.name.split(".")[0] for alias in node.names}
    return ours, others


def test_the_snakefile_needs_only_what_snakemake_brings():
    """Planning a run (the Snakefile and what it imports from the package) needs only the
    standard library, PyYAML and jsonschema, which Snakemake installs: so a Snakemake-only
    environment (--software-deployment-method conda) can run the workflow."""
    sources = [REPO / "Snakefile", *sorted((REPO / "workflow" / "rules").glob("*.smk"))]
    pending = set()
    for source in sources:
        pending |= set(re.findall(r"^from mnist_mlp\.(\w+) import", source.read_text(), re.M))
    package = REPO / "workflow" / "mnist_mlp"
    modules = set()
    allowed = set(sys.stdlib_module_names) | {"yaml", "jsonschema", "mnist_mlp", "__future__"}
    while pending:
        module = pending.pop()
        modules.add(module)
        ours, others = _imports(package / f"{module}.py")
        assert not others - allowed, f"mnist_mlp/{module}.py imports {others - allowed}"
        pending |= ours - modules
    assert {"config", "trials", "versions", "records", "io", "report"} <= modules
