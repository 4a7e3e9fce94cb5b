"""An MNIST multi-layer perceptron's hyper-parameter search, as a Snakemake workflow's package.

Each rule is a thin script (``workflow/scripts/<rule>.py``) that calls ``<rule>_stage`` of one
module: ``data`` (download_mnist, split_train_test), ``trials`` (the space, the random sampler;
the sample_trials table), ``tpe`` (propose_trials), ``search`` (cross_validate, train_rung,
promote_trials), ``ranking`` (rank_trials), ``study`` (export_study, plot_importance), ``final``
(retrain), ``winner`` (select_winner), ``ensemble`` (build_ensemble), ``export``
(export_models), ``tracking`` (export_tracking), ``report`` (report_tables) and ``figures`` (the
plot_* rules). ``training`` and ``model`` are the one training routine and the one network
they share; ``halving`` is successive halving's rungs and decisions; ``layout`` the run folder's
files; ``records`` the one reader of Snakemake's own files; ``versions`` the result versions.
Around the lab: ``progress`` (make progress), ``runstate`` (saved runs), ``runs`` and
``publish`` (long runs and their publication), ``guard`` (the result versions' check),
``classify`` (the winner on new images), ``cli`` (``mnist-mlp``). The modules the Snakefile
imports when it plans a run (``config``, ``trials``, ``halving``, ``layout``, ``versions``,
``records``, ``report``, ``io``) use the standard library and PyYAML only.
"""

import os

# Intel MKL's strict conditional numerical reproducibility: its matrix products give the same
# bits whatever the number of threads, so a job's result does not depend on the --cores it got
# (measured: 1 and 2 threads give identical weights only in this mode). MKL reads this when it
# initialises, on torch's first computation; every stage module is imported after this package.
os.environ.setdefault("MKL_CBWR", "AUTO,STRICT")
