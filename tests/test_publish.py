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
