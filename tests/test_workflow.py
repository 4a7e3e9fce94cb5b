"""The workflow through Snakemake on the real MNIST (workflow tier): a tiny complete run, and
what each kind of change makes Snakemake rerun, asked of it with dry-runs."""

import os
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import (
    MNIST_DIR,
    REPO,
    copy_workflow,
    planned_jobs,
    snakemake_command,
    variant,
)

from mnist_mlp import figures
from mnist_mlp.data import load_part
from mnist_mlp.io import read_json
from mnist_mlp.model import load_model
from mnist_mlp.training import evaluate
from mnist_mlp.versions import RESULT_VERSIONS

pytestmark = pytest.mark.workflow

TRIALS = ["t0000", "t0001"]
FIGURE_RULES = {"plot_search", "plot_receptive_fields", "plot_gradient_ascent"}
AFTER_RANKING = {
    "rank_trials",
    "export_study",
    "plot_importance",
    "select_winner",
    "build_ensemble",
    "export_models",
    "report_tables",
    "plot_search",
    "plot_learning_curves",
    "plot_receptive_fields",
    "plot_gradient_ascent",
    "all",
}


def test_the_tiny_run_produces_every_artifact(tiny_run):
    workdir, _ = tiny_run
    for path in (
        "results/data/mnist.npz",
        "results/search/trials.tsv",
        "results/search/ranking.tsv",
        "results/search/sorted_scores.dat",
        "results/search/sorted_params.dat",
        "results/final/summary.tsv",
        "results/winner/winner.json",
        "results/winner/winning_net.dat",
        "results/figures/search_overview.png",
        "results/figures/learning_curves.png",
        "results/report/winner.html",
        "results/run_config.yaml",
    ):
        assert (workdir / path).stat().st_size > 0, path
    for trial in TRIALS:
        cv = read_json(workdir / f"results/search/cv/{trial}.json")
        assert cv["status"] == "ok" and len(cv["folds"]) == 2 and cv["threads"] == 1
        assert (workdir / f"benchmarks/search/cross_validate/{trial}.tsv").exists()
        log = (workdir / f"logs/search/cross_validate/{trial}.log").read_text()
        for fold in (1, 2):
            for epoch in (1, 2):
                assert f"fold {fold}/2 epoch {epoch}/2 " in log
    summary = pd.read_csv(workdir / "results/final/summary.tsv", sep="\t")
    best = pd.read_csv(workdir / "results/search/ranking.tsv", sep="\t")["trial"][0]
    assert sorted(summary["trial"]) == sorted(["ref_report_winner", best])
    assert summary["winner"].sum() == 1
    # two epochs on the real images, on the CPU, are deterministic: what they reach
    for trial in summary["trial"]:
        metrics = read_json(workdir / f"results/final/{trial}/metrics.json")
        for key in ("test_accuracy", "official_test_accuracy", "whole_dataset_accuracy"):
            if trial == best:  # the best of the search: over 90 % after two epochs
                assert 0.90 < metrics[key] < 0.97, (trial, key, metrics[key])
            else:  # the report's winner, lr 9.5e-6: slow to start, 70-80 % after two epochs
                assert 0.65 < metrics[key] < 0.85, (trial, key, metrics[key])


def test_the_saved_winner_reproduces_its_recorded_accuracies(tiny_run):
    workdir = tiny_run[0]
    winner = read_json(workdir / "results/winner/winner.json")
    module, checkpoint = load_model(workdir / "results/winner/winning_net.dat")
    assert checkpoint["trial"]["trial"] == winner["trial"]
    data, split = workdir / "results/data/mnist.npz", workdir / "results/data/split"
    parts = {
        "test_accuracy": load_part(data, split / "test_indices.npy"),
        "whole_dataset_accuracy": load_part(data),
        "official_test_accuracy": load_part(data, official_test=True),
    }
    for key, (X, y) in parts.items():
        assert evaluate(module, X, y)[1] == winner[key], key


