"""Publishing a run (mnist_mlp.publish; workflow tier): the answer with its intervals, the
README's block, the cost from the benchmarks, the comparison with a reference run."""

import pandas as pd
import pytest

from mnist_mlp import publish
from mnist_mlp.io import read_json
from mnist_mlp.stats import accuracy_interval

pytestmark = pytest.mark.workflow

README = "# x\n\nbefore\n\n<!-- full-run:begin old -->\nstale\n<!-- full-run:end -->\n\nafter\n"


def test_a_published_run_shows_the_answer_with_its_intervals(tiny_run, tmp_path):
    workdir, _ = tiny_run
    readme = tmp_path / "README.md"
    readme.write_text(README)
    out = tmp_path / "docs" / "run"
    publish.main([str(workdir), str(out), "--readme", str(readme), "--against", str(workdir)])
    text = (out / "summary.md").read_text()
    winner = read_json(workdir / "results/winner/winner.json")
    ensemble = read_json(workdir / "results/winner/ensemble.json")
    # the winner: its official accuracy with its interval, its test-part accuracy without one
    low, high = accuracy_interval(winner["official_test_accuracy"], 10_000)
    official = f"{winner['official_test_accuracy'] * 100:.2f} % ({low * 100:.2f}-{high * 100:.2f})"
    assert f"| {winner['trial']} | the winner (best on the test part) | {official} |" in text
    assert "it chose the winner: biased, no interval" in text
    shown = ensemble["official_test"]
    assert f"{shown['accuracy'] * 100:.2f} % ({shown['low'] * 100:.2f}-" in text
    # the README: the block replaced, the text around it kept, links into the published copy
    block = readme.read_text()
    assert "stale" not in block and block.startswith("# x\n\nbefore\n\n")
    assert block.endswith("<!-- full-run:end -->\n\nafter\n")
    assert official in block and "docs/run/summary.md" in block
    # the cost table from the jobs' benchmarks
    cost = pd.read_csv(out / "cost.tsv", sep="\t")
    assert set(cost["rule"]) == {"cross_validate", "retrain"}
    assert cost.set_index("rule").loc["cross_validate", "jobs"] == 2
    # the comparison with itself: the same cost, all of its best kept, the same winner
    assert "| trials | 2 | 2 |" in text
    assert "| of the reference's best 15, in this run's best 15 | 2 | 15 |" in text
    hours = publish.search_core_hours(workdir)
    row = "search cost (core-hours computed: each job's CPU time, + 15 s for Snakemake's last"
    assert f"| {row} sample, at most its wall time) | {hours:.2f} (100%) | {hours:.2f} |" in text


def test_the_reference_as_published_compares_as_its_run_folder(tiny_run, tmp_path):
    """The full run's folder may be gone (another machine): its published copy in
    docs/full_run (ranking, config, cost, summary, winner) is the reference then."""
    workdir, _ = tiny_run
    published = tmp_path / "docs" / "full_run"
    publish.main([str(workdir), str(published)])
    assert not (published / "results").exists()  # flat: the tables under their own names
    assert publish.search_core_hours(published) == pytest.approx(
        publish.search_core_hours(workdir), abs=1e-4
    )
    as_folder = publish.comparison(workdir, workdir, tmp_path)
    assert publish.comparison(workdir, published, tmp_path) == as_folder
    assert "| winner, official accuracy |" in as_folder


def test_a_run_whose_search_grew_publishes_its_trials_so_far_not_the_old_answer(tiny_run, tmp_path):
    """A run restored from another's state (or given more trials) keeps that run's ranking,
    winner and ensemble on disk until it redoes them: publishing it meanwhile shows the trials
    finished so far and no answer, cost or comparison of the other run."""
    import shutil

    import yaml

    workdir = tmp_path / "run"
    shutil.copytree(tiny_run[0], workdir, symlinks=True)
    # the run started again with three more trials (its own config: the one it started with)
    config = yaml.safe_load((workdir / "results/run_config.yaml").read_text())
    config["search"]["n_trials"] += 3
    (workdir / "results/run_config.started.yaml").write_text(yaml.safe_dump(config))
    out = tmp_path / "docs" / "grown"
    publish.main([str(workdir), str(out), "--against", str(tiny_run[0])])
    text = (out / "summary.md").read_text()
    assert not (out / "winner.json").exists() and not (out / "ranking.tsv").exists()
    assert not (out / "summary.tsv").exists() and not (out / "receptive_fields_layer1.png").exists()
    so_far = pd.read_csv(out / "ranking_so_far.tsv", sep="\t")
    assert len(so_far) == 2  # the two cross-validated trials, ranked among themselves
    assert "of the 2 finished so far" in text
    assert "Against the full run: once this run's search is done." in text
    assert "the winner (best on the test part)" not in text
    assert "(search_overview.png)" in text and (out / "search_overview.png").exists()
