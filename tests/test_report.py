"""The HTML report as a user sees it (workflow tier): made from the run's own config, opened in
a headless Chromium, it must open on the answer; made with another config, it is refused."""

import re

import pytest
from conftest import run_snakemake, skip_or_fail, variant

from mnist_mlp.io import read_json
from mnist_mlp.report import find_browser, render

pytestmark = pytest.mark.workflow


@pytest.fixture(scope="module")
def report(tiny_run):
    """The report, made as `make report` makes it: with results/run_config.yaml only."""
    workdir, _ = tiny_run
    run_snakemake(workdir, workdir / "results/run_config.yaml", "--report", "results/report.html")
    return workdir / "results/report.html"


def test_the_report_opens_on_the_answer_in_a_browser(report, tmp_path):
    if find_browser() is None:
        skip_or_fail("no headless Chromium (apt-get install chromium)")
    import matplotlib.image

    winner = read_json(report.parent / "winner/winner.json")
    dom = render(report, tmp_path / "report.png")
    shown = re.sub(r"<script.*?</script>", "", dom, flags=re.DOTALL)  # what the page shows
    text = re.sub(r"<[^>]+>", " ", shown)
    assert "The answer." in text and winner["trial"] in text
    assert f"{winner['official_test_accuracy']:.2%}" in text
    assert "official test set (10,000 images, unbiased)" in text
    categories = [text.index(name) for name in ("1. Winner", "2. Search", "3. Retrained")]
    assert categories == sorted(categories)  # in pipeline order
    picture = matplotlib.image.imread(tmp_path / "report.png")
    assert picture.shape[:2] == (1000, 1400) and picture[..., :3].std() > 0.1


def test_the_report_holds_the_tables_and_labels(report):
    html = report.read_text(errors="replace")
    for name in ("winner.html", "ranking.html", "retrained.html", "search_overview.png"):
        assert name in html
    assert "hidden layer 1" in html and "gradient ascent" in html  # item labels


def test_a_report_with_another_config_is_refused(tiny_run, report, tmp_path):
    workdir, other = variant(tiny_run, tmp_path, {"search": {"n_trials": 4}})
    result = run_snakemake(workdir, other, "--report", str(tmp_path / "r.html"), check=False)
    message = result.stdout + result.stderr
    assert result.returncode != 0 and not (tmp_path / "r.html").exists()
    assert "were not made with this configuration" in message
    assert "search.n_trials" in message and "make report" in message
