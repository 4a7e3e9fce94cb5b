"""The search modes through Snakemake on the real MNIST (workflow tier): tiny runs with the TPE
sampler, with successive halving, and with both, each to a winner and a report."""

import dataclasses
import re

import pandas as pd
import pytest
from conftest import TINY, merged, planned_jobs, run_snakemake, seed_data, write_config

from mnist_mlp import publish, study, trials
from mnist_mlp.io import read_json
from mnist_mlp.progress import collect

pytestmark = pytest.mark.workflow

# Smaller than the tiny run: a few trials of 1-2 epochs, the best 2 retrained for 1 epoch.
MODES = {
    "tpe": {"sampler": "tpe", "n_trials": 5, "tpe": {"batch": 2, "startup_trials": 2}},
    "halving": {"n_trials": 4, "pruning": "halving", "halving": {"eta": 2, "min_epochs": 1}},
    "both": {
        "sampler": "tpe",
        "n_trials": 5,
        "pruning": "halving",
        "halving": {"eta": 2, "min_epochs": 1},
        "tpe": {"batch": 3, "startup_trials": 2},
    },
    # three rungs (1, 2 and 4 epochs per fold): a rung planned from the one before it
    "three_rungs": {
        "n_trials": 4,
        "max_epochs": 4,
        "pruning": "halving",
        "halving": {"eta": 2, "min_epochs": 1},
    },
}


def mode_run(name, mnist_dir, tiny_data, tmp_path_factory):
    workdir = tmp_path_factory.mktemp(name)
    search = {"folds": 2, "max_epochs": 2} | MODES[name]
    overrides = {"mnist_dir": str(mnist_dir), "search": search}
    overrides |= {"final": {"top_k": 2, "epochs": 1, "references": {}}}
    overrides |= {"figures": {"ascent_steps": 10}}
    configfile = write_config(workdir / "config.yaml", merged(TINY, overrides))
    seed_data(workdir, tiny_data)
    run_snakemake(workdir, configfile)
    run_snakemake(workdir, configfile, "--report", "results/report.html")
    return workdir, configfile


@pytest.fixture(scope="module")
def tpe_run(mnist_dir, tiny_data, tmp_path_factory):
    return mode_run("tpe", mnist_dir, tiny_data, tmp_path_factory)


@pytest.fixture(scope="module")
def halving_run(mnist_dir, tiny_data, tmp_path_factory):
    return mode_run("halving", mnist_dir, tiny_data, tmp_path_factory)


@pytest.fixture(scope="module")
def both_run(mnist_dir, tiny_data, tmp_path_factory):
    return mode_run("both", mnist_dir, tiny_data, tmp_path_factory)


def check_the_answer(workdir, n_trials):
    winner = read_json(workdir / "results/winner/winner.json")
    ranking = pd.read_csv(workdir / "results/search/ranking.tsv", sep="\t")
    assert len(ranking) == n_trials and winner["trial"] in set(ranking["trial"])
    assert winner["official_test_accuracy"] > 0.8  # one epoch on the real images
    report = (workdir / "results/report.html").read_text(errors="replace")
    assert winner["trial"] in report and "importance.png" in report
    assert planned_jobs(workdir, workdir / "config.yaml") == {}  # nothing left to do
    return ranking


def test_tpe_proposes_batches_after_the_random_startup(tpe_run):
    workdir, _ = tpe_run
    ranking = check_the_answer(workdir, 5)
    assert (ranking["status"] == "ok").all()
    table = pd.read_csv(workdir / "results/search/trials.tsv", sep="\t")
    assert table["trial"].tolist() == trials.trial_ids(5)
    random = trials.sample_trials(0, 5, trials.sampled_space(_space()))
    assert table.loc[:1, "Nh1"].tolist() == [random["t0000"]["Nh1"], random["t0001"]["Nh1"]]
    batches = [read_json(workdir / f"results/search/batches/batch{b}.json") for b in (1, 2)]
    # a whole batch is proposed even where n_trials ends inside it (t0005 is not trained)
    assert [sorted(b) for b in batches] == [["t0002", "t0003"], ["t0004", "t0005"]]
    proposed = {**batches[0], **batches[1]}
    assert any(proposed[t]["Nh1"] != random[t]["Nh1"] for t in proposed)  # TPE, not random
    for trial in proposed.values():
        assert 50 <= trial["Nh2"] < trial["Nh1"] < 600


