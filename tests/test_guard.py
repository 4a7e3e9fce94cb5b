"""The guard of result versions on the real MNIST (workflow tier): it passes on this code, and
it fails, naming the stage, the file and the version to bump, on a result-changing edit
committed without a bump in a scratch copy of the repository."""

import shutil
import subprocess

import pytest
from conftest import REPO, SPLIT, planned_jobs, run_snakemake, write_config

from mnist_mlp import guard, runstate

pytestmark = pytest.mark.workflow


@pytest.fixture(scope="module")
def heads(mnist_dir, tmp_path_factory):
    """The guard's head runs (the tiny protocols with this code)."""
    return guard.head_runs(REPO, tmp_path_factory.mktemp("guard") / "head", mnist_dir)


def test_every_stage_computes_what_its_version_says(heads, tmp_path):
    outcomes = guard.check(REPO, heads, tmp_path)
    assert {o.stage for o in outcomes} == set(guard.versions_at(REPO, None))
    for outcome in outcomes:
        assert not outcome.differing, outcome.advice()
        if outcome.anchor is not None:  # not bumped in uncommitted work: compared
            assert outcome.compared, outcome.line
    files = {o.stage: len(o.compared) for o in outcomes}
    if files["cross_validate"]:
        assert files["cross_validate"] == 6 and files["retrain"] == 9


def git(repo, *args):
    return subprocess.run(
        ["git", "-C", repo, *args], check=True, capture_output=True, text=True
    ).stdout.strip()


@pytest.fixture
def scratch(tmp_path):
    """A clone of this repository with the working tree's code committed on top (so that a
    checkout with uncommitted work is tested as it is)."""
    repo = tmp_path / "repo"
    git(tmp_path, "clone", "--quiet", "--shared", str(REPO), str(repo))
    for key, value in (("user.name", "guard test"), ("user.email", "guard@test")):
        git(repo, "config", key, value)
    for name in guard.CODE_PATHS:
        source, target = REPO / name, repo / name
        if source.is_dir():
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, target)
    git(repo, "add", "-A", *guard.CODE_PATHS)
    git(repo, "commit", "--quiet", "--allow-empty", "-m", "the working tree")
    return repo


def test_a_result_changing_edit_without_a_bump_fails_the_guard(heads, scratch, tmp_path, capsys):
    ranking = scratch / "workflow" / "mnist_mlp" / "ranking.py"
    source = ranking.read_text()
    assert "json.dumps(record)" in source
    ranking.write_text(source.replace("json.dumps(record)", "json.dumps(record, sort_keys=True)"))
    git(scratch, "commit", "--quiet", "-am", "sorted_params.dat: keys in name order")
    # the scratch's head run: this run's, with the ranking computed by the edited code
    edited = tmp_path / "edited"
    head = heads["lab"]
    rank_outputs = guard.stage_outputs(head, ["rank_trials"])["rank_trials"]
    guard.recompute(scratch, head, edited / "lab", rank_outputs, log=tmp_path / "edited.log")
    argv = ["--repo", str(scratch), "--head-runs", str(edited), "--stages", "rank_trials"]
    assert guard.main([*argv, "--keep", str(tmp_path / "work")]) == 1
    printed = capsys.readouterr()
    assert "rank_trials" in printed.out and "DIFFERS" in printed.out
    assert "results/search/sorted_params.dat" in printed.err
    assert "ranking.tsv" not in printed.err  # the files the edit left alone are not named
    assert 'RESULT_VERSIONS["rank_trials"] = 2' in printed.err
    # with the bump in the same change, the guard has nothing to hold against it
    versions = scratch / guard.VERSIONS_FILE
    versions.write_text(versions.read_text().replace('"rank_trials": 1', '"rank_trials": 2'))
    git(scratch, "commit", "--quiet", "-am", "rank_trials: version 2")
    assert guard.anchors(scratch)["rank_trials"] == git(scratch, "rev-parse", "HEAD")
    assert guard.main(argv) == 0
    assert "same as" in capsys.readouterr().out


def test_the_published_full_run_restores_as_current(mnist_dir, tmp_path):
    """The full run in docs/full_run, restored into a fresh folder after the data stage: no
    sampling and no cross-validation is planned, only the retrainings whose networks the state
    leaves out (they are not in git) and what follows them."""
    state = REPO / "docs" / "full_run" / "state.tar.gz"
    # the full run is the default protocol: config.yaml as it is
    configfile = write_config(tmp_path / "config.yaml", {"mnist_dir": str(mnist_dir)})
    run_snakemake(tmp_path, configfile, *SPLIT)
    manifest = runstate.restore(state, tmp_path)
    left_out = {path.split("/")[2] for path in manifest["left_out"] if "/final/t" in path}
    jobs = planned_jobs(tmp_path, configfile)
    assert jobs.pop("retrain") == len(left_out | {"ref_report_winner"}) == 16
    assert set(jobs) == {
        "select_winner",
        "build_ensemble",
        "export_models",
        "report_tables",
        "plot_search",
        "plot_learning_curves",
        "plot_receptive_fields",
        "plot_gradient_ascent",
        "all",
    }
