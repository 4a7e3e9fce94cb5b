import numpy as np
import pytest
from conftest import default_config
from scipy import stats

from mnist_mlp.sampling import config_id, config_ids, config_index, sample_config, search_space

SPACE = search_space(default_config()["search"])
N_DRAWS = 20_000


@pytest.fixture(scope="module")
def draws():
    return [sample_config(0, index, SPACE) for index in range(N_DRAWS)]


def test_draws_respect_the_bounds(draws):
    nh1 = np.array([d["Nh1"] for d in draws])
    nh2 = np.array([d["Nh2"] for d in draws])
    assert nh1.min() >= 50 and nh1.max() <= 599  # randint's upper bound is exclusive
    assert np.all(nh2 >= 50) and np.all(nh2 < nh1)
    dropout = np.array([d["dropout"] for d in draws])
    assert dropout.min() >= 0.0 and dropout.max() < 0.5
    l2 = np.log10([d["L2"] for d in draws])
    assert l2.min() >= -6 and l2.max() < -2
    # the whole range is reached, not just a corner of it
    assert nh1.min() < 60 and nh1.max() > 590


def test_optimizer_shares_match_the_probabilities(draws):
    adam = np.mean([d["optimizer"] == "Adam" for d in draws])
    assert {d["optimizer"] for d in draws} == {"Adam", "RMSprop"}
    sigma = np.sqrt(0.8 * 0.2 / N_DRAWS)
    assert abs(adam - 0.8) < 4 * sigma


def test_log10_lr_is_uniform_on_its_range(draws):
    log_lr = np.log10([d["lr"] for d in draws])
    assert log_lr.min() >= -4 and log_lr.max() < -1
    result = stats.kstest(log_lr, stats.uniform(loc=-4, scale=3).cdf)
    assert result.pvalue > 1e-3, result
    # Nh2 given Nh1 is uniform on [50, Nh1): its relative position is uniform on [0, 1)
    position = [(d["Nh2"] - 50) / (d["Nh1"] - 50) for d in draws if d["Nh1"] > 150]
    assert stats.kstest(position, "uniform").pvalue > 1e-3


def test_each_config_has_its_own_stream():
    first = [sample_config(0, i, SPACE) for i in range(150)]
    again = [sample_config(0, i, SPACE) for i in range(160)]
    assert again[:150] == first  # raising n_configs leaves the existing ones unchanged
    other_seed = [sample_config(1, i, SPACE) for i in range(150)]
    assert all(a != b for a, b in zip(first, other_seed, strict=True))
    assert len({(d["Nh1"], d["lr"]) for d in first}) == 150


def test_config_ids_round_trip():
    assert config_ids(3) == ["c0000", "c0001", "c0002"]
    assert config_index(config_id(149)) == 149
    with pytest.raises(ValueError, match="not a config id"):
        config_index("c12")
