"""Random hyper-parameter search for an MNIST multi-layer perceptron.

The Snakemake rules are thin wrappers around this package; the tests import it directly.
Modules that the Snakefile imports at parse time (``config``, ``sampling``) do not import torch,
so planning a run (``snakemake -n``) stays fast.
"""
