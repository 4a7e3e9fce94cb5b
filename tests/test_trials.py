"""The space as data, the random sampler and the trial ids (fast tier)."""

import numpy as np
import pytest
from conftest import REPO, default_config
from scipy import stats

from mnist_mlp import trials
from mnist_mlp.trials import (
    is_reference,
    reference_trials,
    sample_trial,
    sample_trials,
    sampled_space,
    trial_id,
    trial_ids,
    trial_index,
)

DECLARED = default_config()["search"]["space"]
SPACE = sampled_space(DECLARED)
N_DRAWS = 20_000


@pytest.fixture(scope="module")
def draws():
    return list(sample_trials(0, N_DRAWS, SPACE).values())


def test_draws_respect_the_bounds(draws):
    nh1 = np.array([d["Nh1"] for d in draws])
    nh2 = np.array([d["Nh2"] for d in draws])
    assert nh1.min() >= 51 and nh1.max() <= 599  # randint's upper bound is exclusive
    assert np.all(nh2 >= 50) and np.all(nh2 < nh1)
    dropout = np.array([d["dropout"] for d in draws])
    assert dropout.min() >= 0.0 and dropout.max() < 0.5
    l2 = np.log10([d["L2"] for d in draws])
    assert l2.min() >= -6 and l2.max() < -2
    # the whole range is reached, not just a corner of it
    assert nh1.min() < 60 and nh1.max() > 590
    assert all(isinstance(d["Nh1"], int) and isinstance(d["lr"], float) for d in draws)


def test_widths_are_uniform_integers(draws):
    nh1 = np.array([d["Nh1"] for d in draws])
    counts = np.bincount(nh1 - 51)
    assert len(counts) == 549 and counts.min() > 0  # 51..599 all reachable
    assert stats.chisquare(counts).pvalue > 1e-3
    # Nh2 given Nh1 is uniform on [50, Nh1): its relative position is uniform on [0, 1)
    position = [(d["Nh2"] - 50) / (d["Nh1"] - 50) for d in draws if d["Nh1"] > 150]
    assert stats.kstest(position, "uniform").pvalue > 1e-3


def test_optimizer_shares_match_the_probabilities(draws):
    adam = np.mean([d["optimizer"] == "Adam" for d in draws])
    assert {d["optimizer"] for d in draws} == {"Adam", "RMSprop"}
    sigma = np.sqrt(0.8 * 0.2 / N_DRAWS)
    assert abs(adam - 0.8) < 4 * sigma


def test_log10_lr_and_dropout_are_uniform_on_their_ranges(draws):
    log_lr = np.log10([d["lr"] for d in draws])
    assert log_lr.min() >= -4 and log_lr.max() < -1
    assert stats.kstest(log_lr, stats.uniform(loc=-4, scale=3).cdf).pvalue > 1e-3
    dropout = [d["dropout"] for d in draws]
    assert stats.kstest(dropout, stats.uniform(loc=0, scale=0.5).cdf).pvalue > 1e-3


def test_each_trial_has_its_own_stream():
    first = sample_trials(0, 150, SPACE)
    again = sample_trials(0, 160, SPACE)
    assert {tid: again[tid] for tid in first} == first  # raising n_trials keeps the first 150
    other_seed = sample_trials(1, 150, SPACE)
    assert all(first[t] != other_seed[t] for t in first)
    assert len({(d["Nh1"], d["lr"]) for d in first.values()}) == 150


def test_the_draws_are_pinned():
    """The sampler uses only Random.random(), whose sequence Python guarantees: these values
    must never change, or published results stop being reproducible."""
    assert sample_trial(0, 0, SPACE) == {
        "trial": "t0000",
        "Nh1": 239,
        "Nh2": 180,
        "dropout": 0.1984593175323951,
        "optimizer": "RMSprop",
        "lr": 0.0050631722689503675,
        "L2": 0.0015946076860708983,
    }


def with_space(**changes):
    return sampled_space(DECLARED | changes)


def test_changing_one_range_leaves_the_other_hyperparameters():
    narrower = with_space(lr={"loguniform": [1e-3, 1e-2]})
    for index in range(50):
        before, after = sample_trial(0, index, SPACE), sample_trial(0, index, narrower)
        assert {k: v for k, v in before.items() if k != "lr"} == {
            k: v for k, v in after.items() if k != "lr"
        }


