"""The HTML report as a user sees it (workflow tier): made from the run's own config, opened in
a headless Chromium, it must open on the answer; made with another config, it is refused."""

import re

import pytest
from conftest import run_snakemake, skip_or_fail, variant

from mnist_mlp.io import read_json
from mnist_mlp.report import find_browser, render, with_interval

pytestmark = pytest.mark.workflow


@pytest.fixture(scope="module")
def report(tiny_run):
    """The HTML summary, made as `make summary` makes it: with results/run_config.yaml only."""
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
    # the unbiased accuracy with its interval, as the front page writes it
    assert with_interval(winner["official_test_accuracy"], 10_000) in text
    assert "official test set (10,000 images, unbiased)" in text
    categories = [text.index(name) for name in ("1. Winner", "2. Search", "3. Retrained")]
    assert categories == sorted(categories)  # in pipeline order
    picture = matplotlib.image.imread(tmp_path / "report.png")
    assert picture.shape[:2] == (1000, 1400) and picture[..., :3].std() > 0.1


def embedded(report) -> dict[str, bytes]:
    """The results the report carries (Snakemake embeds each as a base64 data URI)."""
    import base64

    html = report.read_text(errors="replace")
    found = re.findall(
        r'"(results/[^"]+)": \{"name": .*?"data_uri": "data:[^"]*?base64,([^"]*)"', html
    )
    return {path: base64.b64decode(data) for path, data in found}


def test_the_report_carries_every_result_as_made_and_labels_them(report, tiny_run):
    workdir, _ = tiny_run
    items = embedded(report)
    expected = {
        "results/report/winner.html",
        "results/report/ranking.html",
        "results/report/retrained.html",
        "results/figures/search_overview.png",
        "results/figures/learning_curves.png",
        "results/figures/importance.png",
        "results/figures/parallel_coordinates.png",
        *(
            f"results/figures/{kind}_{layer}.png"
            for kind in ("receptive_fields", "gradient_ascent")
            for layer in ("layer1", "layer2", "output")
        ),
    }
    assert set(items) == expected
    for path, content in items.items():  # the very files of the run, not stale copies
        assert content == (workdir / path).read_bytes(), path
    ranking = (workdir / "results/search/ranking.tsv").read_text().splitlines()
    assert items["results/report/ranking.html"].count(b"<tr class=") == len(ranking) - 1
    winner = read_json(workdir / "results/winner/winner.json")
    assert b'<tr class="winner"><td class="num">' in items["results/report/ranking.html"]
    assert winner["trial"].encode() in items["results/report/winner.html"]
    html = report.read_text(errors="replace")
    assert "hidden layer 1" in html and "gradient ascent" in html  # item labels


def test_a_report_with_another_config_is_refused(tiny_run, report, tmp_path):
    workdir, other = variant(tiny_run, tmp_path, {"search": {"n_trials": 4}})
    result = run_snakemake(workdir, other, "--report", str(tmp_path / "r.html"), check=False)
    message = result.stdout + result.stderr
    assert result.returncode != 0 and not (tmp_path / "r.html").exists()
    assert "were not made with this configuration" in message
    assert "search.n_trials" in message and "make summary" in message
