"""Saving a run's finished work and restoring it elsewhere (fast tier: a run folder laid out as
Snakemake leaves it; ``test_reliability.py`` checks the same with Snakemake on a real run), and
a restore that trusts nothing in a state."""

import hashlib
import io
import json
import os
import tarfile

import pytest

from mnist_mlp import records, runstate
from mnist_mlp.errors import UserFacingError

DATA = "results/data/mnist.npz"


def finished(run, output, content, running=False, data=b"pixels", job=None):
    """An output as a finished job leaves it, with its record; ``running``: its job runs again
    now (Snakemake's incomplete marker beside the record of the earlier run)."""
    path = run / output
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content)
    record = {
        "incomplete": False,
        "input_checksums": {DATA: "sha256:" + hashlib.sha256(data).hexdigest()},
        "log": [f"logs/{output}.log"],
    }
    if job:  # Snakemake records the same rule and job hash for each output of a job
        record.update(rule=job[0], job_hash=job[1])
    name = records.record_name(output)
    (run / records.METADATA).mkdir(parents=True, exist_ok=True)
    (run / records.METADATA / name).write_text(json.dumps(record))
    if running:
        (run / ".snakemake/incomplete").mkdir(parents=True, exist_ok=True)
        (run / ".snakemake/incomplete" / name).write_text("")


@pytest.fixture
def run(tmp_path):
    run = tmp_path / "run"
    finished(run, DATA, "pixels")
    finished(run, "results/search/cv/t0000.json", '{"status": "ok"}')
    finished(run, "results/search/cv/t0001.json", "{}", running=True)  # rerun when saved
    (run / "benchmarks/search/cross_validate").mkdir(parents=True)
    (run / "benchmarks/search/cross_validate/t0000.tsv").write_text("s\n100\n")
    (run / ".snakemake/log").mkdir(parents=True)
    (run / ".snakemake/log/2026.snakemake.log").write_text("Provided cores: 2\n")
    (run / ".snakemake/metadata/not-base64!").write_text("x")  # Snakemake's own files
    return run


def members(archive) -> dict[str, bytes]:
    with tarfile.open(archive) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}


def write_archive(path, files: dict[str, bytes], links=()) -> None:
    with tarfile.open(path, "w:gz") as tar:
        for name, content in files.items():
            member = tarfile.TarInfo(name)
            member.size = len(content)
            tar.addfile(member, io.BytesIO(content))
        for name, target in links:
            member = tarfile.TarInfo(name)
            member.type, member.linkname = tarfile.SYMTYPE, target
            tar.addfile(member)


def test_save_packs_finished_outputs_records_and_benchmarks_not_data(run, tmp_path):
    manifest = runstate.save(run, tmp_path / "state")
    archive = tmp_path / "state.tar.gz"  # one compressed file
    packed = members(archive)
    assert manifest["outputs"] == ["results/search/cv/t0000.json"]
    assert packed["results/search/cv/t0000.json"] == b'{"status": "ok"}'
    assert "results/search/cv/t0001.json" not in packed and DATA not in packed
    record = packed[str(records.METADATA / records.record_name("results/search/cv/t0000.json"))]
    assert json.loads(record)["incomplete"] is False
    assert "benchmarks/search/cross_validate/t0000.tsv" in packed
    assert ".snakemake/log/2026.snakemake.log" in packed
    assert set(manifest["regenerated_inputs"]) == {DATA}
    # the manifest lists every file with its digest, and nothing else is packed
    listed = json.loads(packed[runstate.MANIFEST])["files"]
    assert set(listed) == set(packed) - {runstate.MANIFEST}
    for name, content in packed.items():
        if name != runstate.MANIFEST:
            assert listed[name] == "sha256:" + hashlib.sha256(content).hexdigest()
    # saved again: replaced whole
    (run / "results/search/cv/t0000.json").unlink()
    assert runstate.save(run, archive)["outputs"] == []
    assert "results/search/cv/t0000.json" not in members(archive)


