"""Successive halving, the TPE sampler and the study, in-process on synthetic data (fast tier)."""

import io
import json
import math

import numpy as np
import pytest
import torch
from conftest import Paths, default_config

from mnist_mlp import data, halving, ranking, search, study, tpe, training, trials

SPACE = trials.sampled_space(default_config()["search"]["space"])
SETTINGS = {"seed": 0, "device": "cpu", "folds": 2, "patience": 1, "max_epochs": 9}
SETTINGS |= {"batch_size": 64}


def test_rung_budgets_are_geometric_up_to_the_maximum():
    assert halving.budgets(9, 3, 100) == [9, 27, 81, 100]
    assert halving.budgets(10, 3, 90) == [10, 30, 90]
    assert halving.budgets(1, 2, 4) == [1, 2, 4]


def result(trial, status="running", score=None, loss=None):
    return {
        "trial": trial,
        "status": status,
        "score": score,
        "mean_loss": loss,
        "rung": 0,
        "budget": 9,
        "mean_epochs": 9.0,
    }


def decisions(results, eta=3):
    return {row["trial"]: row["decision"] for row in halving.decide(results, eta, last=False)}


def test_a_rung_promotes_those_still_training_among_its_best_third():
    results = [result(f"t000{i}", score=s) for i, s in enumerate([0.5, 0.2, 0.9, 0.3, 0.4])]
    results += [result("t0005", "ok", loss=0.1), result("t0006", "diverged")]
    assert decisions(results) == {
        "t0000": "pruned",
        "t0001": "promoted",
        "t0002": "pruned",
        "t0003": "promoted",  # the best ceil(7 / 3) = 3: t0005, t0001, t0003
        "t0004": "pruned",
        "t0005": "complete",  # stopped early: leaves the race with its CV result
        "t0006": "diverged",
    }
    with pytest.raises(ValueError, match="last rung left trials running"):
        halving.decide(results, 3, last=True)


def test_a_trial_that_beats_those_stopped_early_at_its_rung_goes_on():
    """The halving run's third rung (81 epochs): 14 of 16 trials stopped early there, 2 still
    train. The second best of the 16 goes on: ranked among the 2 still training alone
    (ceil(2 / 3) = 1 goes on), it was pruned, then ranked after 13 trials that scored worse."""
    results = [result(f"t00{i:02}", "ok", loss=0.078 + 0.002 * i) for i in range(14)]
    results += [result("t0098", score=0.0721), result("t0099", score=0.0725)]
    rows = decisions(results)
    assert rows["t0098"] == rows["t0099"] == "promoted"
    # the same trial behind a sixth of the rung that stopped early: the rung's best third
    # (ceil(16 / 3) = 6) is complete, nothing goes on
    results[-1] = result("t0099", score=0.0895)
    results[-2] = result("t0098", score=0.0890)
    assert set(decisions(results).values()) == {"complete", "pruned"}


@pytest.fixture(scope="module")
def train_indices(synthetic_npz, tmp_path_factory):
    path = tmp_path_factory.mktemp("split") / "train.npy"
    split = data.stratified_split(data.load_mnist(synthetic_npz)["train_labels"], 0.2, 0)
    np.save(path, split[0])
    return path


@pytest.fixture(scope="module")
def part(synthetic_npz, train_indices):
    torch.set_num_threads(1)
    return data.load_part(synthetic_npz, train_indices)


def without_times(value):
    return json.loads(json.dumps(value).replace("NaN", "null"), object_hook=_drop_seconds)


def _drop_seconds(mapping):
    mapping.pop("seconds", None)
    return mapping


