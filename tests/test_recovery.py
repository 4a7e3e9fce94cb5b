"""Damaged results that recover, outputs that cannot be written, and interrupted jobs (fast
tier: the stage functions and the job set-up, in-process or in a subprocess)."""

import ast
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO, Paths, skip_or_fail

from mnist_mlp import jobs, ranking, winner
from mnist_mlp.errors import UserFacingError
from mnist_mlp.io import read_result, write_json
from mnist_mlp.model import MLP, load_model, save_model

TRIAL = {"trial": "t0000", "Nh1": 20, "Nh2": 10, "dropout": 0.0, "optimizer": "Adam"}
TRIAL |= {"lr": 1e-3, "L2": 0.0}


def cv_result(trial="t0000", **changes):
    result = {
        "trial": trial,
        "params": {k: v for k, v in TRIAL.items() if k != "trial"},
        "status": "ok",
        "mean_loss": 0.3,
        "std_loss": 0.01,
        "mean_accuracy": 0.9,
        "mean_epochs": 4.0,
        "folds": [{"fold": 1, "loss": 0.3, "seconds": 1.0}],
    }
    return result | changes


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"mean_loss": "__drop__"}, "mean_loss is missing"),
        ({"folds": []}, "lists no folds"),
        ({"params": None}, "params is missing"),
        ({"status": "finished"}, "status 'finished'"),
        ({"mean_loss": None}, "without its mean_loss"),
        ({"mean_epochs": "4"}, "mean_epochs is missing or not a float"),
        ({"trial": "t0001"}, "holds trial 't0001', not the trial its path names"),  # a copy
    ],
)
def test_a_result_without_what_the_stages_read_is_named_and_set_aside(tmp_path, change, named):
    good = tmp_path / "cv/t0001.json"
    write_json(good, cv_result("t0001"))
    bad = tmp_path / "cv/t0000.json"
    result = cv_result()
    for key, value in change.items():
        if value == "__drop__":
            del result[key]
        else:
            result[key] = value
    write_json(bad, result)
    outputs = Paths(
        ranking=tmp_path / "r.tsv",
        sorted_scores=tmp_path / "s.dat",
        sorted_params=tmp_path / "p.dat",
    )
    with pytest.raises(UserFacingError, match=f"t0000.json is damaged .*{named}") as err:
        ranking.rank_trials_stage([good, bad], outputs)
    assert "Run the workflow again" in str(err.value)
    assert not bad.exists() and (tmp_path / "cv/t0000.json.damaged").exists()
    assert read_result(good)["trial"] == "t0001"  # a sound result is read as it is


def test_a_truncated_model_is_set_aside_not_copied_and_the_figures_name_it(tmp_path):
    folders = {}
    for trial, accuracy in (("t0000", 0.9), ("t0001", 0.8)):
        folder = tmp_path / "final" / trial
        metrics = {"trial": trial, "params": TRIAL | {"trial": trial}, "status": "ok"}
        metrics |= {"test_accuracy": accuracy, "official_test_accuracy": accuracy}
        metrics |= {"whole_dataset_accuracy": accuracy, "epochs": 3}
        write_json(folder / "metrics.json", metrics)
        save_model(folder / "model.pt", MLP(20, 10), TRIAL | {"trial": trial}, metrics)
        folders[trial] = folder
    model = folders["t0000"] / "model.pt"
    model.write_bytes(model.read_bytes()[:2000])  # cut short by a full disk
    write_json(tmp_path / "cv/t0000.json", cv_result())
    write_json(tmp_path / "cv/t0001.json", cv_result("t0001"))
    ranked = ranking.build_ranking([cv_result(), cv_result("t0001")])
    ranked.to_csv(tmp_path / "ranking.tsv", sep="\t", index=False)
    outputs = Paths(
        summary=tmp_path / "summary.tsv",
        winner=tmp_path / "winner.json",
        model=tmp_path / "winning_net.dat",
    )
    with pytest.raises(UserFacingError, match="model.pt is damaged .*Run the workflow again"):
        winner.select_winner_stage(
            [f / "metrics.json" for f in folders.values()],
            [f / "model.pt" for f in folders.values()],
            tmp_path / "ranking.tsv",
            outputs,
        )
    assert not outputs.model.exists() and not model.exists()  # its retraining runs again
    assert (folders["t0000"] / "model.pt.damaged").exists()
    # a damaged winner copy, as the figure jobs meet it: named, set aside
    good = folders["t0001"] / "model.pt"
    shutil.copy(good, outputs.model)
    outputs.model.write_bytes(outputs.model.read_bytes()[:-300])
    with pytest.raises(UserFacingError, match="winning_net.dat is damaged"):
        load_model(outputs.model)
    assert not outputs.model.exists()


