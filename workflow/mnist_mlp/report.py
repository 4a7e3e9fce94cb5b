"""What the HTML report shows beside the figures: the winner, the ranking and the retrained
networks as tables readable inside the report (Snakemake shows HTML results inline, a TSV only
as a download), and the summary its front page opens with.

``front_page`` and ``results_mismatch`` use the standard library only: the Snakefile calls them
when it builds a report.
"""

from __future__ import annotations

import csv
import html
import json
from pathlib import Path

from . import layout
from .io import write_text
from .stats import accuracy_interval

STYLE = """
body { font-family: sans-serif; font-size: 14px; margin: 1em; }
table { border-collapse: collapse; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: right; }
th { background: #f0f0f0; }
td.text, th.text { text-align: left; }
tr.winner td { background: #fff3c4; font-weight: bold; }
tr.reference td { color: #555; font-style: italic; }
p.note { max-width: 60em; }
"""
ACCURACIES = (
    ("official_test_accuracy", "official test set (10,000 images, unbiased)"),
    ("test_accuracy", "test part (15 %, chose the winner)"),
    ("whole_dataset_accuracy", "all 60,000 training images"),
)
IMAGES = {"official_test_accuracy": 10_000, "whole_dataset_accuracy": 60_000}
# The winner page lists the hyper-parameters in the config's order (search.space), each at the
# precision that tells trials apart.
PARAMETER_FORMATS = {
    "Nh1": "{:.0f}",
    "Nh2": "{:.0f}",
    "optimizer": "{}",
    "dropout": "{:.3f}",
    "lr": "{:.3g}",
    "L2": "{:.3g}",
    "batch_size": "{:.0f}",
}
# Columns of the report's tables: (column, heading, format).
HYPERPARAMETER_COLUMNS = (
    ("Nh1", "Nh1", "{:.0f}"),
    ("Nh2", "Nh2", "{:.0f}"),
    ("dropout", "dropout", "{:.3f}"),
    ("optimizer", "optimizer", "{}"),
    ("lr", "lr", "{:.3g}"),
    ("L2", "L2", "{:.3g}"),
)
RANKING_COLUMNS = (
    ("rank", "rank", "{:.0f}"),
    ("trial", "trial", "{}"),
    *HYPERPARAMETER_COLUMNS,
    ("mean_loss", "CV loss", "{:.4f}"),
    ("std_loss", "±", "{:.4f}"),
    ("mean_accuracy", "CV accuracy", "{:.2%}"),
    ("mean_epochs", "epochs", "{:.1f}"),
    ("status", "status", "{}"),
)
# Columns that only some runs have: a drawn batch size, successive halving's rung.
OPTIONAL_COLUMNS = {
    "batch_size": ("batch_size", "batch size", "{:.0f}"),
    "rung": ("rung", "rung", "{:.0f}"),
    "score": ("score", "rung score", "{:.4f}"),
}
RUNG_COLUMNS = (
    ("trial", "trial", "{}"),
    ("rung", "rung", "{:.0f}"),
    ("budget", "epochs per fold", "{:.0f}"),
    ("score", "score", "{:.4f}"),
    ("mean_epochs", "epochs", "{:.1f}"),
    ("decision", "decision", "{}"),
)
RETRAINED_COLUMNS = (
    ("trial", "trial", "{}"),
    *HYPERPARAMETER_COLUMNS,
    ("cv_loss", "CV loss", "{:.4f}"),
    ("official_test_accuracy", "official test (unbiased)", "{:.2%}"),
    ("official_interval", "95 % CI", "{}"),
    ("test_accuracy", "test part (chose)", "{:.2%}"),
    ("whole_dataset_accuracy", "all 60,000", "{:.2%}"),
    ("epochs", "epochs", "{:.0f}"),
)


def _cell(value: str, fmt: str) -> str:
    try:
        text = fmt.format(float(value)) if fmt != "{}" else value
    except ValueError:
        text = value  # NaN written as text, a status, ...
    numeric = fmt != "{}"
    return f'<td class="{"num" if numeric else "text"}">{html.escape(text)}</td>'


