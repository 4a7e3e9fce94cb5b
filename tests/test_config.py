import shutil

import pytest
from conftest import REPO, default_config, merged, planned_jobs, run_snakemake
from snakemake.utils import validate

from mnist_mlp.config import ConfigError, check_config

SCHEMA = str(REPO / "workflow" / "schemas" / "config.schema.yaml")


def test_the_default_config_is_valid():
    config = default_config()
    validate(config, SCHEMA)
    check_config(config)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"search": {"Nh1": [600, 50]}}, "search.Nh1"),
        ({"search": {"log10_lr": [-1, -4]}}, "search.log10_lr"),
        ({"search": {"optimizers": {"Adam": 0.5, "RMSprop": 0.2}}}, "sum to 1"),
        ({"final": {"top_k": 200}}, "final.top_k"),
    ],
)
def test_check_config_names_the_key(overrides, message):
    with pytest.raises(ConfigError, match=message):
        check_config(merged(default_config(), overrides))


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"test_fraction": 1.5}, "test_fraction"),
        ({"search": {"folds": 1}}, "folds"),
        ({"search": {"optimizers": {"Adagrad": 1.0}}}, "Adagrad"),
        ({"search": {"n_configs": "many"}}, "n_configs"),
        ({"device": "tpu"}, "device"),
    ],
)
def test_the_schema_rejects_wrong_values(overrides, key):
    with pytest.raises(Exception, match=key):
        validate(merged(default_config(), overrides), SCHEMA)


def test_env_file_pins_match_requirements():
    """The conda env and the venv must be the same software."""
    import yaml

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


def test_snakemake_lint_is_clean(tmp_path):
    shutil.copy(REPO / "config.yaml", tmp_path / "config.yaml")
    result = run_snakemake(tmp_path, tmp_path / "config.yaml", "--lint", check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_code_style_is_clean():
    """ruff and snakefmt, as `make lint` runs them."""
    import subprocess
    import sys

    for command in (["ruff", "check", "."], ["ruff", "format", "--check", "."]):
        result = subprocess.run([sys.executable, "-m", *command], cwd=REPO, capture_output=True)
        assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()
    result = subprocess.run(
        [sys.executable, "-m", "snakefmt", "--check", "."], cwd=REPO, capture_output=True
    )
    assert result.returncode == 0, result.stderr.decode()


def test_numbers_given_as_nested_command_line_strings_are_numbers():
    """Snakemake hands `--config search="{n_configs: 8}"` over as {"n_configs": "8"}."""
    from mnist_mlp.config import coerce_numbers, load_schema

    config = merged(
        default_config(),
        {
            "search": {"n_configs": "8", "log10_lr": ["-3", "-1.5"], "optimizers": {"Adam": "1"}},
            "final": {"reference_configs": {"r": {"lr": "1e-3", "optimizer": "Adam"}}},
            "mnist_dir": "123",
        },
    )
    config["search"]["optimizers"] = {"Adam": "1"}
    coerced = coerce_numbers(config, load_schema(SCHEMA))
    assert coerced["search"]["n_configs"] == 8 and isinstance(coerced["search"]["n_configs"], int)
    assert coerced["search"]["log10_lr"] == [-3.0, -1.5]
    assert coerced["search"]["optimizers"] == {"Adam": 1.0}
    assert coerced["final"]["reference_configs"]["r"]["lr"] == 1e-3
    assert coerced["mnist_dir"] == "123"  # a string where the schema wants one
    assert coerce_numbers({"search": {"n_configs": "many"}}, load_schema(SCHEMA)) == {
        "search": {"n_configs": "many"}
    }  # left for the schema to reject, naming the key


def test_nested_command_line_overrides_reach_the_plan(tmp_path):
    shutil.copy(REPO / "config.yaml", tmp_path / "config.yaml")
    jobs = planned_jobs(
        tmp_path,
        tmp_path / "config.yaml",
        "--config",
        "search={n_configs: 4, max_epochs: 3}",
        "final={top_k: 2}",
    )
    assert jobs["sample_config"] == 4 and jobs["cross_validate"] == 4