def _space():
    from conftest import default_config

    return default_config()["search"]["space"]


def test_optuna_opens_the_study_of_a_tpe_run(tpe_run):
    import optuna

    workdir, _ = tpe_run
    loaded = optuna.load_study(
        study_name=study.STUDY_NAME, storage=f"sqlite:///{workdir / 'results/search/study.db'}"
    )
    ranking = pd.read_csv(workdir / "results/search/ranking.tsv", sep="\t")
    assert len(loaded.trials) == 5
    assert loaded.best_trial.user_attrs["trial"] == ranking["trial"].iloc[0]
    assert loaded.best_value == pytest.approx(ranking["mean_loss"].iloc[0], rel=1e-7)


def test_growing_n_trials_keeps_every_finished_tpe_batch(tpe_run, tmp_path):
    workdir, configfile = tpe_run
    grown = write_config(tmp_path / "grown.yaml", {"search": {"n_trials": 7}}, _load(configfile))
    jobs = planned_jobs(workdir, grown)
    # t0005 was proposed with batch 2 already: it trains; batch 3 (t0006) is proposed from
    # every earlier result, then trains: two CV jobs, the new trials', and no proposal again
    assert jobs["cross_validate"] == 2 and jobs["propose_trials"] == 1
    assert "download_mnist" not in jobs and "split_train_test" not in jobs


def _load(path):
    import yaml

    return yaml.safe_load(path.read_text())


def test_halving_prunes_and_its_survivors_equal_the_labs_protocol(halving_run):
    workdir, configfile = halving_run
    ranking = check_the_answer(workdir, 4)
    rungs = pd.read_csv(workdir / "results/search/rungs.tsv", sep="\t")
    assert rungs["rung"].max() == 1 and set(rungs["budget"]) == {1, 2}
    first = rungs[rungs["rung"] == 0]
    assert len(first) == 4 and (first["decision"] == "promoted").sum() == 2
    assert (ranking["status"] == "pruned").sum() == 2
    survivor = ranking["trial"].iloc[0]
    # the survivor's final result is the one the lab's protocol computes, bit for bit
    run_snakemake(workdir, configfile, f"results/search/cv/{survivor}.json")
    lab = read_json(workdir / f"results/search/cv/{survivor}.json")
    halved = read_json(workdir / f"results/search/halving/{survivor}/rung1.json")
    for result in (lab, halved):
        for fold in result["folds"]:
            fold.pop("seconds")
    assert {k: v for k, v in halved.items() if k not in ("rung", "budget")} == lab
    loaded = study.load(workdir / "results/search/study.db")
    assert [t.state.name for t in loaded.trials].count("PRUNED") == 2


def test_tpe_with_halving_runs_each_batch_as_a_bracket(both_run):
    workdir, _ = both_run
    ranking = check_the_answer(workdir, 5)
    rungs = pd.read_csv(workdir / "results/search/rungs.tsv", sep="\t")
    assert len(rungs[rungs["rung"] == 0]) == 5  # every trial starts, batch by batch
    assert (workdir / "results/search/halving/batch1/rung0.tsv").exists()
    assert set(ranking["status"]) <= {"ok", "pruned", "diverged"}
    assert (ranking["status"] == "pruned").sum() >= 1