def html_table(rows: list[dict], columns, row_class=lambda row: "") -> str:
    head = "".join(
        f'<th class="{"text" if fmt == "{}" else "num"}">{html.escape(title)}</th>'
        for _, title, fmt in columns
    )
    body = "".join(
        f'<tr class="{row_class(row)}">'
        + "".join(_cell(row[key], fmt) for key, _, fmt in columns)
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _page(title: str, content: str) -> str:
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{STYLE}</style></head><body><h2>{html.escape(title)}</h2>{content}"
        "</body></html>\n"
    )


def _read_tsv(path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def with_interval(accuracy: float, images: int) -> str:
    """ "98.41 % (95 % CI 98.15-98.64 %)"."""
    low, high = accuracy_interval(accuracy, images)
    return f"{accuracy * 100:.2f} % (95 % CI {low * 100:.2f}-{high * 100:.2f} %)"


def accuracy_lines(winner: dict, test_images: int) -> list[tuple[str, str]]:
    """(what, value) of the winner's three accuracies, each with its interval but the test
    part's, which chose the winner and is biased by that choice."""
    lines = []
    for key, label in ACCURACIES:
        if key == "test_accuracy":
            value = f"{winner[key] * 100:.2f} % (it chose the winner among {winner['candidates']}: "
            value += "biased upward by that choice, so no interval)"
        else:
            value = with_interval(winner[key], IMAGES[key])
        lines.append((label, value))
    return lines


def ensemble_line(ensemble: dict) -> str:
    official, part = ensemble["official_test"], ensemble["test_part"]
    return (
        f"The ensemble ({ensemble['rule']}: {', '.join(ensemble['members'])}): "
        f"{with_interval(official['accuracy'], official['images'])} on the official test set, "
        f"{with_interval(part['accuracy'], part['images'])} on the test part."
    )


def parameter_rows(params: dict) -> list[tuple[str, str]]:
    return [
        (key, PARAMETER_FORMATS[key].format(params[key]))
        for key in PARAMETER_FORMATS
        if key in params
    ]


def winner_html(winner: dict, ensemble=None, comparison=None, test_images=9000) -> str:
    params = "".join(
        f"<tr><th class='text'>{key}</th><td>{html.escape(value)}</td></tr>"
        for key, value in parameter_rows(winner["params"])
    )
    accuracies = "".join(
        f"<tr><th class='text'>{html.escape(label)}</th><td>{html.escape(value)}</td></tr>"
        for label, value in accuracy_lines(winner, test_images)
    )
    more = ""
    if comparison:
        more += f"<p class='note'>{html.escape(describe_comparison(comparison))}</p>"
    if ensemble:
        more += f"<p class='note'>{html.escape(ensemble_line(ensemble))}</p>"
    return _page(
        f"Winner: {winner['trial']}, {winner['official_test_accuracy']:.2%} on the official "
        "test set",
        f"<h3>Accuracy</h3><table>{accuracies}</table>"
        f"<p class='note'>{html.escape(winner['chosen_by'])}.</p>{more}"
        f"<h3>Hyper-parameters</h3><table>{params}</table>"
        f"<p class='note'>CV loss {winner['cv_loss']:.4f}; retrained for {winner['epochs']} "
        f"epochs; {winner['candidates']} candidates.</p>",
    )


def _with_optional(columns, rows: list[dict], after: str, names) -> tuple:
    """``columns`` with those of ``names`` that ``rows`` have, after the column ``after``."""
    present = [OPTIONAL_COLUMNS[n] for n in names if rows and n in rows[0]]
    at = [key for key, _, _ in columns].index(after) + 1
    return (*columns[:at], *present, *columns[at:])


def report_tables_stage(
    ranking_path,
    summary_path,
    winner_path,
    outputs,
    rungs_path=None,
    ensemble_path=None,
    comparison_path=None,
) -> None:
    """Rule report_tables: ``outputs.winner``, ``outputs.ranking``, ``outputs.retrained``;
    with successive halving ``outputs.rungs``, every rung's decisions."""
    winner = json.loads(Path(winner_path).read_text())
    ranking = _read_tsv(ranking_path)
    summary = _read_tsv(summary_path)
    ensemble = json.loads(Path(ensemble_path).read_text()) if ensemble_path else None
    comparison = json.loads(Path(comparison_path).read_text()) if comparison_path else None
    for row in summary:
        try:
            low, high = accuracy_interval(float(row["official_test_accuracy"]), 10_000)
            row["official_interval"] = f"{low * 100:.2f}-{high * 100:.2f} %"
        except ValueError:
            row["official_interval"] = ""
    write_text(outputs.winner, winner_html(winner, ensemble, comparison))
    columns = _with_optional(RANKING_COLUMNS, ranking, "L2", ["batch_size"])
    columns = _with_optional(columns, ranking, "status", ["rung", "score"])
    pruned = sum(row["status"] == "pruned" for row in ranking)
    write_text(
        outputs.ranking,
        _page(
            f"Ranking of all {len(ranking)} trials by CV loss"
            + (f" ({pruned} pruned by successive halving, after)" if pruned else ""),
            html_table(
                ranking, columns, lambda row: "winner" if row["trial"] == winner["trial"] else ""
            ),
        ),
    )
    if rungs_path:
        rungs = _read_tsv(rungs_path)
        write_text(
            outputs.rungs,
            _page(
                "Successive halving: every rung's decisions",
                html_table(rungs, RUNG_COLUMNS)
                + "<p class='note'>A rung trains each fold up to its budget and ranks every trial "
                "there by score (the mean over folds of the lowest validation loss so far; a "
                "trial whose folds all stopped early completes with its CV loss); those still "
                "training among the best 1/eta are promoted and go on from where they "
                "stopped.</p>",
            ),
        )

    def role(row):
        if row["winner"] == "True":
            return "winner"
        return "reference" if row["reference"] == "True" else ""

    write_text(
        outputs.retrained,
        _page(
            f"The {len(summary)} retrained networks (winner highlighted, references in italics)",
            html_table(
                summary, _with_optional(RETRAINED_COLUMNS, summary, "L2", ["batch_size"]), role
            )
            + "<p class='note'>The test part chose the winner, so its accuracy there is "
            "optimistic; the official test set's is the unbiased figure.</p>",
        ),
    )


def describe_comparison(comparison: dict) -> str:
    """The winner against the runner-up, and the ensemble against the winner (front page,
    README)."""
    if not comparison.get("runner_up"):
        return "There was no runner-up to compare the winner with."
    verdict = "within noise" if comparison["within_noise"] else "more than noise"
    text = (
        f"On the official test set the winner {comparison['winner']} is "
        f"{comparison['official_gap'] * 100:+.2f} points from the runner-up "
        f"{comparison['runner_up']} (each right where the other is wrong on "
        f"{comparison['only_winner_right']} and {comparison['only_runner_up_right']} of "
        f"{comparison['images']:,} images; McNemar's exact test p = "
        f"{comparison['mcnemar_p']:.2g}): {verdict}."
    )
    ensemble = comparison.get("ensemble")
    if ensemble:
        verdict = "within noise" if ensemble["within_noise"] else "more than noise"
        text += (
            f" The ensemble is {ensemble['gap'] * 100:+.2f} points from the winner (right "
            f"where the winner is wrong on {ensemble['only_first_right']} images, wrong where "
            f"it is right on {ensemble['only_second_right']}; p = {ensemble['mcnemar_p']:.2g}): "
            f"{verdict}."
        )
    return text


def front_page(workdir=".") -> dict | None:
    """What the report's front page shows of the results: the winner, the number of trials
    ranked and retrained. None before select_winner has run."""
    workdir = Path(workdir)
    paths = {
        "winner": workdir / layout.output("select_winner", "winner"),
        "ranking": workdir / layout.output("rank_trials", "ranking"),
        "summary": workdir / layout.output("select_winner", "summary"),
    }
    if not all(path.exists() for path in paths.values()):
        return None
    winner = json.loads(paths["winner"].read_text())
    ranking = _read_tsv(paths["ranking"])
    summary = _read_tsv(paths["summary"])
    extra = {}
    for name, output in (("ensemble", "summary"), ("comparison", "comparison")):
        path = workdir / layout.output("build_ensemble", output)
        extra[name] = json.loads(path.read_text()) if path.exists() else None
    return {
        "winner": winner,
        "params": parameter_rows(winner["params"]),
        "accuracies": accuracy_lines(winner, 9000),
        "ensemble": ensemble_line(extra["ensemble"]) if extra["ensemble"] else None,
        "comparison": describe_comparison(extra["comparison"]) if extra["comparison"] else None,
        "n_ranked": len(ranking),
        "n_diverged": sum(row["status"] != "ok" for row in ranking),
        "n_retrained": len(summary),
        "epochs": winner["epochs"],
    }


# Keys whose values decide the results (mnist_dir and device do not: the data are checked by
# MD5, and the device changes rounding only).
RESULT_KEYS = ("seed", "test_fraction", "search", "final", "figures")


def results_mismatch(config: dict, workdir=".") -> list[str]:
    """How the results in ``workdir`` differ from what ``config`` would make: the keys whose
    values differ from the results' config (``results/run_config.yaml``, written when a run of
    the whole workflow ends well), a missing one beside results, and a ranking whose length is
    not ``search.n_trials``. Empty when they match."""
    import yaml

    workdir = Path(workdir)
    problems = []
    run_config_path = workdir / layout.RESULTS_CONFIG
    if (
        not run_config_path.exists()
        and (workdir / layout.output("select_winner", "winner")).exists()
    ):
        problems.append(
            "results/run_config.yaml is missing: the last run did not end well or was given "
            "some targets only, so the results may come from several configurations. Run the "
            "whole workflow to the end with the config you want reported (the last run's is "
            "results/run_config.started.yaml), then make the HTML summary (`make summary`)."
        )
    if run_config_path.exists():
        made_with = yaml.safe_load(run_config_path.read_text())
        problems += [
            f"{key}: the results were made with {made_with.get(key)!r}, this config has "
            f"{config.get(key)!r}"
            for key in RESULT_KEYS
            if made_with.get(key) != config.get(key)
        ]
    ranking = workdir / layout.output("rank_trials", "ranking")
    if ranking.exists():
        ranked = len(_read_tsv(ranking))
        if ranked != config["search"]["n_trials"]:
            problems.append(
                f"search.n_trials: the ranking holds {ranked} trials, this config has "
                f"{config['search']['n_trials']}"
            )
    return problems


BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
# Headless and quiet: no sandbox (root in containers), no GPU, and none of the background
# connections that a machine without internet refuses.
BROWSER_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--virtual-time-budget=10000",  # let the report's scripts render the page first
)


