import shutil

import pytest
from conftest import REPO, default_config, merged, run_snakemake
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