# one that stops early, one that diverges
@pytest.mark.parametrize(("optimizer", "lr"), [("Adam", 2e-2), ("SGD", 30.0)])
def test_a_trial_trained_rung_by_rung_ends_exactly_as_one_trained_at_once(part, optimizer, lr):
    """The saved state (weights, optimizer, early-stopping count, history, random state) makes
    a paused fit go on as if it had never stopped: the same bits."""
    X, y = part
    trial = {"trial": "t0007", "Nh1": 40, "Nh2": 20, "dropout": 0.2, "optimizer": optimizer}
    trial |= {"lr": lr, "L2": 1e-4}
    settings = training.TrainingSettings.from_params(SETTINGS, "cpu")
    whole, whole_history, states = training.cross_validate_trial(trial, settings, X, y, 2)
    assert states is None
    states, scores = None, []
    for budget in halving.budgets(1, 2, 9):
        if states is not None:  # through a file, as between two jobs
            buffer = io.BytesIO()
            torch.save({"folds": states}, buffer)
            buffer.seek(0)
            states = torch.load(buffer, weights_only=True)["folds"]
        rung, history, states = training.cross_validate_trial(
            trial, settings, X, y, 2, until=budget, resume=states
        )
        if states is None:
            break
        scores.append(rung["score"])
    assert without_times(rung) == without_times(whole)
    assert without_times(history) == without_times(whole_history)
    if lr == 30.0:
        assert whole["status"] == "diverged" and len(whole["folds"]) == 1
    else:
        assert whole["status"] == "ok" and scores and all(math.isfinite(s) for s in scores)
        assert any(fold["epochs"] < 9 for fold in whole["folds"])  # early stopping fired


def test_the_rung_stage_writes_a_result_a_history_and_a_state(
    synthetic_npz, train_indices, tmp_path
):
    trial = trials.sample_trial(0, 3, SPACE)
    folder = tmp_path / trial["trial"]  # as the layout names them: halving/<trial>/rung<r>.*
    first = Paths(
        result=folder / "rung0.json", history=folder / "rung0.tsv", state=folder / "rung0.pt"
    )
    rung = search.train_rung_stage(
        synthetic_npz, train_indices, first, trial, SETTINGS, 0, 2, threads=1
    )
    assert rung["status"] == "running" and rung["rung"] == 0 and rung["budget"] == 2
    assert [fold["epochs"] for fold in rung["folds"]] == [2, 2]
    second = Paths(
        result=folder / "rung1.json", history=folder / "rung1.tsv", state=folder / "rung1.pt"
    )
    done = search.train_rung_stage(
        synthetic_npz, train_indices, second, trial, SETTINGS, 1, 9, 1, first.state
    )
    assert done["status"] in ("ok", "diverged") and "mean_loss" in done
    table = search.promote_trials_stage([second.result], tmp_path / "decisions.tsv", 3, last=True)
    assert table[0]["decision"] in ("complete", "diverged")


def cv_results(n, seed=0):
    """Results of n random trials with a loss that grows with lr away from 1e-3 (a valley
    TPE should find)."""
    found = []
    for trial in trials.sample_trials(seed, n, SPACE).values():
        loss = 0.05 + abs(math.log10(trial["lr"]) + 3) ** 2 / 10
        params = {k: trial[k] for k in trials.hyperparameters_of(trial)}
        found.append(
            {
                "trial": trial["trial"],
                "params": params,
                "status": "ok",
                "mean_loss": loss,
                "std_loss": 0.01,
                "mean_accuracy": 0.9,
                "mean_epochs": 10.0,
                "folds": [{"seconds": 5.0}],
            }
        )
    return found


def test_tpe_proposes_reproducible_trials_inside_the_space_near_the_best():
    results = cv_results(20)
    first = tpe.propose(0, 1, 20, 10, SPACE, results)
    assert list(first) == trials.trial_ids(30, start=20)
    assert tpe.propose(0, 1, 20, 10, SPACE, results) == first  # the same batch again
    assert tpe.propose(0, 2, 20, 10, SPACE, results) != first  # another batch, another seed
    for trial in first.values():
        assert 51 <= trial["Nh1"] < 600 and 50 <= trial["Nh2"] < trial["Nh1"]
        assert 1e-4 <= trial["lr"] < 1e-1 and trial["optimizer"] in ("Adam", "RMSprop")
    # the valley at lr 1e-3: TPE's proposals are closer to it than random draws
    proposed = np.median([abs(math.log10(t["lr"]) + 3) for t in first.values()])
    drawn = np.median([abs(math.log10(r["params"]["lr"]) + 3) for r in cv_results(200, 1)])
    assert proposed < drawn
    # a diverged or a pruned trial is told too
    results[0] |= {"status": "diverged", "mean_loss": None}
    results[1] |= {"status": "pruned", "rung_scores": {"9": 0.4}}
    assert len(tpe.propose(0, 1, 20, 3, SPACE, results)) == 3