def find_browser() -> str | None:
    import shutil

    return next((path for name in BROWSERS if (path := shutil.which(name))), None)


def render(report_html, screenshot=None, size=(1400, 1000), timeout=120) -> str:
    """The report as a user sees it, in a headless Chromium: the page's text after its scripts
    ran, and (``screenshot``) a PNG of the window. Raises FileNotFoundError without a browser."""
    import subprocess
    import tempfile

    browser = find_browser()
    if browser is None:
        raise FileNotFoundError(f"no headless browser found (looked for {', '.join(BROWSERS)})")
    url = Path(report_html).resolve().as_uri()
    with tempfile.TemporaryDirectory() as profile:
        flags = [browser, *BROWSER_FLAGS, f"--user-data-dir={profile}"]
        flags.append(f"--window-size={size[0]},{size[1]}")
        dom = subprocess.run(
            [*flags, "--dump-dom", url], capture_output=True, text=True, timeout=timeout
        ).stdout
        if screenshot is not None:
            subprocess.run(
                [*flags, f"--screenshot={Path(screenshot).resolve()}", url],
                capture_output=True,
                timeout=timeout,
                check=True,
            )
    return dom


def main(argv=None) -> int:
    """``python -m mnist_mlp.report REPORT.html PICTURE.png``: a picture of the report's front
    page, as a headless Chromium shows it (``make summary`` runs it)."""
    import sys

    report_html, picture = argv if argv is not None else sys.argv[1:]
    try:
        render(report_html, picture)
    except FileNotFoundError as err:
        print(f"{err}: no picture of the report made", file=sys.stderr)
        return 0
    print(f"{picture}: the report's front page as a browser shows it")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
