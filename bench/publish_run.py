"""A compact, committed copy of a run's results for readers: tables, the winner, the figures and
the cost per stage (no models, no data).

    python bench/publish_run.py RUN_DIR docs/full_run [--top 15]

RUN_DIR is a run's working directory. A run still in progress is published as far as it got:
the trials cross-validated so far ranked among themselves (``ranking_so_far.tsv``), and the
cost of the finished jobs. Writes ``summary.md`` (the tables the README shows), the TSV/JSON
files and the PNGs; the search overview is drawn again with this checkout's code.
"""

from __future__ import annotations

import argparse
import csv
import re
import shutil
import statistics
import sys
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow"))

from mnist_mlp.io import read_json, read_table, write_table  # noqa: E402
from mnist_mlp.progress import job_seconds, load_config  # noqa: E402
from mnist_mlp.ranking import build_ranking  # noqa: E402

COPIED = (
    "results/search/trials.tsv",
    "results/search/ranking.tsv",
    "results/search/sorted_scores.dat",
    "results/search/sorted_params.dat",
    "results/final/summary.tsv",
    "results/winner/winner.json",
    "results/figures/gradient_ascent.json",
    "results/run_config.yaml",
)
STAMP = re.compile(r"^\[(\w{3} \w{3} +\d+ \d\d:\d\d:\d\d \d{4})\]$")


RESULTS = {  # each rule's result, which records the threads its job ran with
    "cross_validate": "results/search/cv/{trial}.json",
    "retrain": "results/final/{trial}/metrics.json",
}


def benchmarks(run: Path, rule: str) -> list[dict]:
    """Each finished job's benchmark row, its threads, and its time less pauses."""
    folder = "search" if rule == "cross_validate" else "final"
    rows = []
    for path in sorted((run / "benchmarks" / folder / rule).glob("*.tsv")):
        with open(path, newline="") as handle:
            row = next(csv.DictReader(handle, delimiter="\t"))
        job = {"trial": path.stem, **{key: float(row[key]) for key in ("s", "max_rss", "cpu_time")}}
        result = run / RESULTS[rule].format(trial=path.stem)
        job["threads"] = int(read_json(result).get("threads", 1)) if result.exists() else 1
        job["computed"] = job_seconds(job["s"], job["cpu_time"], job["threads"])
        rows.append(job)
    return rows


def stage_spans(run: Path) -> dict[str, tuple[datetime, datetime]]:
    """First start and last end of each rule's jobs over the run's main logs."""
    spans: dict[str, list[datetime]] = {}
    for log in sorted((run / ".snakemake" / "log").glob("*.snakemake.log")):
        stamp = None
        for line in log.read_text(errors="replace").splitlines():
            if match := STAMP.match(line.strip()):
                stamp = datetime.strptime(match.group(1), "%a %b %d %H:%M:%S %Y")
            elif stamp and (m := re.match(r"^(?:local)?(?:rule|checkpoint) (\w+):", line)):
                spans.setdefault(m.group(1), []).append(stamp)
            elif stamp and (m := re.match(r"^Finished jobid: \d+ \(Rule: (\w+)\)", line)):
                spans.setdefault(m.group(1), []).append(stamp)
    return {rule: (min(times), max(times)) for rule, times in spans.items()}


def hours(seconds: float) -> str:
    return f"{seconds / 3600:.2f} h"


