# Random hyper-parameter search for an MNIST multi-layer perceptron (PyTorch + skorch).
# Run: snakemake --cores 4   (see README.md for the config keys, SLURM and GPUs)

import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version

min_version("9.0")

# The workflow's logic is the mnist_mlp package in workflow/; what the Snakefile imports from it
# needs only the standard library, PyYAML and jsonschema (all three come with Snakemake), so a
# run can be planned where only Snakemake is installed.
sys.path.insert(0, str(Path(workflow.basedir) / "workflow"))

from mnist_mlp.config import ConfigError, load_yaml_file

# The defaults come from the workflow itself, wherever it runs (--directory, a deployed copy);
# --configfile and --config override them key by key. Read here first so that a broken file is
# reported with its name and line (Snakemake's own message names neither).
DEFAULT_CONFIG = Path(workflow.basedir) / "config.yaml"
try:
    load_yaml_file(DEFAULT_CONFIG)
except ConfigError as error:
    raise WorkflowError(f"invalid configuration: {error}") from None


configfile: str(DEFAULT_CONFIG)


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/search.smk"
include: "workflow/rules/final.smk"
include: "workflow/rules/figures.smk"


onstart:
    start_run()


onsuccess:
    end_run()


rule all:
    default_target: True
    input:
        search_outputs(),
        # each trial's result too, so that a deleted one is noticed and recomputed
        all_results,
        retrained("metrics"),
        final_outputs(),
