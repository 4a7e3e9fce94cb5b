"""The workflow on a real single-node SLURM cluster (slurm/start_local_cluster.sh), through
profiles/slurm: every non-local job must run as a SLURM job that sacct reports COMPLETED, and
the results must equal those of a local run of the same configuration."""

import os
import re
import shutil
import subprocess

import pytest
from conftest import REPO, run_snakemake, skip_or_fail

from mnist_mlp.io import read_json

pytestmark = [pytest.mark.slurm, pytest.mark.workflow]

ACCOUNT, PARTITION = "snaketest", "local"


@pytest.fixture(scope="module")
def slurm_cluster():
    """Start (or find running) the local cluster; skip, saying why, where that is impossible.
    Under CI (CI=true) it must be possible: a skip there would hide a broken set-up."""
    reason = None
    if os.geteuid() != 0:
        reason = "starting SLURM daemons needs root"
    elif not shutil.which("slurmctld") or not shutil.which("sacct"):
        reason = "SLURM is not installed (run slurm/install_local_cluster.sh as root)"
    if reason is None:
        started = subprocess.run(
            ["bash", str(REPO / "slurm" / "start_local_cluster.sh")],
            capture_output=True,
            text=True,
        )
        if started.returncode != 0:
            reason = f"the local SLURM cluster did not start:\n{started.stdout}{started.stderr}"
    if reason is not None:
        skip_or_fail(reason)


# Two of the tiny run's trials: one job array of two tasks, one wave on the 2-CPU node.
TRIALS = ("t0000", "t0001")


def test_the_tiny_run_on_slurm_matches_the_local_run(slurm_cluster, tiny_run, tmp_path):
    """The split (a plain job) and two CV jobs (one job array) as SLURM jobs, with the local
    run's results. The retrainings are SLURM jobs of the same kind; the ranking, the winner and
    the figures are local rules of the main process either way."""
    local_dir, configfile = tiny_run
    result = run_snakemake(
        tmp_path,
        configfile,
        "--profile",
        str(REPO / "profiles" / "slurm"),
        "--default-resources",
        f"slurm_account={ACCOUNT}",
        f"slurm_partition={PARTITION}",
        # the plugin waits 40 s before its first sacct poll by default: too long for a test
        "--slurm-init-seconds-before-status-checks",
        "2",
        "--seconds-between-status-checks",  # 10 s by default
        "2",
        *(f"results/search/cv/{trial}.json" for trial in TRIALS),
    )
    output = result.stdout + result.stderr
    run_id = re.search(r"SLURM run ID: (\S+)", output).group(1)
    accounting = subprocess.run(
        ["sacct", "-X", "-n", "-P", "--name", run_id, "-o", "JobID,State", "-S", "now-1days"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    states = dict(line.split("|") for line in accounting)
    assert len(states) == 1 + len(TRIALS), states  # split_train_test + one task per trial
    assert set(states.values()) == {"COMPLETED"}, states
    assert any("_" in job for job in states), "cross_validate was not a job array"

    for trial in TRIALS:
        on_slurm, local = (
            read_json(d / f"results/search/cv/{trial}.json") for d in (tmp_path, local_dir)
        )
        for result in (on_slurm, local):
            for fold in result["folds"]:
                fold.pop("seconds")  # wall time is the one thing allowed to differ
        assert on_slurm == local, trial
