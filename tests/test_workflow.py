"""The search stage through Snakemake on the real MNIST, and what a change makes it rerun."""

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from conftest import REPO, planned_jobs, variant

from mnist_mlp.io import read_json

pytestmark = pytest.mark.slow

SEARCH_OUTPUTS = [
    "results/data/mnist.npz",
    "results/data/split/train_indices.npy",
    "results/data/split/test_indices.npy",
    "results/search/configs.tsv",
    "results/search/ranking.tsv",
    "results/search/sorted_scores.dat",
    "results/search/sorted_params.dat",
    "results/search/search_overview.png",
]


def test_tiny_run_produces_every_search_artifact(tiny_run):
    workdir, _ = tiny_run
    for path in SEARCH_OUTPUTS:
        assert (workdir / path).stat().st_size > 0, path
    for cid in ("c0000", "c0001", "c0002"):
        assert read_json(workdir / f"results/search/configs/{cid}.json")["config_id"] == cid
        cv = read_json(workdir / f"results/search/cv/{cid}.json")
        assert cv["status"] == "ok" and len(cv["folds"]) == 2
        assert cv["threads"] == 1
        assert (workdir / f"benchmarks/search/cross_validate/{cid}.tsv").exists()
        epoch_lines = [
            line
            for line in (workdir / f"logs/search/cross_validate/{cid}.log").read_text().splitlines()
            if " epoch " in line
        ]
        assert len(epoch_lines) == 4  # 2 folds x 2 epochs, one line each


def test_ranking_is_sorted_and_matches_the_cv_results(tiny_run):
    workdir, _ = tiny_run
    ranking = pd.read_csv(workdir / "results/search/ranking.tsv", sep="\t")
    assert ranking["rank"].tolist() == [1, 2, 3]
    assert ranking["mean_loss"].is_monotonic_increasing
    for row in ranking.itertuples():
        cv = read_json(workdir / f"results/search/cv/{row.config_id}.json")
        assert row.mean_loss == pytest.approx(cv["mean_loss"], rel=1e-7)
        assert row.Nh1 == cv["params"]["Nh1"] and row.optimizer == cv["params"]["optimizer"]
    scores = np.loadtxt(workdir / "results/search/sorted_scores.dat")
    assert scores == pytest.approx(ranking["mean_loss"].to_numpy(), rel=1e-7)
    params = [json.loads(line) for line in open(workdir / "results/search/sorted_params.dat")]
    assert [p["config_id"] for p in params] == ranking["config_id"].tolist()


def test_search_plot_is_a_real_picture(tiny_run):
    import matplotlib.image

    image = matplotlib.image.imread(tiny_run[0] / "results/search/search_overview.png")
    assert image.shape[0] > 300 and image.shape[1] > 800
    assert image[..., :3].std() > 0.05  # not blank


def test_after_a_complete_run_nothing_is_left_to_do(tiny_run):
    assert planned_jobs(*tiny_run) == {}


def test_raising_n_configs_plans_only_the_new_config(tiny_run, tmp_path):
    jobs = planned_jobs(*variant(tiny_run, tmp_path, {"search": {"n_configs": 4}}))
    upstream = {"download_mnist", "split_train_test", "sample_config", "cross_validate"}
    assert {rule: count for rule, count in jobs.items() if rule in upstream} == {
        "sample_config": 1,
        "cross_validate": 1,
    }
    # the rank and what follows it; retraining is decided once the new ranking exists
    assert set(jobs) - upstream <= {
        "tabulate_configs",
        "rank_configs",
        "select_winner",
        "plot_receptive_fields",
        "plot_gradient_ascent",
        "plot_learning_curves",
        "all",
    }
    assert jobs["rank_configs"] == 1


def test_changing_a_final_value_plans_no_search_job(tiny_run, tmp_path):
    jobs = planned_jobs(*variant(tiny_run, tmp_path, {"final": {"top_k": 1, "epochs": 5}}))
    assert "sample_config" not in jobs and "cross_validate" not in jobs
    assert "download_mnist" not in jobs and "split_train_test" not in jobs
    assert jobs["retrain"] >= 1 and jobs["select_winner"] == 1


def test_changing_a_search_bound_resamples_and_reruns_cv(tiny_run, tmp_path):
    jobs = planned_jobs(*variant(tiny_run, tmp_path, {"search": {"log10_lr": [-3, -1]}}))
    assert jobs["sample_config"] == 3 and jobs["cross_validate"] == 3
    assert "download_mnist" not in jobs and "split_train_test" not in jobs


def test_changing_a_training_setting_reruns_cv_but_not_sampling(tiny_run, tmp_path):
    jobs = planned_jobs(*variant(tiny_run, tmp_path, {"search": {"patience": 3}}))
    assert jobs["cross_validate"] == 3 and "sample_config" not in jobs


def test_default_config_plans_the_full_search(tmp_path):
    shutil.copy(REPO / "config.yaml", tmp_path / "config.yaml")
    jobs = planned_jobs(tmp_path, tmp_path / "config.yaml")
    assert jobs["sample_config"] == 150 and jobs["cross_validate"] == 150
    assert jobs["download_mnist"] == 1 and jobs["rank_configs"] == 1
