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
    ({"device": "tpu"}, "device"),
    ({"unknown_key": 1}, "(top level): Additional properties are not allowed ('unknown_key'"),
    ({"search": {"n_trials": 0}}, "search.n_trials"),
    ({"search": {"n_trials": 2.5}}, "search.n_trials"),
    ({"search": {"n_trials": NAN}}, "search.n_trials"),
    ({"search": {"n_trials": INF}}, "search.n_trials"),
    ({"search": {"n_trials": 10_001}}, "search.n_trials"),
    ({"search": {"folds": 1}}, "search.folds"),
    ({"search": {"folds": 5000}}, "search.folds"),  # more folds than images of digit 5
    ({"search": {"Nh1": [600, 50]}}, "search.Nh1"),
    ({"search": {"Nh1": [50]}}, "search.Nh1"),
    ({"search": {"Nh1": [50, 51]}}, "search.Nh1"),
    ({"search": {"Nh1": [50, 10_000_000]}}, "search.Nh1"),  # weights beyond the memory
    ({"search": {"Nh1": [50.5, 600]}}, "search.Nh1"),
    ({"search": {"dropout": [0.4, 0.1]}}, "search.dropout"),
    ({"search": {"dropout": [0.0, 1.0]}}, "search.dropout"),
    ({"search": {"dropout": [NAN, 0.5]}}, "search.dropout"),
    ({"search": {"log10_lr": [-1, -4]}}, "search.log10_lr"),
    ({"search": {"log10_lr": [NAN, -1]}}, "search.log10_lr"),
    ({"search": {"log10_lr": [-4, INF]}}, "search.log10_lr"),
    ({"search": {"log10_lr": [-4, 400]}}, "search.log10_lr"),  # 10**400 overflows
    ({"search": {"log10_L2": ["a", -2]}}, "search.log10_L2"),
    ({"search": {"log10_L2": [-6, NAN]}}, "search.log10_L2"),
    ({"search": {"optimizers": {"Adam": 0.5, "RMSprop": 0.2}}}, "search.optimizers"),
    ({"search": {"optimizers": {"Adagrad": 1.0}}}, "search.optimizers"),
    ({"search": {"optimizers": {"Adam": 1.2, "RMSprop": -0.2}}}, "search.optimizers"),
    ({"search": {"optimizers": {"Adam": NAN, "RMSprop": 0.2}}}, "search.optimizers"),
    ({"search": {"patience": 0}}, "search.patience"),
    ({"search": {"max_epochs": 0}}, "search.max_epochs"),
    ({"search": {"max_epochs": 2.5}}, "search.max_epochs"),
    ({"search": {"batch_size": 0}}, "search.batch_size"),
    ({"search": {"batch_size": INF}}, "search.batch_size"),
    ({"final": {"top_k": 0}}, "final.top_k"),
    ({"final": {"top_k": 200}}, "final.top_k"),
    ({"final": {"epochs": 0}}, "final.epochs"),
    ({"final": {"references": {"bad-name": {}}}}, "final.references"),
    (
        {"final": {"references": {"report_winner": {"optimizer": "Lion"}}}},
        "final.references.report_winner.optimizer",
    ),
    (
        {"final": {"references": {"report_winner": {"lr": NAN}}}},
        "final.references.report_winner.lr",
    ),
    ({"final": {"references": {"report_winner": {"lr": -1e-3}}}}, "final.references.report_winner"),
    (
        {"final": {"references": {"report_winner": {"dropout": INF}}}},
        "final.references.report_winner.dropout",
    ),
    (
        {"final": {"references": {"report_winner": {"Nh1": 3_000_000}}}},
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
            "search": {"n_trials": "8", "folds": 2.0, "max_epochs": 3.0, "batch_size": 64.0},
            "final": {"top_k": "2", "references": {"r": {"Nh1": 100.0, "Nh2": "50"}}},
        },
    )
    config["final"]["references"]["r"] |= {"dropout": 0, "optimizer": "Adam", "lr": "1e-3"}
    config["final"]["references"]["r"]["L2"] = 0
    checked, problems = validate_config(config)
    assert problems == []
    assert checked["seed"] == 1 and isinstance(checked["seed"], int)
    search = checked["search"]
    assert [search[k] for k in ("n_trials", "folds", "max_epochs", "batch_size")] == [8, 2, 3, 64]
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


def test_an_override_replaces_the_optimizers_and_references_whole():
    from mnist_mlp.config import merge_config

    defaults = default_config()
    merged_config = merge_config(
        defaults,
        {
            "search": {"optimizers": {"SGD": 1.0}, "n_trials": 20},
            "final": {"references": {}},
            "figures": {"n_neurons": 4},
        },
    )
    assert merged_config["search"]["optimizers"] == {"SGD": 1.0}
    assert merged_config["search"]["n_trials"] == 20 and merged_config["search"]["folds"] == 4
    assert merged_config["final"]["references"] == {} and merged_config["final"]["top_k"] == 15
    assert merged_config["figures"]["n_neurons"] == 4
    assert defaults["search"]["optimizers"] == {"Adam": 0.8, "RMSprop": 0.2}  # not changed
    assert validate_config(merged_config)[1] == []
