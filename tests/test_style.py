"""`make lint` as tests: snakemake --lint, snakefmt, ruff check and ruff format (workflow tier:
it runs Snakemake)."""

import subprocess
import sys

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
