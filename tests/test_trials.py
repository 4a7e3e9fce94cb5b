"""The space as data, the random sampler and the trial ids (fast tier)."""

import numpy as np
import pytest
from conftest import LAB_PARAMETERS, REPO, default_config
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
        *LAB_PARAMETERS,
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


def test_ids_from_t1000_up_and_trials_added_later():
    """Raising n_trials samples only the new trials (``start``), and they are the trials a
    full sampling gives; ids of four digits read back whatever their digits."""
    assert trial_index("t1234") == 1234 and trial_index("t0149") == 149
    assert trial_ids(5, start=3) == ["t0003", "t0004"]
    added = sample_trials(0, 5, SPACE, start=3)
    assert list(added) == ["t0003", "t0004"]
    assert added == {
        tid: trial for tid, trial in sample_trials(0, 5, SPACE).items() if tid in added
    }


def test_integer_parameters_stay_integers_and_the_others_floats():
    """What the config writes (2.0 for 2, 0 for 0.0, numbers as strings) reaches a trial as
    the type the training takes: the trials table and Snakemake's params show 128, not 128.0,
    and 0.0, not 0."""
    space = with_space(Nh1=100, dropout=0.0, lr=1.0, batch_size={"choice": [64.0, "128"]})
    trial = sample_trial(0, 0, space)
    assert repr({k: trial[k] for k in ("Nh1", "dropout", "lr")}) == (
        "{'Nh1': 100, 'dropout': 0.0, 'lr': 1.0}"
    )
    assert trial["batch_size"] in (64, 128) and isinstance(trial["batch_size"], int)
    assert space["batch_size"] == {"choice": {64: 1.0, 128: 1.0}}
    # a list of choices is the mapping with equal weights: the same param, the same trials
    assert with_space(batch_size={"choice": {64: 1, 128: 1}})["batch_size"] == space["batch_size"]
    assert repr(trials.fixed_settings(DECLARED | {"batch_size": 256.0})) == "{'batch_size': 256}"
    # a fixed lab hyper-parameter is part of every trial, not a setting of the jobs
    assert trials.fixed_settings(DECLARED | {"dropout": 0.25}) == {"batch_size": 128}
    written = {"Nh1": 532.0, "Nh2": "195", "dropout": 0.0, "optimizer": "Adam", "lr": 1.0, "L2": 0}
    assert repr(trials.reference_trial("a", written)) == (
        "{'trial': 'ref_a', 'Nh1': 532, 'Nh2': 195, 'dropout': 0.0, 'optimizer': 'Adam', "
        "'lr': 1.0, 'L2': 0.0}"
    )


def test_a_searched_extra_is_reproducible():
    """A parameter beyond the lab's six draws from its own seeded stream: the same trials on
    every planning of the run."""
    space = with_space(batch_size={"choice": [64, 128, 256]})
    assert sample_trials(0, 30, space) == sample_trials(0, 30, space)
    assert trials.searched(space) == [*trials.LAB_DRAW_ORDER, "batch_size"]
    assert trials.searched(with_space(dropout=0.25)) == ["Nh1", "Nh2", "optimizer", "lr", "L2"]


def test_a_uniform_range_that_does_not_start_at_zero():
    space = with_space(dropout={"uniform": [0.2, 0.3]})
    dropout = [d["dropout"] for d in sample_trials(0, 2000, space).values()]
    assert 0.2 <= min(dropout) < 0.201 and 0.299 < max(dropout) < 0.3
    assert trials.uniform_of(space["dropout"], 0.25, {}) == pytest.approx(0.5)


def test_the_inverse_map_stays_in_the_unit_interval_and_finds_each_choice():
    """TPE learns from earlier trials through ``uniform_of``: the top of a range maps just
    below 1, and a choice to the middle of its interval of the cumulative weights."""
    below_one = np.nextafter(1.0, 0.0)
    assert trials.uniform_of({"uniform": [0.0, 0.5]}, 0.5, {}) == below_one
    assert trials.uniform_of({"loguniform": [1e-4, 0.1]}, 0.1, {}) == below_one
    choice = {"choice": {"Adam": 4.0, "RMSprop": 1.0, "SGD": 5.0}}
    assert [trials.uniform_of(choice, v, {}) for v in ("Adam", "RMSprop", "SGD")] == (
        pytest.approx([0.2, 0.45, 0.75])
    )
    assert [trials.value_of(choice, u, {}) for u in (0.2, 0.45, 0.75)] == [
        "Adam",
        "RMSprop",
        "SGD",
    ]
    with pytest.raises(ValueError, match=r"'AdamW' is not among the choices \['Adam'"):
        trials.uniform_of(choice, "AdamW", {})


def test_a_choice_of_weight_zero_is_never_given_even_at_the_edges():
    """u = 0 lies at the end of a zero-width interval, and rounding can leave the cumulative
    weights below a u just under 1: neither gives the value of weight zero."""
    first_zero = {"choice": {"Adam": 0.0, "RMSprop": 1.0}}
    assert trials.value_of(first_zero, 0.0, {}) == "RMSprop"
    last_zero = {"choice": {"Adam": 0.1, "AdamW": 0.1, "RMSprop": 0.6, "SGD": 0.0}}
    assert trials.value_of(last_zero, np.nextafter(1.0, 0.0), {}) == "RMSprop"