def test_deeper_gradient_ascent_raises_the_activation_within_the_box(tiny_run):
    module, _ = load_model(tiny_run[0] / "results/winner/winning_net.dat")
    for layer in ("layer2", "output"):
        images, trace = figures.gradient_ascent(module, layer, [0, 1, 2], 200, 10.0, 0.5)
        assert images.min() >= 0 and images.max() <= 1
        reached = figures.activation(module, layer, torch.from_numpy(images))[range(3), [0, 1, 2]]
        np.testing.assert_allclose(reached.detach().numpy(), trace.max(axis=0), rtol=1e-5)
        assert (trace.max(axis=0) > trace[0]).all()


def test_after_a_complete_run_nothing_is_left_to_do(tiny_run):
    assert planned_jobs(*tiny_run) == {}


@pytest.mark.parametrize("mkl", ["AUTO,STRICT", ""])
def test_a_training_job_gives_the_same_bytes_with_one_or_two_threads(tiny_run, tmp_path, mkl):
    """With MKL's conditional numerical reproducibility (the package sets MKL_CBWR=AUTO,STRICT
    unless the environment sets it) 1 and 2 threads give the same network and metrics; with it
    off (MKL_CBWR="" in the environment) they differ: the test sees the mode. The retraining of
    the report's winner shape (784-532-195), two epochs."""
    from mnist_mlp.guard import comparable

    workdir, configfile = tiny_run
    target = "results/final/ref_report_winner"
    made = {}
    for threads in (1, 2):
        copy = tmp_path / f"threads{threads}"
        shutil.copytree(workdir / "results/data", copy / "results/data")
        result = subprocess.run(
            snakemake_command(
                copy, configfile, f"{target}/model.pt", "--set-threads", f"retrain={threads}"
            ),
            cwd=copy,
            capture_output=True,
            text=True,
            env=os.environ | {"MKL_CBWR": mkl},
        )
        assert result.returncode == 0, result.stderr[-2000:]
        metrics = read_json(copy / f"{target}/metrics.json")
        assert metrics.pop("threads") == threads
        metrics.pop("train_seconds")
        network = comparable(copy / f"{target}/model.pt")
        assert network["metrics"].pop("threads") == threads  # the checkpoint carries its metrics
        made[threads] = (metrics, network)
    if mkl == "AUTO,STRICT":
        assert made[1] == made[2]
    else:
        assert made[1][1] != made[2][1]  # other last bits in the weights


def test_raising_n_trials_cross_validates_only_the_new_trial(tiny_run, tmp_path):
    jobs = planned_jobs(*variant(tiny_run, tmp_path, {"search": {"n_trials": 3}}))
    assert jobs["cross_validate"] == 1 and jobs["sample_trials"] == 1
    assert set(jobs) - {"cross_validate", "sample_trials"} <= AFTER_RANKING | {"retrain"}
    assert "download_mnist" not in jobs and "split_train_test" not in jobs


def test_the_default_config_plans_the_full_search_download_first(tmp_path):
    shutil.copy(REPO / "config.yaml", tmp_path / "config.yaml")
    jobs = planned_jobs(tmp_path, tmp_path / "config.yaml")
    assert jobs["cross_validate"] == 150 and jobs["sample_trials"] == 1
    assert jobs["download_mnist"] == 1 and jobs["rank_trials"] == 1


def test_changing_a_final_value_plans_no_search_job(tiny_run, tmp_path):
    jobs = planned_jobs(*variant(tiny_run, tmp_path, {"final": {"epochs": 5}}))
    assert not {"sample_trials", "cross_validate", "download_mnist", "split_train_test"} & set(jobs)
    assert jobs["retrain"] == 2 and jobs["select_winner"] == 1  # the best and the reference


