"""The run folder's layout: every rule's outputs, log, benchmark and threads, in one table.

The rules take their paths from here (``workflow/rules/*.smk``), and so do the tools that read a
run: ``make progress``, the saved run state, the cost tables and the tests. Adding an output to
a rule is one edit, here. Paths are relative to the run's working directory; ``{trial}``,
``{rung}`` and ``{batch}`` are the rules' wildcards. Standard library only: the Snakefile reads
it when it plans a run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .constants import LAYERS


@dataclass(frozen=True)
class Rule:
    """One rule's files. ``stage``: the part of the pipeline it belongs to (data, search,
    final, figures), as ``make progress`` groups them; ``only``: outputs that exist in one
    mode only (successive halving's tables)."""

    stage: str
    outputs: dict[str, str]
    log: str
    benchmark: str | None = None
    threads: int = 1
    only: dict[str, str] = field(default_factory=dict)


RULES: dict[str, Rule] = {
    "download_mnist": Rule(
        "data", {"dataset": "results/data/mnist.npz"}, "logs/data/download_mnist.log"
    ),
    "split_train_test": Rule(
        "data",
        {
            "train": "results/data/split/train_indices.npy",
            "test": "results/data/split/test_indices.npy",
        },
        "logs/data/split_train_test.log",
    ),
    "sample_trials": Rule(
        "search", {"trials": "results/search/trials.tsv"}, "logs/search/sample_trials.log"
    ),
    "propose_trials": Rule(
        "search",
        {"batch": "results/search/batches/batch{batch}.json"},
        "logs/search/propose_trials/batch{batch}.log",
    ),
    "cross_validate": Rule(
        "search",
        {
            "cv": "results/search/cv/{trial}.json",
            "history": "results/search/cv/{trial}.history.tsv",
        },
        "logs/search/cross_validate/{trial}.log",
        benchmark="benchmarks/search/cross_validate/{trial}.tsv",
    ),
    "train_rung": Rule(
        "search",
        {
            "result": "results/search/halving/{trial}/rung{rung}.json",
            "history": "results/search/halving/{trial}/rung{rung}.history.tsv",
            "state": "results/search/halving/{trial}/rung{rung}.state.pt",
        },
        "logs/search/train_rung/{trial}/rung{rung}.log",
        benchmark="benchmarks/search/train_rung/{trial}/rung{rung}.tsv",
    ),
    "promote_trials": Rule(
        "search",
        {"decisions": "results/search/halving/batch{batch}/rung{rung}.tsv"},
        "logs/search/promote_trials/batch{batch}/rung{rung}.log",
    ),
    "rank_trials": Rule(
        "search",
        {
            "ranking": "results/search/ranking.tsv",
            "sorted_scores": "results/search/sorted_scores.dat",
            "sorted_params": "results/search/sorted_params.dat",
        },
        "logs/search/rank_trials.log",
        only={"rungs": "results/search/rungs.tsv"},
    ),
    "export_study": Rule(
        "search", {"study": "results/search/study.db"}, "logs/search/export_study.log"
    ),
    "retrain": Rule(
        "final",
        {
            "model": "results/final/{trial}/model.pt",
            "metrics": "results/final/{trial}/metrics.json",
            "history": "results/final/{trial}/history.tsv",
        },
        "logs/final/retrain/{trial}.log",
        benchmark="benchmarks/final/retrain/{trial}.tsv",
    ),
    "select_winner": Rule(
        "final",
        {
            "summary": "results/final/summary.tsv",
            "winner": "results/winner/winner.json",
            "model": "results/winner/winning_net.dat",
        },
        "logs/final/select_winner.log",
    ),
    "build_ensemble": Rule(
        "final",
        {
            "ensemble": "results/winner/ensemble.pt",
            "summary": "results/winner/ensemble.json",
            "comparison": "results/winner/comparison.json",
        },
        "logs/final/build_ensemble.log",
    ),
    "export_models": Rule(
        "final",
        {"winner": "results/winner/winner.pt2", "ensemble": "results/winner/ensemble.pt2"},
        "logs/final/export_models.log",
    ),
    "export_tracking": Rule(
        "final",
        {},  # where the config's tracking section says: tracking_output()
        "logs/final/export_tracking.log",
    ),
    "report_tables": Rule(
        "figures",
        {
            "winner": "results/report/winner.html",
            "ranking": "results/report/ranking.html",
            "retrained": "results/report/retrained.html",
        },
        "logs/report/report_tables.log",
        only={"rungs": "results/report/rungs.html"},
    ),
    "plot_search": Rule(
        "figures", {"figure": "results/figures/search_overview.png"}, "logs/figures/plot_search.log"
    ),
    "plot_receptive_fields": Rule(
        "figures",
        {layer: f"results/figures/receptive_fields_{layer}.png" for layer in LAYERS},
        "logs/figures/plot_receptive_fields.log",
    ),
    "plot_gradient_ascent": Rule(
        "figures",
        {
            **{layer: f"results/figures/gradient_ascent_{layer}.png" for layer in LAYERS},
            "stats": "results/figures/gradient_ascent.json",
        },
        "logs/figures/plot_gradient_ascent.log",
    ),
    "plot_learning_curves": Rule(
        "figures",
        {"figure": "results/figures/learning_curves.png"},
        "logs/figures/plot_learning_curves.log",
    ),
    "plot_importance": Rule(
        "figures",
        {
            "table": "results/search/importance.tsv",
            "importance": "results/figures/importance.png",
            "parallel": "results/figures/parallel_coordinates.png",
        },
        "logs/figures/plot_importance.log",
    ),
}

# Files of a run that no rule makes.
RESULTS_CONFIG = "results/run_config.yaml"  # the results' config (a run ended well)
STARTED_CONFIG = "results/run_config.started.yaml"  # the config of the run that started last
METADATA = ".snakemake/metadata"  # Snakemake's records (mnist_mlp.records reads them)


def output(rule: str, name: str) -> str:
    """The path (pattern) of one output of ``rule``."""
    entry = RULES[rule]
    return entry.outputs.get(name) or entry.only[name]


def outputs(rule: str, halving: bool = False) -> dict[str, str]:
    """Every output of ``rule`` (with those of successive halving where ``halving``)."""
    entry = RULES[rule]
    return {**entry.outputs, **(entry.only if halving else {})}


def tracking_output(tracking: dict) -> str:
    """Where ``export_tracking`` writes: the MLflow store, or TensorBoard's folder."""
    folder = "mlflow.db" if tracking["backend"] == "mlflow" else "tensorboard"
    return f"{tracking['directory']}/{folder}"


def _regex(pattern: str) -> re.Pattern:
    parts = re.split(r"\{(\w+)\}", pattern)
    text = "".join(
        re.escape(part) if i % 2 == 0 else f"(?P<{part}>[^/]+)" for i, part in enumerate(parts)
    )
    return re.compile(text)


_MATCHERS = [
    (rule, name, _regex(pattern))
    for rule, entry in RULES.items()
    for name, pattern in {**entry.outputs, **entry.only}.items()
]


def rule_of(path: str) -> tuple[str, str, dict[str, str]] | None:
    """(rule, output name, wildcards) of a file of a run, or None: no rule makes it."""
    for rule, name, regex in _MATCHERS:
        if match := regex.fullmatch(path):
            return rule, name, match.groupdict()
    return None


def log(rule: str, **wildcards) -> str:
    return RULES[rule].log.format(**wildcards)


def benchmark(rule: str, **wildcards) -> str | None:
    pattern = RULES[rule].benchmark
    return pattern.format(**wildcards) if pattern else None


def threads(rule: str) -> int:
    return RULES[rule].threads


def stage_files(stage: str, halving: bool = False) -> list[str]:
    """Every output of the rules of ``stage`` without wildcards (the figures, the tables)."""
    return [
        path
        for rule, entry in RULES.items()
        if entry.stage == stage
        for path in outputs(rule, halving).values()
        if "{" not in path
    ]
