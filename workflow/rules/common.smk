import sys

import yaml
from snakemake.exceptions import WorkflowError
from snakemake.logging import logger

from mnist_mlp.config import (
    ConfigError,
    check_cuda,
    load_yaml_file,
    merge_config,
    validate_config,
)
from mnist_mlp.io import read_tsv, write_text
from mnist_mlp.records import legacy_records
from mnist_mlp.report import front_page, results_mismatch
from mnist_mlp.trials import (
    REFERENCE_ID_PATTERN,
    TRIAL_ID_PATTERN,
    reference_trials,
    sample_trials,
    search_space,
)
from mnist_mlp.versions import result_version

# Snakemake merges --configfile and --config into the defaults key by key, mappings included:
# merge again so that an override's optimizers or references replace the defaults' ones.
merged = merge_config(load_yaml_file(DEFAULT_CONFIG), workflow.config_settings.overwrite_config)
checked, problems = validate_config(merged)
if problems:
    raise WorkflowError(
        "invalid configuration:\n  " + "\n  ".join(problems) + "\nFix config.yaml or --config."
    )
config.clear()
config.update(checked)

# Building the HTML report (snakemake --report): refuse results that another config made, and
# give the front page the answer.
if any(arg == "--report" or arg.startswith("--report=") for arg in sys.argv):
    mismatch = results_mismatch(config)
    if mismatch:
        raise WorkflowError(
            "the results in results/ were not made with this configuration:\n  "
            + "\n  ".join(mismatch)
            + "\nMake the report with the run's own configuration: `make report` (it reads "
            "results/run_config.yaml), or give the same --configfile/--config as the run."
        )
    config["report_front_page"] = front_page()

# A run made before result versions: its records name the code by a hash instead of a version,
# so Snakemake would compute every finished job again.
if legacy := legacy_records(Path(".")):
    logger.warning(
        f"{len(legacy)} finished results here were recorded before result versions and would be "
        "computed again: run `python -m mnist_mlp.records upgrade` once to keep them "
        "(README, 'Only what changed reruns')."
    )

ENV = "../../envs/mnist_mlp.yaml"
MNIST = "results/data/mnist.npz"
TRAIN_INDICES = "results/data/split/train_indices.npy"
TEST_INDICES = "results/data/split/test_indices.npy"
# Every trial's hyper-parameters, sampled here (microseconds each) and passed to its jobs as
# params: no job per trial, and a trial's jobs rerun exactly when its hyper-parameters change.
TRIALS = sample_trials(config["seed"], config["search"]["n_trials"], search_space(config["search"]))
REFERENCES = reference_trials(config["final"]["references"])
FIGURE_LAYERS = ("layer1", "layer2", "output")
LAYER_LABELS = {"layer1": "hidden layer 1", "layer2": "hidden layer 2", "output": "output"}
# The report's categories, numbered so that they appear in the order of the pipeline.
CATEGORIES = {
    "winner": "1. Winner",
    "search": "2. Search",
    "final": "3. Retrained networks",
    "figures": "4. What the winner's neurons respond to",
}
# Training jobs claim Snakemake's gpu resource only when a GPU is asked for by name, so that
# `--resources gpu=1` shares one GPU and a SLURM profile requests one, while `device: auto`
# on a machine without a GPU asks for none.
GPUS_PER_TRAINING_JOB = 1 if config["device"].startswith("cuda") else 0


wildcard_constraints:
    trial=f"{TRIAL_ID_PATTERN}|{REFERENCE_ID_PATTERN}",


def hyperparameters(wildcards):
    """Param: the trial's hyper-parameters (sampled, or a reference from the config)."""
    trial = wildcards.trial
    if trial in TRIALS:
        return TRIALS[trial]
    if trial in REFERENCES:
        return REFERENCES[trial]
    raise WorkflowError(
        f"unknown trial {trial}: this config samples t0000 to t{len(TRIALS) - 1:04d} "
        f"(search.n_trials) and has the references {sorted(REFERENCES)} (final.references)"
    )


def training_settings(stage):
    """Param: the config values a training job depends on, so that a change reruns exactly
    the jobs that use them."""
    search = config["search"]
    shared = {"seed": config["seed"], "device": config["device"]}
    if stage == "search":
        keys = ("folds", "patience", "max_epochs", "batch_size")
        return shared | {key: search[key] for key in keys}
    if stage == "final":
        return shared | {
            "batch_size": search["batch_size"],
            "max_epochs": config["final"]["epochs"],
        }
    raise ValueError(f"unknown training stage {stage}")


def search_outputs():
    return [
        "results/search/trials.tsv",
        "results/search/ranking.tsv",
        "results/search/sorted_scores.dat",
        "results/search/sorted_params.dat",
    ]


def retrained_trials(wildcards=None):
    """The final.top_k best trials of the search that did not diverge, then the references.
    Known once the ranking exists (rank_trials is a checkpoint)."""
    ranking = read_tsv(checkpoints.rank_trials.get().output.ranking)
    finite = [row["trial"] for row in ranking if row["status"] == "ok"]
    return finite[: config["final"]["top_k"]] + list(REFERENCES)


def retrained(name):
    """Input function: one file per retrained trial (model.pt, metrics.json, ...)."""
    return lambda wildcards: [f"results/final/{trial}/{name}" for trial in retrained_trials()]


def figure_params(*keys):
    """The figures settings the figure scripts read (``keys``: a subset; default all), as
    params, so that a change redraws only the figures that use it."""
    figures = config["figures"]
    params = {
        "n_neurons": figures["n_neurons"],
        "output_neurons": figures["output_neurons"],
        "steps": figures["ascent_steps"],
        "step_size": figures["ascent_step_size"],
        "start": figures["ascent_start"],
    }
    return {key: params[key] for key in keys or params}


def final_outputs():
    return [
        "results/final/summary.tsv",
        "results/winner/winner.json",
        "results/winner/winning_net.dat",
        "results/figures/search_overview.png",
        "results/figures/learning_curves.png",
        "results/figures/gradient_ascent.json",
        "results/report/winner.html",
        "results/report/ranking.html",
        "results/report/retrained.html",
        *expand("results/figures/receptive_fields_{layer}.png", layer=FIGURE_LAYERS),
        *expand("results/figures/gradient_ascent_{layer}.png", layer=FIGURE_LAYERS),
    ]


def start_run():
    """Before the first job of a run (not for a dry-run): refuse a GPU the machine does not
    have, and keep the run's effective config beside its results (make progress, make report
    and a later reader use it)."""
    if workflow.local_exec and config["device"].startswith("cuda"):
        try:
            check_cuda(config["device"])
        except ConfigError as error:
            raise WorkflowError(str(error)) from None
    Path("results").mkdir(exist_ok=True)
    write_text("results/run_config.yaml", yaml.safe_dump(config, sort_keys=False))