def test_the_study_holds_every_trial_and_importance_finds_the_lr(tmp_path):
    results = cv_results(40)
    results[3] = results[3] | {"status": "diverged", "mean_loss": None}
    path = tmp_path / "study.db"
    study.export_study(results, None, SPACE, path)
    loaded = study.load(path)  # optuna.load_study, as a user does
    assert len(loaded.trials) == 40
    states = [t.state.name for t in loaded.trials]
    assert states.count("COMPLETE") == 39 and states[3] == "FAIL"
    best = min((r for r in results if r["status"] == "ok"), key=lambda r: r["mean_loss"])
    assert loaded.best_trial.user_attrs["trial"] == best["trial"]
    assert loaded.best_value == pytest.approx(best["mean_loss"])
    assert loaded.best_trial.params["lr"] == pytest.approx(best["params"]["lr"])
    importance = study.importances(loaded)
    assert set(importance) == {"Nh1", "Nh2", "optimizer", "dropout", "lr", "L2"}
    assert max(importance, key=importance.get) == "lr" and importance["lr"] > 0.5
    assert sum(importance.values()) == pytest.approx(1.0)


def test_pruned_trials_carry_their_rung_scores_in_the_study(tmp_path):
    import pandas as pd

    results = cv_results(3)
    results[0] = results[0] | {"status": "running", "score": 0.7, "rung": 0, "budget": 9}
    rungs = pd.DataFrame(
        [
            {"trial": "t0000", "rung": 0, "budget": 9, "score": 0.7, "decision": "pruned"},
            {"trial": "t0001", "rung": 0, "budget": 9, "score": 0.2, "decision": "promoted"},
        ]
    )
    study.export_study(results, rungs, SPACE, tmp_path / "study.db")
    loaded = study.load(tmp_path / "study.db")
    assert loaded.trials[0].state.name == "PRUNED"
    assert loaded.trials[0].intermediate_values == {9: 0.7}
    assert loaded.trials[1].intermediate_values == {9: 0.2}
    table = ranking.build_ranking(
        [r | {"rung": 1, "budget": 27} for r in results[1:]] + [results[0]]
    )
    assert table["status"].tolist() == ["ok", "ok", "pruned"]
    assert table["trial"].iloc[-1] == "t0000" and table["score"].iloc[-1] == 0.7


def test_the_importance_stage_writes_its_table_and_two_figures(tmp_path):
    import matplotlib.image

    results = cv_results(30)
    study.export_study(results, None, SPACE, tmp_path / "study.db")
    table = ranking.build_ranking(results)
    table.to_csv(tmp_path / "ranking.tsv", sep="\t", index=False)
    outputs = Paths(
        table=tmp_path / "importance.tsv",
        importance=tmp_path / "importance.png",
        parallel=tmp_path / "parallel.png",
    )
    found = study.plot_importance_stage(
        tmp_path / "study.db", tmp_path / "ranking.tsv", SPACE, 5, outputs
    )
    assert outputs.table.read_text().splitlines()[1].startswith("lr\t")
    assert list(found)[0] == "lr"
    for name in ("importance", "parallel"):
        image = matplotlib.image.imread(outputs[name])
        assert image[..., :3].std() > 0.05


def test_the_parallel_coordinates_mark_each_power_of_ten_on_log_axes():
    # lr over 10**U(-4, -1): the ends and the decades between
    ticks = study._ticks(-4.0, -1.0, logarithmic=True)
    assert [label for _, label in ticks] == ["0.0001", "0.001", "0.01", "0.1"]
    assert [position for position, _ in ticks] == pytest.approx([0, 1 / 3, 2 / 3, 1])
    linear = study._ticks(50.0, 600.0, logarithmic=False)
    assert [label for _, label in linear] == ["50", "325", "600"]


