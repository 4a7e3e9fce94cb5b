"""Saving a run's finished work and restoring it elsewhere (fast tier: a run folder laid out as
Snakemake leaves it; ``test_reliability.py`` checks the same with Snakemake on a real run)."""

import hashlib
import json
import os

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


def test_save_carries_finished_outputs_records_and_benchmarks_not_data(run, tmp_path):
    state = tmp_path / "state"
    manifest = runstate.save(run, state)
    assert manifest["outputs"] == ["results/search/cv/t0000.json"]
    assert (state / "results/search/cv/t0000.json").read_text() == '{"status": "ok"}'
    assert not (state / "results/search/cv/t0001.json").exists()
    assert not (state / DATA).exists()
    record = state / records.METADATA / records.record_name("results/search/cv/t0000.json")
    assert json.loads(record.read_text())["incomplete"] is False
    assert (state / "benchmarks/search/cross_validate/t0000.tsv").exists()
    assert (state / ".snakemake/log/2026.snakemake.log").exists()
    assert set(manifest["regenerated_inputs"]) == {DATA}
    assert not (tmp_path / "state.partial").exists()
    # saved again over the earlier copy: the earlier copy's files do not linger
    (run / "results/search/cv/t0000.json").unlink()
    assert runstate.save(run, state)["outputs"] == []
    assert not (state / "results/search/cv/t0000.json").exists()


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
    assert not (tmp_path / "state/results/final/t0000").exists()


def test_restore_needs_the_same_data_and_dates_the_outputs_after_it(run, tmp_path):
    state = tmp_path / "state"
    runstate.save(run, state)
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