def test_rungs_decided_again_are_planned_from_the_new_decisions(
    mnist_dir, tiny_data, tmp_path_factory
):
    """When the rungs are decided again (a new version of promote_trials, forced here), each
    rung waits for the rung before and reads its new decisions, not the table it replaces:
    the halving run restored at promote_trials 2 planned its third rung from the second
    rung's old table and left a promoted trial out of it."""
    workdir, configfile = mode_run("three_rungs", mnist_dir, tiny_data, tmp_path_factory)
    tables = [workdir / f"results/search/halving/batch0/rung{r}.tsv" for r in range(3)]
    decided = [pd.read_csv(table, sep="\t") for table in tables]
    assert [len(table) for table in decided] == [4, 2, 1]
    # the second rung's table as an older rule might have left it: the other trial promoted
    stale = decided[1].copy()
    stale["decision"] = stale["decision"].map({"promoted": "pruned", "pruned": "promoted"})
    stale.to_csv(tables[1], sep="\t", index=False)
    run_snakemake(workdir, configfile, "--forcerun", "promote_trials")
    again = [pd.read_csv(table, sep="\t") for table in tables]
    for table, before in zip(again, decided, strict=True):
        pd.testing.assert_frame_equal(table, before)
    assert planned_jobs(workdir, configfile) == {}


def test_a_halving_run_against_the_full_run_shows_each_rung_and_where_its_best_went(
    halving_run, tiny_run, tmp_path
):
    """``mnist-mlp run publish halving`` compares the run with the full run (here the tiny run
    stands in for it): rung by rung what was decided and what it cost, and where each of the
    reference's best trials ended."""
    workdir, _ = halving_run
    reference, _ = tiny_run
    text = publish.comparison(workdir, reference, tmp_path, top=2)
    # rung 0: 4 jobs of 1 epoch per fold, 2 promoted, 2 pruned; rung 1: the 2 left complete
    assert re.search(r"^\| 0 \| 1 \| 4 \| 2 \| 2 \| 0 \| 0 \| \d+\.\d\d \(\d+%\) \|$", text, re.M)
    assert re.search(r"^\| 1 \| 2 \| 2 \| 0 \| 0 \| 2 \| 0 \| \d+\.\d\d \(\d+%\) \|$", text, re.M)
    mine = pd.read_csv(workdir / "results/search/ranking.tsv", sep="\t").set_index("trial")
    theirs = pd.read_csv(reference / "results/search/ranking.tsv", sep="\t").head(2)
    for row in theirs.to_dict("records"):
        here = mine.loc[row["trial"]]
        fate = (
            f"rank {here['rank']}, CV loss {here['mean_loss']:.4f}"
            if here["status"] == "ok"
            else f"pruned at rung 0 (1 epochs), score {here['score']:.4f}"
        )
        cells = [row["rank"], row["trial"], f"{row['lr']:.2e}", f"{row['mean_loss']:.4f}", fate]
        assert "| " + " | ".join(map(str, cells)) + " |" in text


def test_a_tpe_run_against_the_full_run_at_equal_budget(tpe_run, tiny_run, tmp_path):
    """``mnist-mlp run publish tpe``: the best CV loss after n trials of each search, at equal
    budget, as a table and a figure (the tiny run, of the random sampler, stands in for the
    full run)."""
    workdir, _ = tpe_run
    reference, _ = tiny_run
    text = publish.comparison(workdir, reference, tmp_path, top=2)
    mine = pd.read_csv(workdir / "results/search/ranking.tsv", sep="\t")
    assert "this run's 5 trials against the full run's first 5" in text
    assert "in this run's best" not in text  # its trial ids name other trials than the reference's
    best = mine.loc[mine["mean_loss"].idxmin()]
    assert f"| 5 | {best['mean_loss']:.4f} ({best['trial']}) |" in text
    assert "| official accuracy, their mean |" in text
    assert (tmp_path / "best_so_far.png").stat().st_size > 10_000
    # its search done, its retrainings not yet: the networks on disk may be a restored state's
    retraining = dataclasses.replace(collect(workdir), stage="final")
    text = publish.comparison(workdir, reference, tmp_path, top=2, progress=retraining)
    assert f"| 5 | {best['mean_loss']:.4f} ({best['trial']}) |" in text
    assert "official accuracy" not in text
