import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

# The workflow's logic is the mnist_mlp package beside the rules; the rule scripts import it too.
sys.path.insert(0, str(Path(workflow.current_basedir).parent))

from mnist_mlp.config import ConfigError, check_config
from mnist_mlp.io import read_json
from mnist_mlp.ranking import write_configs_table
from mnist_mlp.sampling import (
    CONFIG_ID_PATTERN,
    config_ids,
    search_space,
    write_sampled_config,
)

validate(config, schema="../schemas/config.schema.yaml")
try:
    check_config(config)
except ConfigError as error:
    raise WorkflowError(f"{error}. Fix config.yaml or the --config value.") from None

ENV = "../../envs/mnist_mlp.yaml"
MNIST = "results/data/mnist.npz"
TRAIN_INDICES = "results/data/split/train_indices.npy"
TEST_INDICES = "results/data/split/test_indices.npy"
CONFIG_IDS = config_ids(config["search"]["n_configs"])


wildcard_constraints:
    config_id=CONFIG_ID_PATTERN,


def training_params(section):
    """The config values a training job depends on, passed as params so that a change reruns
    exactly the jobs that use them."""
    search = config["search"]
    shared = {"seed": config["seed"], "device": config["device"]}
    if section == "search":
        keys = ("folds", "patience", "max_epochs", "batch_size")
        return shared | {key: search[key] for key in keys}
    raise ValueError(f"unknown training section {section}")


def search_outputs():
    return [
        "results/search/configs.tsv",
        "results/search/ranking.tsv",
        "results/search/sorted_scores.dat",
        "results/search/sorted_params.dat",
        "results/search/search_overview.png",
    ]
