"""The SLURM helper scripts (slurm/*.sh) run for real: they refuse to touch a SLURM they did not
set up, stop only the daemons they started (by pid file, never by name), a second start changes
nothing, and a stop leaves the host as it was (no config behind to make SLURM's commands wait
for a controller). Needs root and Debian's packages (slurm/install_local_cluster.sh).

Every test begins with the cluster running and leaves it running (tests/test_slurm.py needs
it); what a test puts on the host (a file, a process) it removes in a ``finally``."""

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from conftest import REPO, skip_or_fail

pytestmark = pytest.mark.slurm

START = REPO / "slurm" / "start_local_cluster.sh"
STOP = REPO / "slurm" / "stop_local_cluster.sh"
ETC = Path("/etc/slurm")
CONFIGS = (ETC / "slurm.conf", ETC / "slurmdbd.conf")
STATE = Path("/var/lib/slurm-local")
MARKER = "# Written by slurm/start_local_cluster.sh"  # the start of the scripts' marker line
# The pid files start_local_cluster.sh writes, by daemon.
PID_FILES = {
    "munged": STATE / "munge" / "munged.pid",
    "mariadbd": STATE / "mysql" / "mariadbd.pid",
    "slurmdbd": STATE / "run" / "slurmdbd.pid",
    "slurmctld": STATE / "run" / "slurmctld.pid",
    "slurmd": STATE / "run" / "slurmd.pid",
}
FOREIGN = b"# a SLURM config that start_local_cluster.sh did not write\nClusterName=theirs\n"


def run(script: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(script)], capture_output=True, text=True, timeout=600, env=env
    )


def ours(path: Path) -> bool:
    return path.exists() and MARKER in path.read_text()


def daemon_pids() -> dict[str, int]:
    return {name: int(path.read_text()) for name, path in PID_FILES.items() if path.exists()}


def alive(pid: int) -> bool:
    """A running process (a zombie, which has no executable any more, is not)."""
    try:
        os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return False
    return True


def start_ok() -> str:
    started = run(START)
    assert started.returncode == 0, started.stdout + started.stderr
    return started.stdout


def stop_ok() -> str:
    stopped = run(STOP)
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    return stopped.stdout


def finish(process: subprocess.Popen) -> None:
    """End a process this test started (and reap it)."""
    if process.poll() is None:
        process.kill()
    process.wait()


@pytest.fixture(scope="module")
def startable():
    """Skip, saying why, where the scripts cannot run; under CI (CI=true) fail instead. At the
    end of the module, the cluster is left running."""
    reason = None
    if os.geteuid() != 0:
        reason = "starting SLURM daemons needs root"
    elif not all(shutil.which(tool) for tool in ("slurmctld", "slurmdbd", "munged", "mariadbd")):
        reason = "SLURM is not installed (run slurm/install_local_cluster.sh as root)"
    elif any(path.exists() and not ours(path) for path in CONFIGS):
        reason = "this host has a SLURM config of its own: the scripts rightly refuse to run"
    else:
        started = run(START)
        if started.returncode != 0:
            reason = f"the local SLURM cluster did not start:\n{started.stdout}{started.stderr}"
    if reason is not None:
        skip_or_fail(reason)
    yield
    start_ok()


@pytest.fixture
def cluster(startable):
    """The cluster, running."""
    start_ok()


def test_a_second_start_changes_nothing(cluster):
    before = daemon_pids()
    configs = {path: (path.read_bytes(), path.stat().st_mtime_ns) for path in CONFIGS}
    output = start_ok()
    assert set(before) == set(PID_FILES), before
    assert all(alive(pid) for pid in before.values()), before
    assert daemon_pids() == before
    assert {path: (path.read_bytes(), path.stat().st_mtime_ns) for path in CONFIGS} == configs
    assert "starting" not in output and "wrote" not in output, output


def test_stop_stops_its_daemons_only_and_restores_the_host(cluster, tmp_path):
    """A process named like a SLURM daemon, not started by the scripts: stop leaves it alone,
    start refuses to run beside it; once it is gone, start works again."""
    fake = tmp_path / "slurmctld"  # `sleep` under that name: pgrep -x slurmctld finds it
    shutil.copy(shutil.which("sleep"), fake)
    imposter = subprocess.Popen([str(fake), "600"])
    try:
        daemons = daemon_pids()
        output = stop_ok()
        assert imposter.poll() is None, "stop killed a slurmctld it did not start"
        assert not any(alive(pid) for pid in daemons.values()), output
        assert not any(path.exists() for path in PID_FILES.values())
        # the host as before the start: no config left, so SLURM's commands (which the SLURM
        # executor plugin runs in every snakemake process) fail at once instead of waiting
        assert not any(path.exists() for path in CONFIGS), output
        began = time.monotonic()
        subprocess.run(["scontrol", "show", "config"], capture_output=True, timeout=60)
        assert time.monotonic() - began < 3

        refused = run(START)
        assert refused.returncode != 0
        assert f"a slurmctld (pid {imposter.pid}) that this script did not start" in (
            refused.stdout
        )
        assert imposter.poll() is None
        assert not any(path.exists() for path in CONFIGS), "start wrote before refusing"
        assert not daemon_pids(), "start started a daemon before refusing"
    finally:
        finish(imposter)
    start_ok()
    assert all(alive(pid) for pid in daemon_pids().values())
    assert set(daemon_pids()) == set(PID_FILES)


def test_stop_does_not_signal_a_process_its_pid_file_names_wrongly(cluster):
    """Pid files that outlived their daemons, the pids now used by another process."""
    stop_ok()
    other = subprocess.Popen(["sleep", "600"])
    try:
        for path in PID_FILES.values():
            path.write_text(f"{other.pid}\n")
        output = stop_ok()
        assert other.poll() is None, "stop killed a process that was not its daemon"
        assert output.count("not signalling it") == len(PID_FILES), output
        assert not any(path.exists() for path in PID_FILES.values())
    finally:
        finish(other)
        for path in PID_FILES.values():
            if path.exists() and path.read_text().strip() == str(other.pid):
                path.unlink()


@pytest.mark.parametrize("config", CONFIGS, ids=lambda path: path.name)
def test_start_refuses_to_replace_a_config_it_did_not_write(cluster, config):
    stop_ok()  # removes the scripts' own configs: the place is free for a foreign one
    assert not config.exists()
    config.write_bytes(FOREIGN)
    try:
        refused = run(START)
        assert refused.returncode != 0
        assert f"this host already has {config}, not written by this script" in refused.stdout
        assert "not touching it" in refused.stdout
        assert config.read_bytes() == FOREIGN
        assert not any(path.exists() for path in CONFIGS if path != config)
        assert not daemon_pids(), "start started a daemon before refusing"
        # stop leaves it too
        assert f"{config} was not written by start_local_cluster.sh" in stop_ok()
        assert config.read_bytes() == FOREIGN
    finally:
        if config.exists() and config.read_bytes() == FOREIGN:
            config.unlink()
    start_ok()


def test_start_refuses_when_the_caller_names_another_slurm(cluster):
    """SLURM_CONF set elsewhere: the test's jobs would go to that SLURM."""
    pids = daemon_pids()
    env = {**os.environ, "SLURM_CONF": "/opt/their-slurm/etc/slurm.conf"}
    refused = run(START, env=env)
    assert refused.returncode != 0
    assert "SLURM_CONF is set to /opt/their-slurm/etc/slurm.conf" in refused.stdout
    assert daemon_pids() == pids
