"""Random hyper-parameter search for an MNIST multi-layer perceptron.

Each Snakemake rule is a thin script that calls one stage function of this package: ``data``
(download, split), ``trials`` (sampling), ``search`` (cross-validation, ranking), ``final``
(retraining, the winner) and ``figures``; ``training`` and ``model`` are the one training
routine and the one network they share. The modules the Snakefile imports when it plans a run
(``trials``, ``config``, ``versions``, ``records``, ``io``) use the standard library only.
"""

import os

# Intel MKL's strict conditional numerical reproducibility: its matrix products give the same
# bits whatever the number of threads, so a job's result does not depend on the --cores it got
# (measured: 1 and 2 threads give identical weights only in this mode). MKL reads this when it
# initialises, on torch's first computation; every stage module is imported after this package.
os.environ.setdefault("MKL_CBWR", "AUTO,STRICT")
