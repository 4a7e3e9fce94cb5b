import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

# The workflow's logic is the mnist_mlp package beside the rules; the rule scripts import it too.
sys.path.insert(0, str(Path(workflow.current_basedir).parent))

from mnist_mlp.config import (
    ConfigError,
    check_config,
    coerce_numbers,
    load_schema,
    schema_errors,
)
from mnist_mlp.final import REFERENCE_PREFIX, is_reference, reference_id
from mnist_mlp.io import read_json, write_json
from mnist_mlp.ranking import read_table, write_configs_table
from mnist_mlp.sampling import (
    CONFIG_ID_PATTERN,
    config_ids,
    search_space,
    write_sampled_config,
)

SCHEMA = Path(workflow.current_basedir).parent / "schemas" / "config.schema.yaml"
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
CONFIG_IDS = config_ids(config["search"]["n_configs"])
REFERENCE_IDS = [reference_id(name) for name in config["final"]["reference_configs"]]
FIGURE_LAYERS = ("layer1", "layer2", "output")
# Training jobs claim Snakemake's gpu resource only when a GPU is asked for by name, so that
# `--resources gpu=1` shares one GPU and a SLURM profile requests one, while `device: auto`
# on a machine without a GPU asks for none.
GPUS_PER_TRAINING_JOB = 1 if config["device"].startswith("cuda") else 0


wildcard_constraints:
    config_id=f"{CONFIG_ID_PATTERN}|{REFERENCE_PREFIX}[A-Za-z0-9_]+",


def training_params(section):
    """The config values a training job depends on, passed as params so that a change reruns
    exactly the jobs that use them."""
    search = config["search"]
    shared = {"seed": config["seed"], "device": config["device"]}
    if section == "search":
        keys = ("folds", "patience", "max_epochs", "batch_size")
        return shared | {key: search[key] for key in keys}
    if section == "final":
        return shared | {"batch_size": search["batch_size"], "epochs": config["final"]["epochs"]}
    raise ValueError(f"unknown training section {section}")


def search_outputs():
    return [
        "results/search/configs.tsv",
        "results/search/ranking.tsv",
        "results/search/sorted_scores.dat",
        "results/search/sorted_params.dat",
        "results/search/search_overview.png",
    ]


def retrained_ids(wildcards=None):
    """The final.top_k best configurations of the search that did not diverge, then the
    reference configurations. Known once the ranking exists (rank_configs is a checkpoint)."""
    ranking = read_table(checkpoints.rank_configs.get().output.ranking)
    finite = ranking[ranking["status"] == "ok"]
    return finite["config_id"].head(config["final"]["top_k"]).tolist() + REFERENCE_IDS


def retrained(name):
    """Input function: one file per retrained configuration (model.pt, metrics.json, ...)."""
    return lambda wildcards: [f"results/final/{cid}/{name}" for cid in retrained_ids()]


def config_json_path(config_id):
    """A configuration's JSON: sampled by the search, or a reference from the config."""
    if is_reference(config_id):
        return f"results/final/reference_configs/{config_id}.json"
    return f"results/search/configs/{config_id}.json"


def config_json(wildcards):
    return config_json_path(wildcards.config_id)


def retrained_config_jsons(wildcards):
    return [config_json_path(cid) for cid in retrained_ids()]


def reference_config(wildcards):
    """The hyper-parameters of a reference configuration, as given in the config."""
    name = wildcards.config_id.removeprefix(REFERENCE_PREFIX)
    return config["final"]["reference_configs"][name]


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