def test_a_new_top_k_member_is_the_only_retrain(tiny_run, tmp_path):
    jobs = planned_jobs(*variant(tiny_run, tmp_path, {"final": {"top_k": 2}}))
    assert jobs["retrain"] == 1
    assert not {"sample_trials", "cross_validate", "rank_trials"} & set(jobs)


def test_changing_a_search_bound_resamples_and_reruns_cv(tiny_run, tmp_path):
    narrower = {"search": {"space": {"lr": {"loguniform": [1e-3, 1e-1]}}}}
    jobs = planned_jobs(*variant(tiny_run, tmp_path, narrower))
    assert jobs["sample_trials"] == 1 and jobs["cross_validate"] == 2
    assert "download_mnist" not in jobs and "split_train_test" not in jobs


def test_changing_a_training_setting_reruns_cv_but_not_sampling(tiny_run, tmp_path):
    jobs = planned_jobs(*variant(tiny_run, tmp_path, {"search": {"patience": 3}}))
    assert jobs["cross_validate"] == 2 and "sample_trials" not in jobs


def test_changing_a_figure_setting_redraws_only_that_figure(tiny_run, tmp_path):
    jobs = planned_jobs(*variant(tiny_run, tmp_path, {"figures": {"ascent_steps": 50}}))
    assert jobs == {"plot_gradient_ascent": 1, "all": 1}


def test_how_the_config_writes_a_mapping_or_a_number_changes_nothing(tiny_run, tmp_path):
    workdir, configfile = tiny_run
    import yaml

    config = yaml.safe_load(configfile.read_text())
    space = config["search"]["space"]
    choices = space["optimizer"]["choice"]
    space["optimizer"] = {"choice": dict(reversed(list(choices.items())))}
    space["dropout"] = {"uniform": [0, 0.5]}  # 0 means 0.0
    space["lr"] = {"loguniform": ["1e-4", 0.1]}  # a string, as --config passes it
    space["Nh1"] = {"int": [51.0, 600]}  # 51.0 means 51
    reference = config["final"]["references"]["report_winner"]
    config["final"]["references"]["report_winner"] = {
        "L2": float(reference["L2"]),
        "lr": f"{reference['lr']:.2e}".replace("e-06", "e-6"),  # 9.51e-6, a string as --config
        **{key: reference[key] for key in ("optimizer", "dropout", "Nh2", "Nh1")},
    }
    config["search"]["max_epochs"] = float(config["search"]["max_epochs"])  # 2.0 means 2
    config["figures"]["ascent_step_size"] = int(config["figures"]["ascent_step_size"])  # 10
    rewritten = tmp_path / "rewritten.yaml"
    rewritten.write_text(yaml.safe_dump(config, sort_keys=False))
    assert planned_jobs(workdir, rewritten) == {}


def test_a_dataset_recreated_with_the_same_bytes_reruns_nothing(tiny_run):
    """The dataset file made again (newer, the same bytes): Snakemake compares its checksum
    (the default profile's max-checksum-file-size covers its 55 MB), so nothing reruns."""
    workdir, configfile = tiny_run
    dataset = workdir / "results/data/mnist.npz"
    times = dataset.stat()
    os.utime(dataset)  # what download_mnist leaves when it runs again
    try:
        assert planned_jobs(workdir, configfile) == {}
    finally:
        os.utime(dataset, ns=(times.st_atime_ns, times.st_mtime_ns))


def test_where_the_data_come_from_and_tracking_rerun_nothing(tiny_run, tmp_path):
    elsewhere = tmp_path / "mnist_elsewhere"  # the same MNIST files in another folder
    elsewhere.mkdir()
    for path in MNIST_DIR.iterdir():
        (elsewhere / path.name).symlink_to(path)
    assert planned_jobs(*variant(tiny_run, tmp_path, {"mnist_dir": str(elsewhere)})) == {}
    # tracking is an export of the results: switched on, it adds its export and retrains nothing
    tracked = {"tracking": {"backend": "tensorboard", "directory": "results/tb"}}
    assert planned_jobs(*variant(tiny_run, tmp_path, tracked)) == {"export_tracking": 1, "all": 1}