def test_save_can_leave_out_whole_jobs_by_an_output_pattern(run, tmp_path):
    finished(run, "results/final/t0000/model.pt", "weights", job=("retrain", 1))
    finished(run, "results/final/t0000/metrics.json", "{}", job=("retrain", 1))
    finished(run, "results/final/t0001/metrics.json", "{}", job=("retrain", 2))
    manifest = runstate.save(run, tmp_path / "state", leave_out=("results/final/*/model.pt",))
    # the job that made a model is left out whole: restored, it reruns and makes both again
    assert manifest["left_out"] == [
        "results/final/t0000/metrics.json",
        "results/final/t0000/model.pt",
    ]
    assert manifest["outputs"] == [
        "results/final/t0001/metrics.json",
        "results/search/cv/t0000.json",
    ]
    assert not any(
        name.startswith("results/final/t0000") for name in members(tmp_path / "state.tar.gz")
    )


def test_restore_needs_the_same_data_and_dates_the_outputs_after_it(run, tmp_path):
    runstate.save(run, tmp_path / "state")
    state = tmp_path / "state.tar.gz"
    elsewhere = tmp_path / "elsewhere"
    with pytest.raises(UserFacingError, match="run the data stage"):
        runstate.restore(state, elsewhere)
    (elsewhere / "results/data").mkdir(parents=True)
    (elsewhere / DATA).write_text("other pixels")
    with pytest.raises(UserFacingError, match="differs from the file the saved jobs read"):
        runstate.restore(state, elsewhere)
    (elsewhere / DATA).write_text("pixels")
    os.utime(elsewhere / DATA, (2e9, 2e9))  # made now, on a machine whose clock is ahead
    runstate.restore(state, elsewhere)
    restored = elsewhere / "results/search/cv/t0000.json"
    assert restored.read_text() == '{"status": "ok"}'
    assert restored.stat().st_mtime > (elsewhere / DATA).stat().st_mtime
    record = records.record_name("results/search/cv/t0000.json")
    assert (elsewhere / records.METADATA / record).exists()


def test_restore_without_a_saved_state_names_the_fix(tmp_path):
    with pytest.raises(UserFacingError, match="runstate save"):
        runstate.restore(tmp_path / "nothing", tmp_path / "run")


# --- a state is input from elsewhere ---------------------------------------------------------


@pytest.fixture
def target(tmp_path):
    """A run folder with its data stage done, and the code a state must never touch."""
    target = tmp_path / "target"
    (target / "results/data").mkdir(parents=True)
    (target / DATA).write_text("pixels")
    (target / "workflow/mnist_mlp").mkdir(parents=True)
    (target / "workflow/mnist_mlp/__init__.py").write_text("# the package\n")
    return target


def tampered(tmp_path, run, change) -> object:
    """The archive of ``run``'s state after ``change(files, manifest)``; returns its path."""
    runstate.save(run, tmp_path / "good")
    files = members(tmp_path / "good.tar.gz")
    manifest = json.loads(files.pop(runstate.MANIFEST))
    links = change(files, manifest) or ()
    path = tmp_path / "bad.tar.gz"
    write_archive(path, {runstate.MANIFEST: json.dumps(manifest).encode(), **files}, links)
    return path


def _listed(files, manifest, name, content):
    files[name] = content
    manifest["files"][name] = "sha256:" + hashlib.sha256(content).hexdigest()


CODE = b"raise SystemExit('ran code from a state')\n"
TAMPERING = {
    "a package module": lambda f, m: _listed(f, m, "workflow/mnist_mlp/__init__.py", CODE),
    "the Snakefile": lambda f, m: _listed(f, m, "Snakefile", CODE),
    "the config": lambda f, m: _listed(f, m, "config.yaml", b"seed: 1\n"),
    "a profile": lambda f, m: _listed(f, m, "profiles/default/config.yaml", b"cores: 1\n"),
    "the dataset": lambda f, m: _listed(f, m, DATA, b"permuted labels"),
    "a path out of the run": lambda f, m: _listed(f, m, "results/../../victim.txt", b"x"),
    "an absolute path": lambda f, m: _listed(f, m, "/tmp/victim.txt", b"x"),
    "an output out of the run": lambda f, m: m["outputs"].append("../victim.txt"),
    "an unlisted output": lambda f, m: m["outputs"].append("results/search/cv/t0009.json"),
    "a changed file": lambda f, m: f.update({"results/search/cv/t0000.json": b"{}"}),
    "a listed file missing": lambda f, m: f.pop("results/search/cv/t0000.json") and None,
    "a link": lambda f, m: (
        m["files"].update({"results/x.txt": None}),
        [("results/x.txt", "/etc/passwd")],
    )[1],
    "a damaged manifest": lambda f, m: m.pop("outputs") and None,
}