def cost_table(run: Path) -> tuple[list[dict], str]:
    spans = stage_spans(run)
    rows, lines = [], []
    for rule in RESULTS:
        jobs = benchmarks(run, rule)
        if not jobs:
            continue
        wall = [job["s"] for job in jobs]
        # a paused job (SIGSTOP, while this machine measured something else) counts the time
        # it computed
        computed = [job["computed"] for job in jobs]
        threads = sorted({job["threads"] for job in jobs})
        span = spans.get(rule)
        row = {
            "rule": rule,
            "jobs": len(jobs),
            "threads": "/".join(map(str, threads)),
            "job_wall_s_sum": round(sum(wall), 1),
            "job_s_less_pauses_sum": round(sum(computed), 1),
            "core_hours_less_pauses": round(
                sum(job["computed"] * job["threads"] for job in jobs) / 3600, 2
            ),
            "cpu_hours": round(sum(job["cpu_time"] for job in jobs) / 3600, 2),
            "job_s_less_pauses_median": round(statistics.median(computed), 1),
            "job_s_less_pauses_max": round(max(computed), 1),
            "peak_rss_mb_max": round(max(job["max_rss"] for job in jobs)),
            "stage_wall_s": round((span[1] - span[0]).total_seconds()) if span else "",
        }
        rows.append(row)
        lines.append(
            f"| `{rule}` | {row['jobs']} | {hours(sum(computed))} at {row['threads']} "
            f"thread(s): {row['core_hours_less_pauses']} core-hours (CPU time "
            f"{row['cpu_hours']} h; wall time with pauses {hours(sum(wall))}) | "
            f"{row['job_s_less_pauses_median']} s / {row['job_s_less_pauses_max']} s | "
            f"{row['peak_rss_mb_max']} MB | "
            + (f"{row['stage_wall_s'] / 3600:.2f} h" if span else "-")
            + " |"
        )
    header = (
        "| stage | jobs | job time less pauses, summed | median / longest job | peak memory "
        "| first start to last end (pauses included) |\n| --- | --- | --- | --- | --- | --- |\n"
    )
    return rows, header + "\n".join(lines)


def markdown_table(table, columns: list[str], formats: dict[str, str]) -> str:
    head = "| " + " | ".join(columns) + " |\n| " + " | ".join("---" for _ in columns) + " |\n"
    lines = []
    for row in table.to_dict("records"):
        cells = [formats.get(c, "{}").format(row[c]) for c in columns]
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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--top", type=int, default=15, help="rows of the ranking shown")
    args = parser.parse_args(argv)
    run, out = args.run.resolve(), args.out
    out.mkdir(parents=True, exist_ok=True)
    for name in COPIED:
        if (run / name).exists():
            shutil.copy2(run / name, out / Path(name).name)
    for png in (run / "results" / "figures").glob("*.png"):
        shutil.copy2(png, out / png.name)

    parts = [f"# Run in `{run.name}`\n"]
    cv_paths = sorted((run / "results/search/cv").glob("t*.json"))
    finished = [path for path in cv_paths if path.with_suffix(".history.tsv").exists()]
    config, _ = load_config(run)  # the run's own, else this checkout's defaults
    n_trials = config["search"]["n_trials"]
    if (run / "results/search/ranking.tsv").exists():
        ranking = read_table(run / "results/search/ranking.tsv")
        parts.append(f"All {len(ranking)} trials cross-validated and ranked.\n")
    else:
        ranking = build_ranking([read_json(path) for path in finished])
        write_table(ranking, out / "ranking_so_far.tsv")
        parts.append(
            f"**In progress**: {len(ranking)} of {n_trials} trials cross-validated so far, ranked "
            "among themselves (`ranking_so_far.tsv`).\n"
        )
    shown = ranking.head(args.top)
    columns = ["rank", "trial", "Nh1", "Nh2", "dropout", "optimizer", "lr", "L2", "mean_loss"]
    columns += ["std_loss", "mean_accuracy", "mean_epochs"]
    parts.append(f"## Ranking (best {len(shown)})\n\n" + markdown_table(shown, columns, FORMATS))
    if (run / "results/final/summary.tsv").exists():
        summary = read_table(run / "results/final/summary.tsv")
        columns = ["trial", "winner", "reference", "Nh1", "Nh2", "dropout", "optimizer", "lr"]
        columns += ["L2", "cv_loss", "test_accuracy", "official_test_accuracy"]
        columns += ["whole_dataset_accuracy"]
        parts.append("## Retrained networks\n\n" + markdown_table(summary, columns, FORMATS))
        from mnist_mlp.figures import search_overview_stage

        search_overview_stage(
            run / "results/search/ranking.tsv",
            run / "results/final/summary.tsv",
            out / "search_overview.png",
        )
    else:  # no retrained trials and no winner yet: the trials so far
        import pandas as pd

        from mnist_mlp.figures import plot_search_overview

        nobody = pd.DataFrame({"trial": [], "reference": [], "winner": []}).astype(
            {"reference": bool, "winner": bool}
        )
        plot_search_overview(ranking, nobody, out / "search_overview.png")
    cost_rows, cost = cost_table(run)
    write_table(cost_rows, out / "cost.tsv")
    parts.append("## Cost per stage (from benchmarks/)\n\n" + cost)
    (out / "summary.md").write_text("\n\n".join(parts) + "\n")
    print((out / "summary.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
