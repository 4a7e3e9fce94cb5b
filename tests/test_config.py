"""Every config check, in-process (fast tier): what the Snakefile runs before planning any
job. Each bad value must be refused with a message that names its key."""

import math

import pytest
import yaml
from conftest import REPO, default_config, merged

from mnist_mlp.config import (
    ConfigError,
    coerce_numbers,
    load_schema,
    load_yaml_file,
    machine_memory_mb,
    main,
    training_memory_mb,
    validate_config,
)

NAN, INF = math.nan, math.inf
# the default reference; an override replaces a reference whole
REFERENCE = {
    "Nh1": 532,
    "Nh2": 195,
    "dropout": 0.477,
    "optimizer": "Adam",
    "lr": 9.51e-06,
    "L2": 1.53e-06,
}

# One wrong value for every key, and the key the message must name.
BAD_VALUES = [
    ({"seed": -1}, "seed"),
    ({"seed": "zero"}, "seed"),
    ({"seed": 2**32}, "seed"),  # sklearn's split takes seeds below 2**32
    ({"seed": 1.5}, "seed"),
    ({"mnist_dir": 5}, "mnist_dir"),
    ({"mnist_dir": "/no/such/folder"}, "mnist_dir"),
    ({"test_fraction": 0}, "test_fraction"),
    ({"test_fraction": 1.5}, "test_fraction"),
    ({"test_fraction": NAN}, "test_fraction"),
    ({"test_fraction": 1e-5}, "test_fraction"),  # 0.6 images: not one per digit
    ({"test_fraction": 0.99999}, "test_fraction"),
    ({"test_fraction": 0.999}, "test_fraction: the 60 training images"),  # skorch's split
    ({"device": "tpu"}, "device"),
    ({"unknown_key": 1}, "unknown_key: unknown"),
    ({"device": "cpu\n"}, "device"),  # $ would match before a final newline
    ({"search": {"n_trials": 0}}, "search.n_trials"),
    ({"search": {"n_trials": 2.5}}, "search.n_trials"),
    ({"search": {"n_trials": NAN}}, "search.n_trials"),
    ({"search": {"n_trials": INF}}, "search.n_trials"),
    ({"search": {"n_trials": 10_001}}, "search.n_trials"),
    ({"search": {"folds": 1}}, "search.folds"),
    ({"search": {"folds": 5000}}, "search.folds"),  # more folds than images of digit 5
    ({"search": {"space": {"Nh1": {"int": [600, 50]}}}}, "search.space.Nh1"),
    ({"search": {"space": {"Nh1": {"int": [50]}}}}, "search.space.Nh1"),
    ({"search": {"space": {"Nh1": {"int": [50, 51]}}}}, "search.space.Nh2"),  # no Nh2 below 50
    ({"search": {"space": {"Nh1": {"int": [51, 10_000_000]}}}}, "search.space.Nh1"),  # memory
    ({"search": {"space": {"Nh1": {"int": [50.5, 600]}}}}, "search.space.Nh1"),
    ({"search": {"space": {"Nh1": {"int": [0, 600]}}}}, "search.space.Nh1"),
    ({"search": {"space": {"Nh1": {"uniform": [50, 600]}}}}, "search.space.Nh1"),
    ({"search": {"space": {"Nh1": {"int": [51, "Nh2"]}}}}, "search.space.Nh1"),  # drawn later
    ({"search": {"space": {"Nh2": {"int": [50, "lr"]}}}}, "search.space.Nh2"),  # not an integer
    ({"search": {"space": {"Nh2": {"int": [50, "Nh3"]}}}}, "search.space.Nh2"),
    ({"search": {"space": {"dropout": {"uniform": [0.4, 0.1]}}}}, "search.space.dropout"),
    ({"search": {"space": {"dropout": {"uniform": [0.0, 1.5]}}}}, "search.space.dropout"),
    ({"search": {"space": {"dropout": {"uniform": [NAN, 0.5]}}}}, "search.space.dropout"),
    ({"search": {"space": {"dropout": 1.0}}}, "search.space.dropout"),
    ({"search": {"space": {"lr": {"loguniform": [1e-1, 1e-4]}}}}, "search.space.lr"),
    ({"search": {"space": {"lr": {"loguniform": [NAN, 1e-1]}}}}, "search.space.lr"),
    ({"search": {"space": {"lr": {"loguniform": [1e-4, INF]}}}}, "search.space.lr"),
    ({"search": {"space": {"lr": {"loguniform": [1e-4, 1e40]}}}}, "search.space.lr"),  # float32
    ({"search": {"space": {"lr": {"loguniform": [0, 1e-1]}}}}, "search.space.lr"),
    ({"search": {"space": {"lr": {"gauss": [0, 1]}}}}, "search.space.lr"),
    ({"search": {"space": {"lr": {"int": [1, 5]}}}}, "search.space.lr"),
    ({"search": {"space": {"lr": {"loguniform": [1e-4]}}}}, "search.space.lr"),
    ({"search": {"space": {"L2": {"loguniform": ["a", 1e-2]}}}}, "search.space.L2"),
    ({"search": {"space": {"L2": {"loguniform": [1e-6, NAN]}}}}, "search.space.L2"),
    ({"search": {"space": {"optimizer": {"choice": {"Adagrad": 1.0}}}}}, "search.space.optimizer"),
    (
        {"search": {"space": {"optimizer": {"choice": {"Adam": 1.2, "RMSprop": -0.2}}}}},
        "search.space.optimizer",
    ),
    ({"search": {"space": {"optimizer": {"choice": {"Adam": NAN}}}}}, "search.space.optimizer"),
    ({"search": {"space": {"optimizer": {"choice": {"Adam": 0}}}}}, "search.space.optimizer"),
    ({"search": {"space": {"optimizer": {"choice": []}}}}, "search.space.optimizer"),
    ({"search": {"space": {"optimizer": "Lion"}}}, "search.space.optimizer"),
    ({"search": {"space": {"momentum": 0.9}}}, "search.space.momentum"),
    ({"search": {"space": {"batch_size": 0}}}, "search.space.batch_size"),
    ({"search": {"space": {"batch_size": INF}}}, "search.space.batch_size"),
    ({"search": {"space": {"batch_size": {"choice": [64, 0.5]}}}}, "search.space.batch_size"),
    ({"search": {"space": []}}, "search.space"),
    ({"search": {"sampler": "grid"}}, "search.sampler"),
    ({"search": {"pruning": "asha"}}, "search.pruning"),
    ({"search": {"halving": {"eta": 1}}}, "search.halving.eta"),
    ({"search": {"pruning": "halving", "halving": {"min_epochs": 100}}}, "search.halving"),
    ({"search": {"tpe": {"batch": 0}}}, "search.tpe.batch"),
    ({"search": {"tpe": {"startup_trials": 0}}}, "search.tpe.startup_trials"),
    ({"search": {"patience": 0}}, "search.patience"),
    ({"search": {"max_epochs": 0}}, "search.max_epochs"),
    ({"search": {"max_epochs": 2.5}}, "search.max_epochs"),
    # keys of earlier releases, and slips: the message names the key meant
    ({"search": {"log10_lr": [-4, -1]}}, "search.log10_lr: replaced by search.space"),
    ({"search": {"optimizers": {"Adam": 1.0}}}, "search.optimizers: replaced by search.space"),
    ({"search": {"batch_size": 64}}, "search.batch_size: replaced by search.space"),
    (
        {"search": {"n_configs": 5}},
        "search.n_configs: unknown; did you mean search.n_trials",
    ),
    (
        {"search": {"n_trial": 5}},
        "search.n_trial: unknown; did you mean search.n_trials",
    ),
    (
        {"n_trials": 5},
        "n_trials: unknown; did you mean search.n_trials",
    ),
    (
        {"final": {"reference_configs": {}}},
        "final.reference_configs: unknown; did you mean final.references",
    ),
    (
        {"figures": {"n_neuron": 4}},
        "figures.n_neuron: unknown; did you mean figures.n_neurons",
    ),
    ({"final": {"top_k": 0}}, "final.top_k"),
    ({"final": {"top_k": 200}}, "final.top_k"),
    ({"final": {"epochs": 0}}, "final.epochs"),
    ({"final": {"references": {"bad-name": {}}}}, "final.references"),
    ({"final": {"references": {"foo\n": {}}}}, "final.references"),
    (
        {"final": {"references": {"report_winner": REFERENCE | {"optimizer": "Lion"}}}},
        "final.references.report_winner.optimizer",
    ),
    (
        {"final": {"references": {"report_winner": REFERENCE | {"lr": NAN}}}},
        "final.references.report_winner.lr",
    ),
    (
        {"final": {"references": {"report_winner": REFERENCE | {"lr": -1e-3}}}},
        "final.references.report_winner",
    ),
    (
        {"final": {"references": {"report_winner": REFERENCE | {"dropout": INF}}}},
        "final.references.report_winner.dropout",
    ),
    (
        {"final": {"references": {"report_winner": REFERENCE | {"Nh1": 3_000_000}}}},
        "final.references.report_winner",
    ),
    ({"figures": {"n_neurons": 0}}, "figures.n_neurons"),
    ({"figures": {"output_neurons": 11}}, "figures.output_neurons"),
    ({"figures": {"ascent_steps": 0}}, "figures.ascent_steps"),
    ({"figures": {"ascent_step_size": 0}}, "figures.ascent_step_size"),
    ({"figures": {"ascent_step_size": NAN}}, "figures.ascent_step_size"),
    ({"figures": {"ascent_step_size": INF}}, "figures.ascent_step_size"),
    ({"figures": {"ascent_start": 1.5}}, "figures.ascent_start"),
    ({"figures": {"ascent_start": NAN}}, "figures.ascent_start"),
]


