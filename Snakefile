# Random hyper-parameter search for an MNIST multi-layer perceptron (PyTorch + skorch).
# Run: snakemake --cores 4   (see README.md for the config keys, SLURM and GPUs)

from snakemake.utils import min_version

min_version("9.0")


configfile: "config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/search.smk"
include: "workflow/rules/final.smk"
include: "workflow/rules/figures.smk"


rule all:
    default_target: True
    input:
        search_outputs(),
        final_outputs(),