def test_a_folder_that_cannot_be_written_stops_the_job_before_any_work(tmp_path):
    """As another user where the tests run as root (root ignores file modes): Debian's Python
    as nobody, in a folder anyone may enter (the job module needs the standard library only)."""
    import tempfile

    base = Path(tempfile.mkdtemp(prefix="readonly-", dir="/tmp"))
    try:
        base.chmod(0o755)
        folder = base / "results"
        folder.mkdir(mode=0o555)
        folder.chmod(0o555)
        code = (
            "import sys; sys.path.insert(0, sys.argv[1]); "
            "from mnist_mlp.jobs import check_writable; check_writable([sys.argv[2]])"
        )
        root = os.geteuid() == 0
        python = (
            "/usr/bin/python3" if root and Path("/usr/bin/python3").exists() else sys.executable
        )
        if root and python == sys.executable:
            skip_or_fail("no Python outside /root to run as another user")
        command = [python, "-c", code, str(REPO / "workflow"), str(folder / "cv/t0.json")]
        done = subprocess.run(command, capture_output=True, text=True, user=65534 if root else None)
        assert done.returncode != 0
        assert f"cannot write into {folder}" in done.stderr, done.stderr
        assert "nothing was computed" in done.stderr
        folder.chmod(0o755)
        jobs.check_writable([folder / "cv/t0.json"])  # writable: no complaint, nothing left
        assert [p.name for p in folder.rglob("*")] == ["cv"]
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_the_job_watch_is_armed_before_torch_is_imported():
    """A `kill -9` of Snakemake in a job's first seconds must stop the job too: each rule script
    calls start_job before it imports its stage, and the job module imports nothing heavy."""
    for script in sorted((REPO / "workflow/scripts").glob("*.py")):
        body = ast.parse(script.read_text()).body
        start = next(
            i
            for i, node in enumerate(body)
            if isinstance(node, ast.Expr)
            and isinstance(node.value, ast.Call)
            and getattr(node.value.func, "id", "") == "start_job"
        )
        for node in body[:start]:
            if isinstance(node, ast.ImportFrom) and node.module.startswith("mnist_mlp"):
                assert node.module == "mnist_mlp.jobs", f"{script.name} imports {node.module} first"
    heavy = "{'torch', 'skorch', 'numpy'}"
    probe = f"import sys; import mnist_mlp.jobs; print(sorted({heavy} & set(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        env=os.environ | {"PYTHONPATH": str(REPO / "workflow")},
    )
    assert done.stdout.strip() == "[]", done.stderr


INTERRUPTED_JOB = """
import sys, types
sys.path.insert(0, sys.argv[1])
from mnist_mlp.jobs import start_job
start_job(sys.argv[2], [sys.argv[3]], watch=False)
import torch
from mnist_mlp import training
X = torch.rand(2000, 784); y = torch.randint(0, 10, (2000,))
params = {"trial": "t0000", "Nh1": 300, "Nh2": 200, "dropout": 0.1, "optimizer": "Adam",
          "lr": 1e-3, "L2": 0.0}
settings = training.TrainingSettings(max_epochs=10_000, batch_size=32, patience=None, seed=0)
training.fit_and_score(params, settings, X, y, X[:100], y[:100])
open(sys.argv[3], "w").write("done")
"""


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_job_says_so_and_writes_nothing(tmp_path, signum):
    log, output = tmp_path / "job.log", tmp_path / "out.json"
    job = subprocess.Popen(
        [sys.executable, "-c", INTERRUPTED_JOB, str(REPO / "workflow"), str(log), str(output)],
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 120
    while "epoch 1/" not in (log.read_text() if log.exists() else "") and time.time() < deadline:
        time.sleep(0.1)
    job.send_signal(signum)  # in the middle of training, where skorch catches KeyboardInterrupt
    _, stderr = job.communicate(timeout=60)
    text = log.read_text()
    assert job.returncode != 0 and not output.exists()
    assert f"interrupted by {signum.name}" in text and "KeyError" not in text + stderr