@pytest.mark.parametrize("case", list(TAMPERING))
def test_a_tampered_state_is_refused_naming_the_entry_before_anything_is_written(
    run, target, tmp_path, case
):
    bad = tampered(tmp_path, run, TAMPERING[case])
    before = sorted(p.relative_to(target) for p in target.rglob("*"))
    with pytest.raises(UserFacingError) as refused:
        runstate.restore(bad, target)
    message = str(refused.value)
    assert "nothing was restored" in message or "damaged" in message, message
    assert sorted(p.relative_to(target) for p in target.rglob("*")) == before
    assert (target / "workflow/mnist_mlp/__init__.py").read_text() == "# the package\n"
    assert not (tmp_path / "victim.txt").exists()


def test_a_damaged_or_foreign_archive_is_named(tmp_path, target):
    broken = tmp_path / "broken.tar.gz"
    broken.write_bytes(b"\x1f\x8b not really gzip")
    with pytest.raises(UserFacingError, match="not a readable state archive"):
        runstate.restore(broken, target)
    write_archive(tmp_path / "empty.tar.gz", {"other.txt": b"x"})
    with pytest.raises(UserFacingError, match="state.json is missing"):
        runstate.restore(tmp_path / "empty.tar.gz", target)
    write_archive(tmp_path / "notjson.tar.gz", {runstate.MANIFEST: b"{not json"})
    with pytest.raises(UserFacingError, match="state.json is damaged"):
        runstate.restore(tmp_path / "notjson.tar.gz", target)


def test_a_folder_state_restores_only_what_its_manifest_names(run, target, tmp_path):
    """States of earlier releases are folders: the same rules hold."""
    folder = tmp_path / "folder"
    runstate.save(run, tmp_path / "s")
    with tarfile.open(tmp_path / "s.tar.gz") as tar:
        tar.extractall(folder, filter="data")
    (folder / "workflow/mnist_mlp").mkdir(parents=True)
    (folder / "workflow/mnist_mlp/__init__.py").write_bytes(CODE)  # not listed: never copied
    manifest = json.loads((folder / runstate.MANIFEST).read_text())
    del manifest["files"]  # as an earlier release wrote it
    (folder / runstate.MANIFEST).write_text(json.dumps(manifest))
    runstate.restore(folder, target)
    assert (target / "workflow/mnist_mlp/__init__.py").read_text() == "# the package\n"
    assert (target / "results/search/cv/t0000.json").exists()
    secret = tmp_path / "secret.txt"
    secret.write_text("private")
    (folder / "benchmarks/search/cross_validate/x.tsv").symlink_to(secret)
    with pytest.raises(UserFacingError, match="is a link in the state"):
        runstate.restore(folder, target)


def test_a_link_in_the_run_folder_is_not_written_through(run, target, tmp_path):
    runstate.save(run, tmp_path / "state")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (target / "benchmarks").symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(UserFacingError, match="through the link"):
        runstate.restore(tmp_path / "state.tar.gz", target)
    assert not any(elsewhere.rglob("*"))


def test_a_runs_config_file_is_kept_in_its_folder_and_travels_in_its_state(run, tmp_path):
    """``mnist-mlp run start --configfile F`` copies F into the run's folder: editing the
    checkout's file later changes nothing of the run at its fixed commit; the saved state
    carries it, and a resume on another machine writes it into the new folder."""
    from mnist_mlp import runs

    checkout_file = tmp_path / "halving.yaml"
    checkout_file.write_text("search: {pruning: halving}\n")
    settings = {"mnist_dir": "/data/mnist"} | runs.keep_configfile(run, checkout_file.read_text())
    checkout_file.write_text("search: {pruning: none}\n")  # edited after the start
    args = runs.config_args(settings)
    assert args[:2] == ["--configfile", runs.CONFIGFILE]  # relative: Snakemake runs in `run`
    assert (run / args[1]).read_text() == "search: {pruning: halving}\n"

    manifest = runstate.save(run, tmp_path / "state.tar.gz", extra=settings)
    elsewhere = tmp_path / "new_machine_run"
    elsewhere.mkdir()
    restored = runs.settings_from_state(
        runstate.manifest_of(tmp_path / "state.tar.gz")["extra"], elsewhere
    )
    assert manifest["extra"]["configfile_text"] == "search: {pruning: halving}\n"
    assert (elsewhere / restored["configfile"]).read_text() == "search: {pruning: halving}\n"
    # a run started from another run's state says so on the new machine too (its published
    # provenance; its cost's stage spans leave out that run's logs)
    moved = runs.settings_from_state({"restored": "docs/full_run/state.tar.gz"}, elsewhere)
    assert moved["restored"] == "docs/full_run/state.tar.gz"
    assert "restored" not in restored
    # a state saved before: the old machine's path, as it was
    assert runs.settings_from_state({"configfile": "/old/x.yaml"}, elsewhere)["configfile"] == (
        "/old/x.yaml"
    )
    with pytest.raises(SystemExit, match="config file is not text"):
        runs.settings_from_state({"configfile_text": ["search"]}, elsewhere)