def test_the_widest_networks_a_space_can_give():
    """For the memory check: the largest Nh1 and Nh2 a space can draw, bounds that name a
    parameter and choices (weight zero: never drawn) included."""
    named_low = DECLARED | {"Nh1": {"int": [51, 100]}, "Nh2": {"int": ["Nh1", 300]}}
    assert trials.widest(named_low) == (99, 299)
    assert trials.space_problems(named_low) == []
    choice = DECLARED | {"Nh1": {"choice": {100: 1, 300: 2, 900: 0}}, "Nh2": {"int": [50, 70]}}
    assert trials.widest(choice) == (300, 69)


def _problems(**changes):
    return trials.space_problems(DECLARED | changes)


def test_the_space_accepts_what_it_documents():
    """Every form the README and CONFIG.md document, at the edges of what is allowed."""
    assert _problems(dropout="0.25", lr={"loguniform": ["1e-4", "1e-1"]}) == []
    assert _problems(dropout={"uniform": [0, 1]}) == []  # dropout < 1: 1 may close the range
    assert _problems(L2={"loguniform": [1e-30, 1e30]}) == []
    assert _problems(Nh2={"int": [1, "Nh1"]}) == []
    assert _problems(batch_size={"choice": [64, 128]}, optimizer={"choice": ["Adam", "SGD"]}) == []
    assert _problems(optimizer={"choice": {"Adam": 0, "RMSprop": 1}}) == []


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"dropout": {"uniform": [0.1, 0.1]}}, "dropout: expected [low, high] with low < high"),
        ({"dropout": {"normal": [0.1, 0.2]}}, "dropout: expected one of {int: [low, high]}"),
        ({"lr": {"uniform": [0.1, 0.2], "loguniform": [0.1, 0.2]}}, "lr: expected one of"),
        ({"optimizer": {"choice": "Adam"}}, "optimizer: choice takes {value: weight, ...}"),
        ({"L2": {"loguniform": [1e-31, 1e-2]}}, "L2: bounds between 1e-30 and 1e30"),
        ({"L2": {"loguniform": [1e-6, 1e31]}}, "L2: bounds between 1e-30 and 1e30"),
        ({"Nh2": {"int": [60, "Nh1"]}}, "Nh2: expected [low, high] with high > low"),
        (  # Nh1 may be 100: the bound that names it is the smallest Nh1 of positive weight
            {"Nh1": {"choice": {100: 1, 300: 2, 900: 0}}, "Nh2": {"int": [150, "Nh1"]}},
            "Nh2: expected [low, high] with high > low",
        ),
        ({"Nh2": {"int": [0, "Nh1"]}}, "Nh2: values must be integers >= 1"),
        ({"L2": None}, "L2: must be a number >= 0"),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_the_space_refuses_what_it_cannot_sample(changes, problem):
    found = [line.removeprefix("config key search.space.") for line in _problems(**changes)]
    assert [line[: len(problem)] for line in found] == [problem]


def test_every_problem_of_a_space_is_named_once():
    """A parameter whose bound names a wrong one is not judged again (that would repeat the
    first problem), and the checking goes on after it."""
    wrong = {"Nh1": {"int": [0.5, 10]}, "Nh2": {"int": [1, "Nh1"]}}
    assert _problems(**wrong, batch_size={"int": [1, "Nh2"]}) == [
        "config key search.space.Nh1: int bounds must be integers, got [0.5, 10]"
    ]
    assert [line.split(":")[0] for line in _problems(**wrong, dropout={"uniform": [0, 2]})] == [
        "config key search.space.Nh1",
        "config key search.space.dropout",
    ]
    space = dict(DECLARED)
    del space["L2"]
    assert trials.space_problems(space) == [
        "config key search.space.L2: missing; give a distribution or a fixed value"
    ]


def test_old_keys_name_the_space_to_write_instead():
    """The message for each search key of an earlier release gives what to write in
    search.space, in YAML's flow style: the same trials as before."""
    old = {"Nh1": [50, 600], "optimizers": {"Adam": 0.8, "RMSprop": 0.2}}
    old |= {"log10_lr": [-4, -1.5], "log10_L2": [-6, -2], "batch_size": 128}
    written = [line.split("written there: ")[1] for line in trials.old_key_problems(old)]
    assert written == [
        "Nh1: {int: [51, 600]}, Nh2: {int: [50, Nh1]}",
        "lr: {loguniform: [0.0001, 0.0316228]}",
        "L2: {loguniform: [1e-06, 0.01]}",
        "optimizer: {choice: {Adam: 0.8, RMSprop: 0.2}}",
        "batch_size: 128",
    ]
    assert trials.space_from_old(old)["batch_size"] == 128
