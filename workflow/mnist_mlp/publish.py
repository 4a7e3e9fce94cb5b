"""A compact, committed copy of a run's results for readers: tables, the winner, the ensemble,
the figures and the cost per stage (no models, no data).

    python -m mnist_mlp.publish RUN_DIR docs/full_run [--top 15] [--readme README.md]

(``mnist-mlp run publish NAME`` calls it for a run of ``mnist_mlp.runs``.)

RUN_DIR is a run's working directory. A run still in progress is published as far as it got:
the trials finished so far ranked among themselves (``ranking_so_far.tsv``; with halving, those
a rung pruned or that completed), and the cost of the finished jobs beside the whole
protocol's projection. A ranking, winner or ensemble on disk that is not yet this run's (a
restored state's, kept until the run redoes them: ``make progress`` tells) is not published.
Writes ``summary.md`` (where the run stands, the ranking, the retrained networks and the winner
against the report's 97.93 %, the figures, the cost), the TSV/JSON files and the PNGs; the
search overview is drawn again with this checkout's code. ``--readme`` writes the same text
into the README, between its ``full-run`` markers.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import re
import shutil
import statistics
import sys
import textwrap
from datetime import datetime
from pathlib import Path

from . import layout
from .io import read_json, read_table, read_tsv, write_table
from .progress import THREADS, collect, duration, load_config
from .ranking import build_ranking
from .records import job_seconds, rule_spans
from .report import describe_comparison
from .stats import accuracy_interval
from .trials import TRAINING_HYPERPARAMETERS

# The results copied as they are (tables and the small JSON files; no networks, no data).
COPIED = (
    *layout.outputs("sample_trials").values(),
    *layout.outputs("rank_trials", halving=True).values(),
    layout.output("select_winner", "summary"),
    layout.output("select_winner", "winner"),
    layout.output("build_ensemble", "summary"),
    layout.output("build_ensemble", "comparison"),
    layout.output("plot_gradient_ascent", "stats"),
    layout.output("plot_importance", "table"),
    layout.RESULTS_CONFIG,
)
RANKING = layout.output("rank_trials", "ranking")
RUNGS = layout.outputs("rank_trials", halving=True)["rungs"]
SUMMARY = layout.output("select_winner", "summary")
WINNER = layout.output("select_winner", "winner")

RESULTS = {  # each training rule's result, which records the threads its job ran with
    "cross_validate": layout.output("cross_validate", "cv"),
    "train_rung": layout.output("train_rung", "result"),
    "retrain": layout.output("retrain", "metrics"),
}


def number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return math.nan


def benchmarks(run: Path, rule: str, trials=None) -> list[dict]:
    """Each finished job's benchmark row, its threads, and the time it computed (of ``trials``
    only, where given)."""
    pattern = layout.benchmark(rule, trial="*", rung="*")
    rows = []
    for path in sorted(run.glob(pattern)):
        with open(path, newline="") as handle:
            row = next(csv.DictReader(handle, delimiter="\t"), None)
        if row is None:
            continue  # written by a job that did not finish
        # "NA" where Snakemake took no sample (a job shorter than a second): NaN
        relative = str(path.relative_to(run))
        wildcards = _wildcards(layout.benchmark(rule, trial="{trial}", rung="{rung}"), relative)
        if trials is not None and wildcards.get("trial", path.stem) not in trials:
            continue
        job = {
            "trial": wildcards.get("trial", path.stem),
            **{key: number(row[key]) for key in ("s", "max_rss", "cpu_time")},
        }
        if "rung" in wildcards:
            job["rung"] = int(wildcards["rung"])
        result = run / RESULTS[rule].format(**wildcards)
        job["threads"] = int(read_json(result).get("threads", 1)) if result.exists() else 1
        job["computed"] = job_seconds(job["s"], job["cpu_time"], job["threads"])
        rows.append(job)
    return rows


def _wildcards(pattern: str, path: str) -> dict[str, str]:
    parts = re.split(r"\{(\w+)\}", pattern)
    regex = "".join(
        re.escape(part) if i % 2 == 0 else f"(?P<{part}>[^/]+)" for i, part in enumerate(parts)
    )
    match = re.fullmatch(regex, path)
    return match.groupdict() if match else {}


def cost_table(run: Path, progress=None) -> list[dict]:
    """Per training rule: its finished jobs' time, CPU time, peak memory and stage span. With
    ``progress``, the jobs of this run's trials and retrainings only: a restored state brings
    those of the run it came from (with TPE, another search's trials under the same ids)."""
    from .runs import first_start, settings_of

    settings = settings_of(run)
    # a restored state's logs tell when the run it came from ran its jobs
    spans = rule_spans(run, first_start(settings) if settings.get("restored") else None)
    rows = []
    for rule in RESULTS:
        trials = None
        if progress:
            trials = progress.retrained_trials if rule == "retrain" else progress.search_trials
        jobs = benchmarks(run, rule, trials)
        if not jobs:
            continue
        # a paused job (SIGSTOP, while this machine measured something else) counts the time
        # it computed
        computed = [job["computed"] for job in jobs]
        span = spans.get(rule)
        rows.append(
            {
                "rule": rule,
                "jobs": len(jobs),
                "threads": "/".join(map(str, sorted({job["threads"] for job in jobs}))),
                "job_wall_s_sum": round(sum(job["s"] for job in jobs), 1),
                "job_s_less_pauses_sum": round(sum(computed), 1),
                "core_s_less_pauses_sum": round(
                    sum(job["computed"] * job["threads"] for job in jobs), 1
                ),
                "core_hours_less_pauses": round(
                    sum(job["computed"] * job["threads"] for job in jobs) / 3600, 2
                ),
                "cpu_hours": round(sum(job["cpu_time"] for job in jobs) / 3600, 2),
                "job_s_less_pauses_median": round(statistics.median(computed), 1),
                "job_s_less_pauses_min": round(min(computed), 1),
                "job_s_less_pauses_max": round(max(computed), 1),
                "peak_rss_mb_max": round(max(job["max_rss"] for job in jobs)),
                "stage_wall_s": round((span[1] - span[0]).total_seconds()) if span else "",
            }
        )
    return rows


def cell(value, form: str) -> str:
    if isinstance(value, bool):  # the winner and reference columns
        return "**yes**" if value else ""
    if isinstance(value, float) and math.isnan(value):  # no CV loss: a reference
        return "-"
    return form.format(value)


def markdown_table(table, columns: list[str], formats: dict[str, str]) -> str:
    head = "| " + " | ".join(columns) + " |\n| " + " | ".join("---" for _ in columns) + " |\n"
    lines = []
    for row in table.to_dict("records"):
        cells = [cell(row[c], formats.get(c, "{}")) for c in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return head + "\n".join(lines)


FORMATS = {
    "dropout": "{:.3f}",
    "lr": "{:.2e}",
    "L2": "{:.2e}",
    "mean_loss": "{:.4f}",
    "std_loss": "{:.4f}",
    "mean_accuracy": "{:.2%}",
    "mean_epochs": "{:.1f}",
    "cv_loss": "{:.4f}",
    "test_accuracy": "{:.2%}",
    "official_test_accuracy": "{:.2%}",
    "whole_dataset_accuracy": "{:.2%}",
}


WIDTH = 95
REPORT_ACCURACY = 0.9793  # the report's winner's test accuracy
BEGIN = "<!-- full-run:begin (written by mnist_mlp.publish --readme; edits here are lost) -->"
BEGIN_PREFIX = "<!-- full-run:begin"
END = "<!-- full-run:end -->"


def measured_cells(row: dict) -> tuple[str, ...]:
    """A training rule's measured cells of the cost table."""
    mean = row["job_s_less_pauses_sum"] / row["jobs"]
    return (
        f"{row['jobs']} ({row['threads']} thread{'s' * (row['threads'] != '1')} each)",
        f"{mean:,.0f} s, {row['job_s_less_pauses_median']:,.0f} s, "
        f"{row['job_s_less_pauses_min']:,.0f}-{row['job_s_less_pauses_max']:,.0f} s; "
        f"{row['core_hours_less_pauses']} core-hours in all",
        f"{row['cpu_hours']} h",
        f"{row['peak_rss_mb_max']:,} MB",
        f"{duration(row['stage_wall_s'])} (first start to last end, pauses included)"
        if row["stage_wall_s"] != ""
        else "",
    )


def projection(cost_rows: list[dict], progress) -> str:
    """The cost table: each stage measured so far beside the whole protocol's projection (its
    jobs times the mean core-seconds of the finished ones once all have finished, else times
    ``make progress``'s mean per job: the finished ones as measured, the rest estimated)."""
    measured = {row["rule"]: row for row in cost_rows}
    estimates = {part.name: part.per_job for part in progress.parts}
    jobs_left = {part.name: part.jobs_left for part in progress.parts}
    lines = [
        "| stage | jobs done | measured: compute time per job, less pauses and waits (mean, "
        "median, range) | CPU time | peak memory | stage wall time | projection for the whole "
        "protocol |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    total = 0.0
    stages = [
        ("cross_validate", "search", progress.trials),
        ("retrain", "final", progress.retrainings),
    ]
    if "train_rung" in measured:  # successive halving: rungs instead of CV jobs
        stages[0] = ("train_rung", "search", None)
    for rule, part, count in stages:
        if count is None:  # as many jobs as the rungs' decisions make
            row = measured[rule]
            spent = row["core_s_less_pauses_sum"]
            if jobs_left.get(part) and estimates.get(part) is not None:
                more = jobs_left[part] * estimates[part] * THREADS[rule]
                total += spent + more
                shown = (
                    f"{spent / 3600:.1f} core-hours measured + about {jobs_left[part]:,} rung jobs "
                    f"left × {estimates[part] * THREADS[rule]:,.0f} core-s (`make progress`, at "
                    f"most) = **{(spent + more) / 3600:.1f} core-hours**"
                )
            else:
                total += spent
                shown = f"the jobs the rungs made, measured: **{spent / 3600:.1f} core-hours**"
            lines.append(f"| `{rule}` | " + " | ".join(measured_cells(row)) + f" | {shown} |")
            continue
        row = measured.get(rule)
        if row:
            per = row["core_s_less_pauses_sum"] / row["jobs"]
            basis = "the measured mean"
            if row["jobs"] < count and estimates.get(part) is not None:
                # the first to finish are the small networks: the rest by their own estimates
                per = estimates[part] * THREADS[rule]
                basis = f"{row['jobs']} measured, the rest estimated by `make progress`"
            cells = measured_cells(row)
        else:
            per = estimates.get(part)
            per = per * THREADS[rule] if per is not None else None
            basis = "estimated by `make progress`"
            cells = ("0", "not started", "", "", "")
        if per is None:
            total = math.nan
            shown = "not known yet"
        else:
            total += count * per
            shown = (
                f"{count} × {per:,.0f} core-s ({basis}) = **{count * per / 3600:.1f} core-hours**"
            )
        lines.append(f"| `{rule}` | " + " | ".join(cells) + f" | {shown} |")
    eta = progress.eta
    left = f"; time left on this machine: {duration(eta)} (`make progress`)" if eta else ""
    whole = "not known yet" if math.isnan(total) else f"≈ **{total / 3600:.0f} core-hours**{left}"
    lines.append(f"| both training stages | | | | | | {whole} |")
    return "\n".join(lines)


def answer_table(run: Path) -> str | None:
    """The answer in one table: the winner, its runner-up, the CV's best, the ensembles and the
    references, each accuracy with its 95 % interval on the images it was measured on (the
    winner's test-part accuracy chose it, so it gets none)."""
    if not (run / layout.output("build_ensemble", "summary")).exists():
        return None
    ensemble = read_json(run / layout.output("build_ensemble", "summary"))
    comparison = read_json(run / layout.output("build_ensemble", "comparison"))
    winner = read_json(run / WINNER)
    summary = read_table(run / SUMMARY)
    best_cv = summary[~summary["reference"]].sort_values("cv_loss").iloc[0]["trial"]
    lines = [
        "| network | what it is | official test set, 10,000 images: accuracy (95 % interval) "
        "| test part, 9,000 images |",
        "| --- | --- | --- | --- |",
    ]

    def interval(measured: dict) -> str:
        low, high = accuracy_interval(measured["accuracy"], measured["images"])
        return f"{measured['accuracy'] * 100:.2f} % ({low * 100:.2f}-{high * 100:.2f})"

    roles = {winner["trial"]: "the winner (best on the test part)"}
    if comparison.get("runner_up"):
        roles.setdefault(comparison["runner_up"], "the runner-up on the test part")
    roles.setdefault(best_cv, "the best in cross-validation")
    for trial, role in roles.items():
        measured = ensemble["candidates"][trial]
        part = measured["test_part"]
        shown = (
            f"{part['accuracy'] * 100:.2f} % (it chose the winner: biased, no interval)"
            if trial == winner["trial"]
            else interval(part)
        )
        lines.append(f"| {trial} | {role} | {interval(measured['official_test'])} | {shown} |")
    for variant in ensemble["variants"]:
        members = variant["members"]
        name = f"ensemble of {len(members)}"
        what = f"{variant['rule']} ({', '.join(members) if len(members) <= 5 else 'all'})"
        if members == ensemble["members"]:
            name, what = f"**{name}**", f"{what}; the default (`final.ensemble`)"
        lines.append(
            f"| {name} | mean softmax of {what} | {interval(variant['official_test'])} | "
            f"{interval(variant['test_part'])} |"
        )
    for row in summary[summary["reference"]].to_dict("records"):
        official = {"accuracy": row["official_test_accuracy"], "images": 10_000}
        part = {"accuracy": row["test_accuracy"], "images": 9_000}
        lines.append(
            f"| {row['trial']} | a reference, never eligible | {interval(official)} | "
            f"{interval(part)} |"
        )
    return "\n".join(lines) + "\n\n" + describe_comparison(comparison)


def answered(progress) -> bool:
    """Whether the run's winner, retrained networks and ensemble on disk are its own: a
    restored state's (another search's) stay on disk until this run redoes them."""
    return progress.stage in ("figures", "done")


def ranking_of(run: Path, progress):
    """The run's ranking (once its search is done: a restored state's ranking of another
    search stays on disk until then), or the finished trials ranked among themselves (with
    halving: those a rung pruned or that completed); and whether it is the run's own."""
    if progress.retrainings_known:
        return read_table(run / RANKING), True
    finished = [read_json(run / path) for path in progress.finished_results.values()]
    return build_ranking(finished), False


FIGURES = (  # (file, alt text) in the order a reader wants them
    ("learning_curves.png", "Learning curves of the retrained networks"),
    ("receptive_fields_layer1.png", "Receptive fields, first hidden layer"),
    ("receptive_fields_layer2.png", "Receptive fields, second hidden layer"),
    ("receptive_fields_output.png", "Receptive fields, output neurons"),
    ("gradient_ascent_layer1.png", "Gradient ascent, first hidden layer"),
    ("gradient_ascent_layer2.png", "Gradient ascent, second hidden layer"),
    ("gradient_ascent_output.png", "Gradient ascent, output neurons"),
)


def status_line(run: Path, progress) -> str:
    stamp = datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    done = "finished (pruned or through their last rung)" if progress.rungs else "cross-validated"
    counts = (
        f"{progress.cross_validated} of {progress.trials} trials {done}, "
        f"{progress.retrained} of {progress.retrainings} retrainings done"
    )
    if progress.stage == "done":
        return f"**Status: finished** (published {stamp})."
    if progress.running:
        return f"**Status: in progress, {counts} ({stamp}).**"
    return f"**Status: unfinished, {counts}** ({stamp}; Snakemake is not running)."


def provenance(run: Path, progress) -> str:
    from .runs import settings_of

    settings = settings_of(run)
    commit = settings["commit"][:7] if settings else run.name
    devices = {
        read_json(path).get("device", "cpu")
        for path in sorted(run.glob(layout.output("cross_validate", "cv").format(trial="t*")))[:5]
    }
    where = f"Commit `{commit}`, {progress.cores} cores, device {'/'.join(sorted(devices))}"
    where += "".join(f"; {start}" for start in settings.get("starts", []))
    if settings.get("restored"):
        where += f"; restored first: {settings['restored']}"
    return where + "."


def section(
    run: Path, out: Path, prefix: str, top: int, compact: bool = False, progress=None
) -> str:
    """The text about the run. Full (``summary.md``): where it stands and where it ran, the
    answer, the ranking, the retrained networks, the figures, the cost beside the projection.
    Compact (the README, whose first screen shows a figure already): where it stands, the
    answer, a link to the full text.
    Image links start with ``prefix`` (the published copy's folder as seen from the text)."""
    progress = progress or collect(run)
    config, _ = load_config(run)
    parts = [status_line(run, progress)]
    answer = answer_table(run) if answered(progress) else None
    if compact:
        if answer:
            parts.append(answer)
        parts.append(
            f"The ranking, every retrained network, all the figures, the cost per stage and "
            f"where the run ran: [{prefix}summary.md]({prefix}summary.md)."
        )
        return wrap(parts)
    parts.append(provenance(run, progress))
    if (out / "provenance.md").exists():
        parts.append("How this run came to be, step by step: [provenance.md](provenance.md).")
    if answer:
        parts.append(
            "The answer: each accuracy with its 95 % interval (Wilson) on the images it was "
            "measured on.\n\n" + answer
        )
    ranking, ranked = ranking_of(run, progress)
    so_far = "" if ranked else f" of the {len(ranking)} finished so far"
    shown = ranking.head(top)
    columns = ["rank", "trial", "Nh1", "Nh2", "dropout", "optimizer", "lr", "L2", "mean_loss"]
    columns += ["std_loss", "mean_accuracy", "mean_epochs"]
    if ranking.empty:
        parts.append(
            "No trial has finished yet"
            + (
                " (with halving, a trial finishes when a rung prunes it or it completes)."
                if progress.rungs
                else "."
            )
        )
    else:
        parts.append(
            f"The best {len(shown)} trials{so_far}, by mean held-out cross-entropy over the "
            f"{config['search']['folds']} folds (`mean_accuracy`: the CV accuracy; `mean_epochs`: "
            "where early stopping ended the folds):\n\n" + markdown_table(shown, columns, FORMATS)
        )
    if (out / "search_overview.png").exists():
        parts.append(
            f"![The CV loss of the {len(ranking)} trials against each hyper-parameter]"
            f"({prefix}search_overview.png)"
        )
    if (out / "importance.png").exists():
        parts.append(f"![Which hyper-parameters mattered (fANOVA)]({prefix}importance.png)")
    summary_path = run / SUMMARY
    if summary_path.exists() and answered(progress):
        summary = read_table(summary_path)
        summary["official_95_ci"] = [
            "{:.2f}-{:.2f} %".format(*(100 * x for x in accuracy_interval(a, 10_000)))
            if a == a
            else "-"
            for a in summary["official_test_accuracy"]
        ]
        columns = ["trial", "winner", "reference", "Nh1", "Nh2", "dropout", "optimizer", "lr"]
        columns += ["L2", "cv_loss", "test_accuracy", "official_test_accuracy", "official_95_ci"]
        columns += ["whole_dataset_accuracy"]
        references = len(config["final"].get("references") or {})
        parts.append(
            f"The retrained networks (the top {config['final']['top_k']} and "
            f"{references} reference{'s' * (references != 1)}, {config['final']['epochs']} "
            "epochs on the whole training part), the winner marked; the test part chose the "
            "winner, so its accuracy there is optimistic, the official test set's is not:\n\n"
            + markdown_table(summary, columns, FORMATS)
        )
        parts += [f"![{text}]({prefix}{name})" for name, text in FIGURES if (out / name).exists()]
    elif ranked and progress.retrained:  # the final stage in progress: the retrainings so far
        from .winner import candidates_table

        metrics = {
            path.parent.name: read_json(path)
            for path in sorted(run.glob(layout.output("retrain", "metrics").format(trial="*")))
        }
        table = candidates_table(metrics, ranking).sort_values(["reference", "cv_loss"])
        columns = ["trial", "reference", "Nh1", "Nh2", "dropout", "optimizer", "lr", "L2"]
        columns += ["cv_loss", "test_accuracy", "official_test_accuracy"]
        columns += ["whole_dataset_accuracy"]
        parts.append(
            f"The {len(table)} networks retrained so far ({config['final']['epochs']} epochs on "
            "the whole training part); the winner is chosen when all are:\n\n"
            + markdown_table(table, columns, FORMATS)
        )
    table = projection(cost_table(run, progress), progress)
    parts.append("**Cost**, from the finished jobs' `benchmarks/`:\n\n" + table)
    return wrap(parts)


def wrap(parts: list[str]) -> str:
    """Paragraphs wrapped as the rest of the README; tables and images as they are."""
    paragraphs = "\n\n".join(parts).split("\n\n")
    wrapped = [p if p.startswith(("|", "!")) else textwrap.fill(p, WIDTH) for p in paragraphs]
    return "\n\n".join(wrapped) + "\n"


def search_core_hours(run: Path, progress=None) -> float:
    """The core-hours of a run's search: its CV jobs, or its halving rungs (a published run:
    from its cost.tsv)."""
    published = run / "cost.tsv"
    if published.is_file():
        rows = read_tsv(published)
    else:
        rows = cost_table(run, progress or collect(run))
    searched = [row for row in rows if row["rule"] in ("cross_validate", "train_rung")]
    return sum(float(row["core_s_less_pauses_sum"]) for row in searched) / 3600


def result_of(run: Path, name: str) -> Path:
    """The result ``name`` (its path in a run folder) of ``run``: a run folder, or a run
    published by ``main`` (docs/NAME, the results under their own names), so that the full
    run's published tables serve as the reference wherever its run folder is gone."""
    path = run / name
    return path if path.exists() else run / Path(name).name


def candidates_by_cv(summary):
    """The retrained candidates (no references), best CV loss first."""
    return summary[~summary["reference"]].sort_values("cv_loss")


def comparison(run: Path, reference: Path, out: Path, top: int = 15, progress=None) -> str:
    """This run against a reference run of the same trials or budget (the full run): search
    cost, what the search found, what its retrained top k reach. With another sampler, also
    the best CV loss after n trials of each (``best_so_far.png``). ``progress``: the run's,
    where collected already."""
    ranking, ref_ranking = read_table(run / RANKING), read_table(result_of(reference, RANKING))
    config, _ = load_config(run)
    ref_config, _ = load_config(reference, [result_of(reference, layout.RESULTS_CONFIG)])
    ours, theirs = search_core_hours(run, progress), search_core_hours(reference)
    # a restored state's retrained networks (another search's) stay on disk until redone
    retrained = (run / SUMMARY).exists() and (progress is None or answered(progress))
    kept = len(set(ranking.head(top)["trial"]) & set(ref_ranking.head(top)["trial"]))
    rows = [
        (
            "search",
            f"{config['search']['sampler']}, pruning {config['search']['pruning']}",
            f"{ref_config['search']['sampler']}, pruning {ref_config['search']['pruning']}",
        ),
        ("trials", str(len(ranking)), str(len(ref_ranking))),
        (
            "search cost (core-hours computed: each job's CPU time, + 15 s for Snakemake's "
            "last sample, at most its wall time)",
            f"{ours:.2f} ({ours / theirs:.0%})" if theirs > 0 else f"{ours:.2f}",
            f"{theirs:.2f}",
        ),
        (
            "best CV loss (trial)",
            f"{ranking['mean_loss'].min():.4f} ({ranking.iloc[0]['trial']})",
            f"{ref_ranking['mean_loss'].min():.4f} ({ref_ranking.iloc[0]['trial']})",
        ),
    ]
    same_trials = config["search"]["sampler"] == ref_config["search"]["sampler"]
    if same_trials:  # another sampler's trial ids name other trials
        rows.append(
            (f"of the reference's best {top}, in this run's best {top}", f"{kept}", f"{top}")
        )
    if retrained:
        mine = candidates_by_cv(read_table(run / SUMMARY))
        k = len(mine)
        ref = candidates_by_cv(read_table(result_of(reference, SUMMARY))).head(k)
        rows.append(
            (
                f"official accuracy, mean of the top {k} by CV retrained",
                f"{mine['official_test_accuracy'].mean():.2%} ({', '.join(mine['trial'])})",
                f"{ref['official_test_accuracy'].mean():.2%} ({', '.join(ref['trial'])})",
            )
        )
        winner, ref_winner = read_json(run / WINNER), read_json(result_of(reference, WINNER))
        rows.append(
            (
                "winner, official accuracy",
                f"{winner['trial']}, {winner['official_test_accuracy']:.2%}",
                f"{ref_winner['trial']}, {ref_winner['official_test_accuracy']:.2%}",
            )
        )
    table = "| | this run | the full run |\n| --- | --- | --- |\n" + "\n".join(
        f"| {what} | {a} | {b} |" for what, a, b in rows
    )
    if (run / RUNGS).exists():
        table += "\n\n" + rungs_table(run, theirs) + "\n\n" + fates_table(ranking, ref_ranking, top)
    if not same_trials:
        from .figures import plot_best_so_far

        summaries = None
        if retrained:
            summaries = read_table(run / SUMMARY), read_table(result_of(reference, SUMMARY))
        table += "\n\n" + equal_budget_table(ranking, ref_ranking, summaries)

        plot_best_so_far(
            {
                f"{config['search']['sampler']} (this run)": ranking,
                f"{ref_config['search']['sampler']} (the full run)": ref_ranking,
            },
            out / "best_so_far.png",
        )
        table += "\n\n![The best CV loss after n trials](best_so_far.png)"
    return table


def equal_budget_table(ranking, ref_ranking, summaries=None, step: int = 10) -> str:
    """Another sampler against the reference at equal budget: the best CV loss after n trials
    (every ``step`` and at the end) of this run and of the reference's first trials, in the
    order they were drawn; with ``summaries`` (this run's and the reference's retrained), the
    top k by CV of each's first n retrained, and the winner among them by the lab's rule,
    where the reference retrained all of its k."""
    from .ranking import best_so_far
    from .winner import select_winner

    n = len(ranking)
    theirs = ref_ranking.sort_values("trial").head(n)
    curves = best_so_far(ranking), best_so_far(theirs)

    def best(curve, count: int) -> str:
        if count not in curve.index or curve.loc[count, "trial"] is None:
            return "-"
        return f"{curve.loc[count, 'mean_loss']:.4f} ({curve.loc[count, 'trial']})"

    counts = sorted({*range(step, n, step), n})
    lines = [
        f"At equal budget: this run's {n} trials against the full run's first {n} (drawn from "
        "the same seed; one seed each is one draw, not a distribution):",
        "",
        "| trials so far | best CV loss, this run | best CV loss, the full run's first trials |",
        "| --- | --- | --- |",
        *(f"| {count} | {best(curves[0], count)} | {best(curves[1], count)} |" for count in counts),
    ]
    if summaries is None:
        return "\n".join(lines)
    summary, ref_summary = summaries
    ours = candidates_by_cv(summary)
    k = len(ours)
    top = theirs.dropna(subset=["mean_loss"]).sort_values("mean_loss").head(k)["trial"]
    retrained = ref_summary[ref_summary["trial"].isin(top)]

    def answer(table) -> tuple[str, str]:
        mean = f"{table['official_test_accuracy'].mean():.2%} ({', '.join(table['trial'])})"
        winner = select_winner(table).iloc[0]
        return mean, f"{winner['trial']}, {winner['official_test_accuracy']:.2%}"

    mean, winner = answer(ours)
    if len(retrained) == len(top):
        ref_mean, ref_winner = answer(candidates_by_cv(retrained))
    else:
        ref_mean = ref_winner = f"not all retrained there ({', '.join(top)})"
    lines += [
        "",
        f"| the top {k} by CV of these {n}, retrained for the protocol's epochs | this run "
        "| the full run's first trials |",
        "| --- | --- | --- |",
        f"| official accuracy, their mean | {mean} | {ref_mean} |",
        f"| their winner (best on the test part), official accuracy | {winner} | {ref_winner} |",
    ]
    return "\n".join(lines)


def rungs_table(run: Path, reference_hours: float) -> str:
    """Successive halving, rung by rung: the epochs per fold, the jobs, what the rung decided
    and what its jobs cost (share of the reference's search)."""
    decisions = read_table(run / RUNGS)
    seconds: dict[int, float] = {}
    for job in benchmarks(run, "train_rung"):
        seconds[job["rung"]] = seconds.get(job["rung"], 0.0) + job["computed"] * job["threads"]
    lines = [
        "| rung | epochs per fold | jobs | promoted | pruned | complete | diverged "
        "| core-hours (share of the full run's search) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for rung, rows in decisions.groupby("rung"):
        count = rows["decision"].value_counts()
        hours = seconds.get(int(rung), 0.0) / 3600
        cells = [str(rung), str(rows["budget"].iloc[0]), str(len(rows))]
        cells += [str(count.get(d, 0)) for d in ("promoted", "pruned", "complete", "diverged")]
        share = f"{hours / reference_hours:.0%}" if reference_hours > 0 else "-"
        cells.append(f"{hours:.2f} ({share})")
        lines.append("| " + " | ".join(cells) + " |")
    return (
        "Rung by rung (`results/search/rungs.tsv`; complete: early stopping ended every fold "
        "there):\n\n" + "\n".join(lines)
    )


def fates_table(ranking, ref_ranking, top: int) -> str:
    """Where the reference's best ``top`` trials went in a halving run: their rank there, or
    the rung that pruned them and their score at it; "not drawn" where this run has no trial
    of the same hyper-parameters under that id (another sampler)."""
    names = [n for n in TRAINING_HYPERPARAMETERS if n in ranking and n in ref_ranking]
    mine = ranking.set_index("trial")
    lines = [
        "| the full run's rank | trial | lr | CV loss there | this run |",
        "| --- | --- | --- | --- | --- |",
    ]
    for row in ref_ranking.head(top).to_dict("records"):
        here = mine.loc[row["trial"]] if row["trial"] in mine.index else None
        if here is None or any(here[n] != row[n] for n in names):
            fate = "not drawn"
        elif here["status"] == "ok":
            fate = f"rank {here['rank']}, CV loss {here['mean_loss']:.4f}"
        else:  # pruned, or diverged
            fate = f"{here['status']} at rung {here['rung']} ({here['budget']} epochs)"
            fate += f", score {here['score']:.4f}" if here["status"] == "pruned" else ""
        cells = [str(row["rank"]), row["trial"], f"{row['lr']:.2e}", f"{row['mean_loss']:.4f}"]
        lines.append("| " + " | ".join([*cells, fate]) + " |")
    return f"The full run's best {top}, in this run:\n\n" + "\n".join(lines)


def splice(readme: Path, text: str) -> None:
    content = readme.read_text()
    if BEGIN_PREFIX not in content or END not in content:
        sys.exit(f"{readme} has no {BEGIN_PREFIX} ... {END} block to write")
    head, rest = content.split(BEGIN_PREFIX, 1)
    _, tail = rest.split(END, 1)
    readme.write_text(f"{head}{BEGIN}\n\n{text}\n{END}{tail}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--top", type=int, default=15, help="rows of the ranking shown")
    parser.add_argument("--readme", type=Path, help="also write the section into this README")
    parser.add_argument(
        "--against",
        type=Path,
        help="a reference run to compare this one with: its folder, or its published folder "
        "(docs/full_run)",
    )
    args = parser.parse_args(argv)
    run, out = args.run.resolve(), args.out
    out.mkdir(parents=True, exist_ok=True)
    progress = collect(run)
    # a restored state's files of another search stay on disk until this run redoes them
    config, _ = load_config(run)
    sampled = set(layout.outputs("sample_trials").values())
    # the random sampler's trials table is the run's first job; TPE's waits for its last batch
    own = sampled if config["search"]["sampler"] == "random" else set()
    if progress.retrainings_known:
        own |= sampled | set(layout.outputs("rank_trials", halving=True).values())
    for name in COPIED if answered(progress) else own:
        if (run / name).exists():
            shutil.copy2(run / name, out / Path(name).name)
    if answered(progress):
        for png in (run / Path(layout.output("plot_search", "figure")).parent).glob("*.png"):
            shutil.copy2(png, out / png.name)
    ranking, ranked = ranking_of(run, progress)
    if not ranked:
        write_table(ranking, out / "ranking_so_far.tsv")
    else:  # superseded by ranking.tsv
        (out / "ranking_so_far.tsv").unlink(missing_ok=True)
    if ranking.empty:  # no trial finished yet: nothing to draw
        (out / "search_overview.png").unlink(missing_ok=True)
    elif (run / SUMMARY).exists() and answered(progress):
        from .figures import plot_search_stage

        plot_search_stage(run / RANKING, run / SUMMARY, out / "search_overview.png")
    else:  # no retrained trials and no winner yet: the trials so far
        import pandas as pd

        from .figures import plot_search_overview

        nobody = pd.DataFrame({"trial": [], "reference": [], "winner": []}).astype(
            {"reference": bool, "winner": bool}
        )
        plot_search_overview(ranking, nobody, out / "search_overview.png")
    write_table(cost_table(run, progress), out / "cost.tsv")
    title = f"# The run in `{run.name}`\n\n"
    text = section(run, out, "", args.top, progress=progress)
    if args.against and not progress.retrainings_known:
        text = "Against the full run: once this run's search is done.\n\n" + text
    elif args.against:
        against = comparison(run, args.against.resolve(), out, args.top, progress)
        text = f"Against the full run (`{args.against.name}`):\n\n{against}\n\n{text}"
    (out / "summary.md").write_text(title + text)
    if args.readme:
        prefix = f"{Path(os.path.relpath(out.resolve(), args.readme.resolve().parent))}/"
        splice(args.readme, section(run, out, prefix, args.top, True, progress))
    print((out / "summary.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