def test_a_state_too_large_for_git_is_kept_out_of_docs(tmp_path, capsys, monkeypatch):
    """``mnist-mlp run save``: a state over the limit (a halving run's rung states: GBs) is
    moved out of docs/ to where ``run resume`` finds it; a small one stays, replacing an old
    large one."""
    from mnist_mlp import runs

    docs, kept = tmp_path / "docs/halving/state.tar.gz", tmp_path / "runs/halving.state.tar.gz"
    docs.parent.mkdir(parents=True)
    docs.write_bytes(b"x" * 2000)
    assert runs.place_state(docs, kept, limit=1000) == kept
    assert not docs.exists() and kept.read_bytes() == b"x" * 2000
    assert "the state is 0 MB, more than git hosts take (0 MB): kept at" in capsys.readouterr().out
    monkeypatch.setattr(runs, "DOCS", tmp_path / "docs")  # the repository's folders, here
    monkeypatch.setattr(runs, "RUNS", tmp_path / "runs")
    assert runs.state_of("halving") == kept  # what `run resume` restores
    docs.write_bytes(b"x" * 10)  # saved again, small
    assert runs.place_state(docs, kept, limit=1000) == docs
    assert docs.exists() and not kept.exists()
    assert runs.state_of("halving") == docs


def test_resume_restores_the_checkpoint_where_the_folder_lost_its_records(tmp_path, monkeypatch):
    """A machine that went with a run's ignored files (``.snakemake/``, ``results/``) but
    carried its folder: ``run resume`` restores the checkpoint saved there, else the saved
    state; on the same machine it restores nothing; with neither, it names the fix."""
    from mnist_mlp import runs

    monkeypatch.setattr(runs, "DOCS", tmp_path / "docs")
    monkeypatch.setattr(runs, "RUNS", tmp_path / "runs")
    run = tmp_path / "runs/halving-abc1234"
    (run / ".snakemake").mkdir(parents=True)
    (run / runs.SETTINGS).write_text('{"name": "halving"}')
    assert runs.resume_from(run, "halving") is None  # the same machine
    (run / ".snakemake").rmdir()  # a new machine: the ignored files are gone
    with pytest.raises(SystemExit, match="neither a checkpoint .* start the run again"):
        runs.resume_from(run, "halving")
    saved = tmp_path / "docs/halving/state.tar.gz"
    saved.parent.mkdir(parents=True)
    saved.write_bytes(b"saved")
    assert runs.resume_from(run, "halving") == saved
    (run / runs.CHECKPOINT).write_bytes(b"newer")
    assert runs.resume_from(run, "halving") == run / runs.CHECKPOINT


def test_a_checkpoint_is_the_runs_finished_work_in_its_folder(run, tmp_path, monkeypatch):
    from mnist_mlp import runs

    monkeypatch.setattr(runs, "RUNS", tmp_path / "runs")
    folder = tmp_path / "runs/halving-abc1234"
    folder.parent.mkdir()
    run.rename(folder)
    (folder / runs.SETTINGS).write_text('{"name": "halving", "cores": 2}')
    assert runs.main(["checkpoint", "halving"]) == 0
    manifest = runstate.manifest_of(folder / runs.CHECKPOINT)
    assert manifest["outputs"] == ["results/search/cv/t0000.json"]
    assert manifest["extra"] == {"name": "halving", "cores": 2}
