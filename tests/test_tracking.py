"""Tracking that opens (workflow tier): switched on after a finished run, it exports the tracked
files without retraining; MLflow's UI serves the runs offline, one per trial with its CV score
and its folds nested under it; TensorBoard gets the HParams plugin's data."""

import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import pandas as pd
import pytest
from conftest import planned_jobs, run_snakemake, variant

pytestmark = pytest.mark.workflow


@pytest.fixture(scope="module")
def copied(tiny_run, tmp_path_factory):
    """A copy of the tiny run to switch tracking on in."""
    workdir, configfile = tiny_run
    copy = tmp_path_factory.mktemp("tracked") / "run"
    shutil.copytree(workdir, copy, symlinks=True)
    return copy, configfile


def switched_on(copied, tmp_path, backend):
    workdir, configfile = copied
    _, config = variant((workdir, configfile), tmp_path, {"tracking": {"backend": backend}})
    # only the export runs: tracking retrains nothing
    assert planned_jobs(workdir, config) == {"export_tracking": 1, "all": 1}
    run_snakemake(workdir, config)
    return workdir


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _post(url, body):
    request = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.loads(answer.read())


def test_the_mlflow_ui_serves_a_run_per_trial_with_its_cv_score(copied, tmp_path):
    workdir = switched_on(copied, tmp_path, "mlflow")
    store = workdir / "results/tracking/mlflow.db"
    port = _free_port()
    mlflow = shutil.which("mlflow", path=str(__import__("pathlib").Path(sys.executable).parent))
    server = subprocess.Popen(  # the README's command
        [mlflow, "ui", "--backend-store-uri", f"sqlite:///{store}", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.time() + 120
        while True:
            try:
                with urllib.request.urlopen(base + "/", timeout=5) as page:
                    html = page.read().decode(errors="replace")
                break
            except OSError:
                assert time.time() < deadline and server.poll() is None, "the UI did not start"
                time.sleep(1)
        assert "<html" in html.lower()  # the UI's page
        experiments = _post(base + "/api/2.0/mlflow/experiments/search", {"max_results": 10})
        experiment = next(e for e in experiments["experiments"] if e["name"] == "mnist-mlp-search")
        runs = _post(
            base + "/api/2.0/mlflow/runs/search",
            {
                "experiment_ids": [experiment["experiment_id"]],
                "max_results": 100,
                "order_by": ["metrics.cv_loss ASC"],
            },
        )["runs"]
    finally:
        server.terminate()
        server.wait(timeout=30)
    ranking = pd.read_csv(workdir / "results/search/ranking.tsv", sep="\t")
    parents = [r for r in runs if "mlflow.parentRunId" not in _tags(r)]
    children = [r for r in runs if "mlflow.parentRunId" in _tags(r)]
    # one run per trial, sorted by the search's metric: the ranking's order
    assert [r["info"]["run_name"] for r in parents] == ranking["trial"].tolist()
    best = _metrics(parents[0])
    assert best["cv_loss"] == pytest.approx(ranking["mean_loss"].iloc[0])
    assert set(_params(parents[0])) >= {"Nh1", "Nh2", "dropout", "optimizer", "lr", "L2"}
    assert "final_official_test_accuracy" in best  # the best trial was retrained
    # its folds and its retraining nested under it
    nested = [r for r in children if _tags(r)["mlflow.parentRunId"] == parents[0]["info"]["run_id"]]
    assert sorted(_tags(r)["fold"] for r in nested) == ["1", "2", "final"]


def _tags(run):
    return {t["key"]: t["value"] for t in run["data"].get("tags", [])}


def _metrics(run):
    return {m["key"]: m["value"] for m in run["data"].get("metrics", [])}


def _params(run):
    return {p["key"]: p["value"] for p in run["data"].get("params", [])}


def test_tensorboard_gets_the_curves_and_the_hparams_view(copied, tmp_path):
    from tensorboard.backend.event_processing.event_multiplexer import EventMultiplexer
    from tensorboard.plugins.hparams import plugin_data_pb2

    workdir = switched_on(copied, tmp_path, "tensorboard")
    multiplexer = EventMultiplexer()
    multiplexer.AddRunsFromDirectory(str(workdir / "results/tracking/tensorboard"))
    multiplexer.Reload()
    hparams = multiplexer.PluginRunToTagToContent("hparams")
    ranking = pd.read_csv(workdir / "results/search/ranking.tsv", sep="\t")
    sessions = {}
    for run, tags in hparams.items():
        for content in tags.values():
            data = plugin_data_pb2.HParamsPluginData.FromString(content)
            if data.HasField("session_start_info"):
                values = data.session_start_info.hparams
                sessions[run.split("/")[0]] = {k: values[k] for k in values}
    assert set(sessions) == set(ranking["trial"])
    first = ranking.iloc[0]
    assert sessions[first["trial"]]["Nh1"].number_value == first["Nh1"]
    scalars = multiplexer.Scalars(f"{first['trial']}", "fold1/valid_loss")
    assert len(scalars) == 2  # two epochs of the tiny run