def test_where_the_full_runs_best_went_names_rank_rung_and_trials_not_drawn():
    """``publish.fates_table``: each of the reference's best by its rank in the halving run,
    the rung that pruned it, the rung where it diverged, or "not drawn" where the same id holds
    other hyper-parameters (another sampler)."""
    from mnist_mlp import publish

    halving_keys = ("rung", "budget", "score")
    params = {"Nh1": 100, "Nh2": 50, "dropout": 0.1, "optimizer": "Adam", "L2": 1e-5}

    def result(trial, lr, status, rung, score=None, loss=None):
        return {
            "trial": trial,
            "params": params | {"lr": lr},
            "status": status,
            "mean_loss": loss,
            "std_loss": 0.0 if loss else None,
            "mean_accuracy": 0.9 if loss else None,
            "mean_epochs": 9.0,
            "rung": rung,
            "budget": (9, 27)[rung],
            "score": score,
        }

    halved = ranking.build_ranking(
        [
            result("t0000", 1e-3, "ok", 1, loss=0.08),
            result("t0001", 1e-4, "running", 0, score=0.31),  # pruned at rung 0
            result("t0002", 1e-1, "diverged", 0),
            result("t0003", 5e-3, "ok", 1, loss=0.07),  # another lr: another trial
        ]
    )
    lab = [("t0000", 1e-3, 0.09), ("t0001", 1e-4, 0.05), ("t0002", 1e-1, 0.20)]
    lab.append(("t0003", 2e-3, 0.06))
    reference = ranking.build_ranking(  # the lab's protocol: no rungs
        [
            {k: v for k, v in result(t, lr, "ok", 0, loss=loss).items() if k not in halving_keys}
            for t, lr, loss in lab
        ]
    )
    text = publish.fates_table(halved, reference, top=4)
    assert "| 1 | t0001 | 1.00e-04 | 0.0500 | pruned at rung 0 (9 epochs), score 0.3100 |" in text
    assert "| 2 | t0003 | 2.00e-03 | 0.0600 | not drawn |" in text
    assert "| 3 | t0000 | 1.00e-03 | 0.0900 | rank 2, CV loss 0.0800 |" in text
    assert "| 4 | t0002 | 1.00e-01 | 0.2000 | diverged at rung 0 (9 epochs) |" in text


def test_tpe_against_the_full_runs_first_trials_at_equal_budget():
    """``publish.equal_budget_table``: the best CV loss after n trials of each search, the
    reference cut to this run's number of trials, and the top k by CV of each retrained (the
    reference's from its summary, its winner by the lab's rule), or said missing."""
    import pandas as pd

    from mnist_mlp import publish

    def ranked(losses):
        trials_ = [f"t{i:04d}" for i in range(len(losses))]
        return pd.DataFrame({"trial": trials_, "mean_loss": losses}).sort_values("mean_loss")

    def summary(rows):  # (trial, cv_loss, test-part accuracy, official accuracy)
        table = pd.DataFrame(rows, columns=["trial", "cv_loss", "test_accuracy", "official"])
        table = table.rename(columns={"official": "official_test_accuracy"})
        return table.assign(reference=False, status="ok")

    tpe_ranking = ranked([0.5, 0.4, 0.3, float("nan"), 0.1])  # t0003 diverged
    random = ranked([0.5, 0.4, 0.45, 0.2, 0.35, 0.05, 0.01])  # t0005, t0006: beyond 5 trials
    text = publish.equal_budget_table(tpe_ranking, random, step=2)
    assert "this run's 5 trials against the full run's first 5" in text
    assert "| 2 | 0.4000 (t0001) | 0.4000 (t0001) |" in text
    assert "| 4 | 0.3000 (t0002) | 0.2000 (t0003) |" in text
    assert "| 5 | 0.1000 (t0004) | 0.2000 (t0003) |" in text
    assert "retrained" not in text  # no summaries yet: no answer

    ours = summary([("t0004", 0.1, 0.97, 0.96), ("t0002", 0.3, 0.98, 0.95)])
    # the reference retrained its first 5 trials' top 2 (t0003, t0004) and others
    theirs = summary(
        [("t0003", 0.2, 0.96, 0.97), ("t0004", 0.35, 0.99, 0.94), ("t0006", 0.01, 1.0, 1.0)]
    )
    text = publish.equal_budget_table(tpe_ranking, random, (ours, theirs), step=2)
    means = "| official accuracy, their mean | 95.50% (t0004, t0002) | 95.50% (t0003, t0004) |"
    assert means in text
    assert "| their winner (best on the test part), official accuracy | t0002, 95.00% | " in text
    assert "| t0004, 94.00% |" in text  # the reference's: t0004, best on its test part
    partial = summary([("t0003", 0.2, 0.96, 0.97)])
    text = publish.equal_budget_table(tpe_ranking, random, (ours, partial), step=2)
    assert "not all retrained there (t0003, t0004)" in text
