import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

# The workflow's logic is the mnist_mlp package beside the rules; the rule scripts import it too.
# What the Snakefile imports from it uses the standard library (and Snakemake's own PyYAML and
# jsonschema) only, so that a run can be planned where only Snakemake is installed.
sys.path.insert(0, str(Path(workflow.current_basedir).parent))

from mnist_mlp.codeversion import code_version
from mnist_mlp.config import ConfigError, check_config, coerce_numbers, load_schema, schema_errors
from mnist_mlp.io import read_tsv
from mnist_mlp.trials import (
    REFERENCE_ID_PATTERN,
    TRIAL_ID_PATTERN,
    reference_trials,
    sample_trials,
    search_space,
)

SCHEMA = Path(workflow.current_basedir).parent / "schemas" / "config.schema.yaml"
SCRIPTS = Path(workflow.current_basedir).parent / "scripts"
config.update(coerce_numbers(config, load_schema(SCHEMA)))
try:
    validate(config, schema=str(SCHEMA))
    check_config(config)
except (WorkflowError, ConfigError) as error:
    # snakemake's validation message buries the key in a schema dump: name it instead
    problems = schema_errors(config, SCHEMA) or [str(error)]
    raise WorkflowError(
        "invalid configuration:\n  " + "\n  ".join(problems) + "\nFix config.yaml or --config."
    ) from None

ENV = "../../envs/mnist_mlp.yaml"
MNIST = "results/data/mnist.npz"
TRAIN_INDICES = "results/data/split/train_indices.npy"
TEST_INDICES = "results/data/split/test_indices.npy"
# Every trial's hyper-parameters, sampled here (microseconds each) and passed to its jobs as
# params: no job per trial, and a trial's jobs rerun exactly when its hyper-parameters change.
TRIALS = sample_trials(config["seed"], config["search"]["n_trials"], search_space(config["search"]))
REFERENCES = reference_trials(config["final"]["references"])
FIGURE_LAYERS = ("layer1", "layer2", "output")
# Training jobs claim Snakemake's gpu resource only when a GPU is asked for by name, so that
# `--resources gpu=1` shares one GPU and a SLURM profile requests one, while `device: auto`
# on a machine without a GPU asks for none.
GPUS_PER_TRAINING_JOB = 1 if config["device"].startswith("cuda") else 0


wildcard_constraints:
    trial=f"{TRIAL_ID_PATTERN}|{REFERENCE_ID_PATTERN}",


def code(script):
    """Param: a hash of what a rule's jobs run (the script and the package modules it imports).
    The default profile turns Snakemake's code trigger (script modification times) off; this
    param reruns a rule's jobs when, and only when, that code really changes."""
    return code_version(SCRIPTS / script)


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
        "results/search/search_overview.png",
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
        "results/figures/learning_curves.png",
        "results/figures/gradient_ascent.json",
        *expand("results/figures/receptive_fields_{layer}.png", layer=FIGURE_LAYERS),
        *expand("results/figures/gradient_ascent_{layer}.png", layer=FIGURE_LAYERS),
    ]