def test_the_default_config_is_valid():
    assert validate_config(default_config())[1] == []


@pytest.mark.parametrize(("overrides", "key"), BAD_VALUES, ids=[k for _, k in BAD_VALUES])
def test_a_bad_value_is_refused_naming_its_key(overrides, key):
    _, problems = validate_config(merged(default_config(), overrides))
    assert problems, overrides
    assert any(f"config key {key}" in line for line in problems), problems


def test_whole_number_floats_and_numeric_strings_are_numbers():
    """``n_trials: 3.0`` means 3; Snakemake hands `--config search="{n_trials: 8}"` over as
    {"n_trials": "8"}."""
    config = merged(
        default_config(),
        {
            "seed": 1.0,
            "search": {
                "n_trials": "8",
                "folds": 2.0,
                "max_epochs": 3.0,
                "space": {"batch_size": 64.0},
            },
            "final": {"top_k": "2", "references": {"r": {"Nh1": 100.0, "Nh2": "50"}}},
        },
    )
    config["final"]["references"]["r"] |= {"dropout": 0, "optimizer": "Adam", "lr": "1e-3"}
    config["final"]["references"]["r"]["L2"] = 0
    checked, problems = validate_config(config)
    assert problems == []
    assert checked["seed"] == 1 and isinstance(checked["seed"], int)
    search = checked["search"]
    assert [search[k] for k in ("n_trials", "folds", "max_epochs")] == [8, 2, 3]
    assert all(isinstance(search[k], int) for k in ("n_trials", "folds", "max_epochs"))
    reference = checked["final"]["references"]["r"]
    assert reference["Nh2"] == 50 and reference["lr"] == 1e-3
    assert coerce_numbers({"search": {"n_trials": "many"}}, load_schema()) == {
        "search": {"n_trials": "many"}
    }  # left for the schema to reject, naming the key


