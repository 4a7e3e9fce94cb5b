"""`make lint` as tests: snakemake --lint, snakefmt, ruff check, ruff format and shellcheck
(workflow tier: it runs Snakemake)."""

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

pytestmark = pytest.mark.workflow


@pytest.mark.parametrize(
    "command",
    [
        ["snakemake", "--lint"],
        ["snakefmt", "--check", "."],
        ["ruff", "check", "."],
        ["ruff", "format", "--check", "."],
    ],
    ids=" ".join,
)
def test_the_code_is_clean(command):
    done = subprocess.run([sys.executable, "-m", *command], cwd=REPO, capture_output=True)
    assert done.returncode == 0, done.stdout.decode()[-3000:] + done.stderr.decode()[-3000:]


def test_the_shell_scripts_are_clean():
    """Every tracked shell script (SLURM, GPU, CI) passes shellcheck (requirements.txt)."""
    scripts = subprocess.run(
        ["git", "ls-files", "*.sh", ".ci/run"], cwd=REPO, capture_output=True, text=True
    ).stdout.split()
    assert len(scripts) >= 5
    shellcheck = Path(sys.executable).parent / "shellcheck"
    done = subprocess.run([str(shellcheck), *scripts], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:]
