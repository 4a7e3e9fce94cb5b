"""What orchestration costs at full width: the 150 default trials with almost no training.

Run with ``make bench`` (or ``python bench/orchestration.py --help``). On the real MNIST it runs
the default config with ``search: {folds: 2, max_epochs: 1}`` and ``final: {epochs: 1}`` (150
CV jobs, 16 retrainings, every other step as usual) with ``--cores 2`` in a scratch folder, and
prints:
- the wall time of the whole run;
- the training jobs' own times from ``benchmarks/`` (the ``s`` column), summed per rule and
  divided by the jobs of that rule that ran at once (cores // threads);
- the rest, orchestration overhead: Snakemake's planning and scheduling, process start-ups
  outside the jobs' own times, and the short jobs (download, split, sampling, ranking, winner,
  figures); target at most 10 % of the wall time;
- how long planning takes at 150 and at 10,000 trials (dry-runs), and the sampling job.
Ends with one line: ``orchestration_wall_s=<s> training_s=<s> overhead_share=<fraction>``.
Measure on a quiet machine: pause any other run (kill -STOP) while it runs.
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow"))

from mnist_mlp import layout  # noqa: E402
from mnist_mlp.records import rule_spans  # noqa: E402

FULL_WIDTH = {"search": {"folds": 2, "max_epochs": 1}, "final": {"epochs": 1}, "device": "cpu"}
TRAINING = ("cross_validate", "retrain")


def snakemake(workdir: Path, configfile: Path, cores: int, *args: str):
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile")]
    command += ["--directory", str(workdir), "--configfile", str(configfile)]
    command += ["--cores", str(cores), *args]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, cwd=workdir)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"snakemake failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return seconds, done.stdout + done.stderr


def write_config(path: Path, overrides: dict) -> Path:
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    for key, value in overrides.items():
        if isinstance(value, dict):
            config[key] = config[key] | value
        else:
            config[key] = value
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def wall_seconds(workdir: Path, rule: str) -> list[float]:
    """The wall seconds (column s) of each of ``rule``'s finished jobs."""
    times = []
    for path in sorted(workdir.glob(layout.benchmark(rule, trial="*"))):
        with open(path, newline="") as handle:
            times.append(float(next(csv.DictReader(handle, delimiter="\t"))["s"]))
    return times


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--mnist-dir",
        default=os.environ.get("MNIST_DIR", str(REPO.parent / "shared" / "data" / "mnist")),
        help="folder with the four MNIST IDX files (default: $MNIST_DIR or ../shared/data/mnist)",
    )
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--workdir", help="run here (default: a scratch folder, removed after)")
    args, _ = parser.parse_known_args(argv)  # make bench passes the speed bench's options too

    with tempfile.TemporaryDirectory(prefix="orchestration-") as scratch:
        workdir = Path(args.workdir or scratch)
        workdir.mkdir(parents=True, exist_ok=True)
        overrides = FULL_WIDTH | {"mnist_dir": str(Path(args.mnist_dir).resolve())}
        configfile = write_config(workdir / "full_width.yaml", overrides)
        wide = write_config(workdir / "wide.yaml", overrides | {"search": {"n_trials": 10_000}})
        plan_150, _ = snakemake(workdir, configfile, args.cores, "--dry-run")
        plan_10000, _ = snakemake(workdir, wide, args.cores, "--dry-run")

        wall, _ = snakemake(workdir, configfile, args.cores)
        spans = rule_spans(workdir)
        training = {}
        for rule in TRAINING:
            seconds = wall_seconds(workdir, rule)
            at_once = max(1, args.cores // layout.threads(rule))
            training[rule] = (len(seconds), sum(seconds), at_once)
        training_s = sum(total / at_once for _, total, at_once in training.values())
        overhead = wall - training_s

    def span(rule):
        if rule not in spans:
            return "-"
        first, last = spans[rule]
        return f"{(last - first).total_seconds():.0f} s"

    print(f"Full-width run: default config with {FULL_WIDTH}, --cores {args.cores}")
    print(f"  planning (dry-run): {plan_150:.1f} s at 150 trials, {plan_10000:.1f} s at 10,000")
    print(f"  sample_trials job: {span('sample_trials')} (start to finish, 1 s resolution)")
    print(f"  wall time: {wall:.1f} s")
    for rule, (count, total, at_once) in training.items():
        print(
            f"  {rule}: {count} jobs, {total:.1f} s of their own time, {at_once} at once "
            f"= {total / at_once:.1f} s (mean {total / max(count, 1):.2f} s per job)"
        )
    print(f"  training jobs' own time: {training_s:.1f} s")
    print(f"  orchestration overhead: {overhead:.1f} s = {overhead / wall:.1%} of the wall time")
    print(
        "  stages (first start to last end): "
        + ", ".join(
            f"{rule} {span(rule)}"
            for rule in (
                "download_mnist",
                "split_train_test",
                "cross_validate",
                "rank_trials",
                "retrain",
                "select_winner",
                "plot_gradient_ascent",
            )
        )
    )
    print(
        f"orchestration_wall_s={wall:.1f} training_s={training_s:.1f} "
        f"overhead_share={overhead / wall:.3f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