def test_the_device_value_is_a_param_what_auto_picks_is_not(tiny_run, tmp_path):
    jobs = planned_jobs(*variant(tiny_run, tmp_path, {"device": "auto"}))  # the run had cpu
    assert jobs["cross_validate"] == 2 and "sample_trials" not in jobs


def test_a_deleted_trial_result_is_noticed_and_recomputed(tiny_run, tmp_path):
    workdir, configfile = tiny_run
    result = workdir / "results/search/cv/t0001.json"
    kept = tmp_path / "t0001.json"
    shutil.copy2(result, kept)
    result.unlink()
    try:
        jobs = planned_jobs(workdir, configfile)
    finally:
        shutil.copy2(kept, result)
    assert jobs["cross_validate"] == 1 and jobs["rank_trials"] == 1
    assert "retrain" not in jobs


# --- reruns follow result versions, not code ----------------------------------------------


@pytest.fixture
def workflow_copy(tmp_path):
    """An editable copy of the workflow's code; the tiny run's results are planned against it
    (what reruns does not depend on where the code lies)."""
    (tmp_path / "code").mkdir()
    return copy_workflow(tmp_path / "code")


def _edit(path, old, new, count=1):
    source = path.read_text()
    assert old in source, old
    path.write_text(source.replace(old, new, count))


def test_a_copy_of_the_workflow_plans_nothing_new(tiny_run, workflow_copy):
    assert planned_jobs(*tiny_run, snakefile=workflow_copy) == {}


def test_touching_commenting_or_refactoring_code_reruns_nothing(tiny_run, workflow_copy):
    code = workflow_copy.parent / "workflow"
    script = code / "scripts" / "cross_validate.py"
    module = code / "mnist_mlp" / "training.py"
    original = script.read_bytes()
    for path in (script, module):
        os.utime(path)  # touched: newer than every output
    script.write_bytes(original)  # rewritten byte for byte
    _edit(
        script,
        "start_job(snakemake.log[0], snakemake.output)",
        "start_job(snakemake.log[0], snakemake.output)  # set up",
    )
    _edit(module, '"""The one training routine', '"""The single training routine')
    # a refactor: a helper no stage calls, and a function renamed wherever it is used
    module.write_text(module.read_text() + "\n\ndef unused_helper():\n    return 1\n")
    for path in (code / "mnist_mlp").glob("*.py"):
        if "configure_torch" in path.read_text():
            _edit(path, "configure_torch", "set_up_torch", count=-1)
    assert planned_jobs(*tiny_run, snakefile=workflow_copy) == {}


def _bump(versions, stage):
    number = RESULT_VERSIONS[stage]
    _edit(versions, f'"{stage}": {number},', f'"{stage}": {number + 1},')


def test_bumping_a_result_version_reruns_that_stage_and_what_follows(tiny_run, workflow_copy):
    versions = workflow_copy.parent / "workflow" / "mnist_mlp" / "versions.py"
    _bump(versions, "plot_gradient_ascent")
    assert planned_jobs(*tiny_run, snakefile=workflow_copy) == {"plot_gradient_ascent": 1, "all": 1}
    _bump(versions, "rank_trials")
    jobs = planned_jobs(*tiny_run, snakefile=workflow_copy)
    assert jobs["rank_trials"] == 1 and set(jobs) <= AFTER_RANKING
    assert "cross_validate" not in jobs and "retrain" not in jobs
    _bump(versions, "cross_validate")
    jobs = planned_jobs(*tiny_run, snakefile=workflow_copy)
    # the retrainings lie behind the ranking, a checkpoint that must run again first: a
    # dry-run cannot list them yet
    assert jobs["cross_validate"] == 2 and jobs["rank_trials"] == 1
    assert "download_mnist" not in jobs and "sample_trials" not in jobs