def test_a_broken_or_empty_config_file_is_named_with_its_line(tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("search:\n  n_trials: 5\n  folds: [2\nfinal: {}\n")
    with pytest.raises(ConfigError, match=r"broken.yaml, line \d+, column \d+: not valid YAML"):
        load_yaml_file(broken)
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing here\n")
    with pytest.raises(ConfigError, match="empty.yaml is empty"):
        load_yaml_file(empty)
    listed = tmp_path / "list.yaml"
    listed.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="top level is a list"):
        load_yaml_file(listed)


def test_make_run_checks_the_configfiles_it_is_given(tmp_path, capsys):
    good = tmp_path / "good.yaml"
    good.write_text("seed: 1\n")
    broken = tmp_path / "broken.yaml"
    broken.write_text("seed: [1\n")
    assert main(["--cores", "2", "--configfile", str(good), "--dry-run"]) == 0
    assert main(["--configfile", str(good), str(broken), "--config", "seed=2"]) == 2
    assert "broken.yaml, line 2" in capsys.readouterr().err


def test_the_memory_estimate_bounds_the_widths():
    assert training_memory_mb(599, 598, 128) < 2000  # the default search's widest network
    assert training_memory_mb(100_000, 100_000, 128) > machine_memory_mb()


def test_env_file_pins_match_requirements():
    """The conda env and the venv must be the same software."""
    pins = dict(
        line.split("==")
        for line in (REPO / "requirements.txt").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    )
    env = yaml.safe_load((REPO / "envs" / "mnist_mlp.yaml").read_text())
    pip_section = next(item for item in env["dependencies"] if isinstance(item, dict))["pip"]
    assert pip_section, "envs/mnist_mlp.yaml has no pip pins"
    for line in pip_section:
        name, version = line.split("==")
        assert pins.get(name) == version, f"{name}: env {version}, requirements {pins.get(name)}"


def test_an_override_replaces_a_distribution_and_the_references_whole():
    from mnist_mlp.config import merge_config

    defaults = default_config()
    merged_config = merge_config(
        defaults,
        {
            "search": {
                "space": {"optimizer": {"choice": {"SGD": 1.0}}, "lr": {"uniform": [0.01, 0.1]}},
                "n_trials": 20,
            },
            "final": {"references": {}},
            "figures": {"n_neurons": 4},
        },
    )
    space = merged_config["search"]["space"]
    assert space["optimizer"] == {"choice": {"SGD": 1.0}} and space["lr"] == {
        "uniform": [0.01, 0.1]
    }
    assert space["L2"] == defaults["search"]["space"]["L2"]
    assert merged_config["search"]["n_trials"] == 20 and merged_config["search"]["folds"] == 4
    assert merged_config["final"]["references"] == {} and merged_config["final"]["top_k"] == 15
    assert merged_config["figures"]["n_neurons"] == 4
    assert defaults["search"]["space"]["optimizer"] == {"choice": {"Adam": 0.8, "RMSprop": 0.2}}
    assert validate_config(merged_config)[1] == []