def test_the_order_or_the_form_of_the_config_values_does_not_matter():
    """Choices in any order, numbers written as strings or as ints: the same space, the same
    param (repr) for Snakemake, the same trials."""
    written = with_space(
        optimizer={"choice": {"RMSprop": "0.2", "Adam": 0.8}},
        lr={"loguniform": ["1e-4", 0.1]},
        dropout={"uniform": [0, "0.5"]},
        Nh1={"int": [51.0, "600"]},
    )
    assert written == SPACE and repr(written) == repr(SPACE)
    assert sample_trials(0, 50, written) == sample_trials(0, 50, SPACE)


def test_an_optimizer_with_probability_zero_is_never_drawn():
    space = with_space(optimizer={"choice": {"Adam": 0.0, "RMSprop": 1.0, "SGD": 0.0}})
    drawn = {d["optimizer"] for d in sample_trials(3, 2000, space).values()}
    assert drawn == {"RMSprop"}


def test_the_default_space_draws_the_published_full_runs_trials(tmp_path):
    """The lab's sampler, now from a declared space: seed 0 gives docs/full_run/trials.tsv byte
    for byte, so the published run stays the default config's."""
    path = tmp_path / "trials.tsv"
    trials.write_trials_table(path, sample_trials(0, 150, SPACE))
    assert path.read_bytes() == (REPO / "docs/full_run/trials.tsv").read_bytes()


def test_fixed_values_and_searched_extras():
    assert trials.fixed_settings(DECLARED) == {"batch_size": 128}
    assert "batch_size" not in SPACE  # fixed: a setting of every job, not part of a trial
    searched = with_space(batch_size={"choice": [64, 128, 256]}, dropout=0.25)
    drawn = sample_trials(0, 400, searched)
    assert {d["batch_size"] for d in drawn.values()} == {64, 128, 256}
    assert {d["dropout"] for d in drawn.values()} == {0.25}
    # a searched extra draws from a stream of its own: the lab's six are unchanged
    for tid, trial in sample_trials(0, 50, SPACE).items():
        assert {k: drawn[tid][k] for k in trial if k != "dropout"} == {
            k: v for k, v in trial.items() if k != "dropout"
        }
    assert list(drawn["t0000"]) == [
        "trial",
        "Nh1",
        "Nh2",
        "dropout",
        "optimizer",
        "lr",
        "L2",
        "batch_size",
    ]


def test_a_bound_may_name_an_earlier_integer_parameter():
    space = with_space(Nh1={"int": [100, 200]}, Nh2={"int": [10, "Nh1"]})
    for trial in sample_trials(1, 500, space).values():
        assert 100 <= trial["Nh1"] < 200 and 10 <= trial["Nh2"] < trial["Nh1"]
    bad = DECLARED | {"Nh1": {"int": [51, "Nh2"]}}
    assert any("drawn before" in line for line in trials.space_problems(bad))


def test_the_unit_cube_maps_back_and_forth():
    for trial in sample_trials(0, 200, SPACE).values():
        point = trials.uniforms_of(trial, SPACE)
        assert all(0 <= u < 1 for u in point.values())
        assert trials.trial_from_uniforms(trial_index(trial["trial"]), SPACE, point) == (
            pytest.approx(trial)
        )


def test_old_keys_are_translated_for_the_message_and_the_records():
    old = {"Nh1": [50, 600], "dropout": [0.0, 0.5], "log10_lr": [-4, -1], "log10_L2": [-6, -2]}
    old["optimizers"] = {"Adam": 0.8, "RMSprop": 0.2}
    assert trials.space_from_old(old) == SPACE
    lines = trials.old_key_problems(old | {"batch_size": 128})
    assert len(lines) == 6
    assert "search.log10_lr: replaced by search.space" in lines[2]
    assert "lr: {loguniform: [0.0001, 0.1]}" in lines[2]


def test_references_are_canonical_whatever_the_config_writes():
    written = {"Nh2": 195, "lr": 1e-5, "L2": 0, "Nh1": 532, "optimizer": "Adam", "dropout": 0}
    trials = reference_trials({"b": written, "a": written | {"lr": 0.00001}})
    assert list(trials) == ["ref_a", "ref_b"]
    assert repr(trials["ref_a"]) == repr(trials["ref_b"] | {"trial": "ref_a"})
    assert trials["ref_a"]["dropout"] == 0.0 and isinstance(trials["ref_a"]["L2"], float)
    assert all(is_reference(t) for t in trials) and not is_reference("t0001")


def test_trial_ids_round_trip():
    assert trial_ids(3) == ["t0000", "t0001", "t0002"]
    assert trial_index(trial_id(149)) == 149
    with pytest.raises(ValueError, match="not a trial id"):
        trial_index("t12")
    assert len(trial_id(9999)) == 5
