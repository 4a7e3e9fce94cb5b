import os
import signal
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
from mnist_mlp import layout
from mnist_mlp.constants import LAYER_NAMES, LAYERS
from mnist_mlp.halving import budgets
from mnist_mlp.trials import (
    REFERENCE_ID_PATTERN,
    TRIAL_ID_PATTERN,
    batch_range as trials_batch_range,
    fixed_settings,
    reference_trials,
    sample_trials,
    sampled_space,
    search_batch_sizes,
    trial_id,
    trial_index,
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
            + "\nMake the HTML summary with the run's own configuration: `make summary` (it reads "
            "results/run_config.yaml), or give the same --configfile/--config as the run."
        )
    config["report_front_page"] = front_page()

# SIGINT to Snakemake itself (kill -INT, or Ctrl-C, which also reaches the jobs): stop as SIGTERM
# does, after the running jobs, keeping what they finish. Snakemake's own reaction to SIGINT
# waits for them too but marks their outputs incomplete, so that they were computed again.
if workflow.local_exec:
    signal.signal(signal.SIGINT, lambda signum, frame: os.kill(os.getpid(), signal.SIGTERM))

# A run made before result versions: its records name the code by a hash instead of a version,
# so Snakemake would compute every finished job again.
if legacy := legacy_records(Path(".")):
    logger.warning(
        f"{len(legacy)} finished results here were recorded before result versions and would be "
        "computed again: run `python -m mnist_mlp.records upgrade` once to keep them "
        "(README, 'Only what changed reruns')."
    )

ENV = "../../envs/mnist_mlp.yaml"
# Every path of a run comes from mnist_mlp.layout, the one table of the run folder.
path, paths = layout.output, layout.outputs


def log_of(rule):
    return layout.RULES[rule].log


def benchmark_of(rule):
    return layout.RULES[rule].benchmark


def threads_of(rule):
    return layout.RULES[rule].threads


MNIST = path("download_mnist", "dataset")
TRAIN_INDICES = path("split_train_test", "train")
TEST_INDICES = path("split_train_test", "test")
SEARCH = config["search"]
SPACE = sampled_space(SEARCH["space"])  # what the samplers draw from
FIXED = fixed_settings(SEARCH["space"])  # a fixed batch_size: a setting of every training job
N_TRIALS = SEARCH["n_trials"]
TPE = SEARCH["sampler"] == "tpe"
HALVING = SEARCH["pruning"] == "halving"
# The random sampler's trials, drawn here (microseconds each) and passed to their jobs as
# params: no job per trial, and a trial's jobs rerun exactly when its hyper-parameters change.
# With TPE, the startup trials only; batch k >= 1 of the others is proposed by a job of its own
# (propose_trials, a checkpoint) from the results of batches 0 to k - 1.
BATCH_SIZES = search_batch_sizes(SEARCH)
BATCHES, STARTUP = len(BATCH_SIZES), BATCH_SIZES[0]
TRIALS = sample_trials(config["seed"], STARTUP, SPACE)
BATCH_SIZE = SEARCH["tpe"]["batch"]
RUNGS = budgets(SEARCH["halving"]["min_epochs"], SEARCH["halving"]["eta"], SEARCH["max_epochs"])
REFERENCES = reference_trials(config["final"]["references"])
SEARCH_TITLE = ("TPE search" if TPE else "Random search") + (
    " with successive halving" if HALVING else ""
)
FIGURE_LAYERS, LAYER_LABELS = LAYERS, LAYER_NAMES
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
    batch=r"\d+",
    rung=r"\d+",


def batch_range(batch):
    """(first trial index, number of trials) of a batch (``mnist_mlp.trials.batch_range``)."""
    return trials_batch_range(batch, STARTUP, BATCH_SIZE)


def batch_of(trial):
    index = trial_index(trial)
    return 0 if index < STARTUP else 1 + (index - STARTUP) // BATCH_SIZE


def batch_ids(batch):
    """The trials of a batch that the run trains (up to n_trials)."""
    first, size = batch_range(batch)
    return [trial_id(index) for index in range(first, min(first + size, N_TRIALS))]


def proposal_of(wildcards):
    """Input of a trial's training jobs: TPE's proposal that holds its hyper-parameters (none
    for a trial drawn when the run is planned)."""
    trial = wildcards.trial
    if not TPE or trial in TRIALS or trial in REFERENCES:
        return []
    # the checkpoint's output as a plain path: the job waits for it and reads it when it runs
    return path("propose_trials", "batch").format(batch=batch_of(trial))


def hyperparameters(wildcards):
    """Param: the trial's hyper-parameters (sampled, proposed, or a reference of the config)."""
    trial = wildcards.trial
    if trial in TRIALS:
        return TRIALS[trial]
    if trial in REFERENCES:
        return REFERENCES[trial]
    if TPE and trial_index(trial) < N_TRIALS:
        # read by the job from its proposal (``trials.trial_of``), which is its input: a change
        # of the proposal reruns it
        return {"trial": trial, "proposed_in": f"batch {batch_of(trial)}"}
    raise WorkflowError(
        f"unknown trial {trial}: this config samples t0000 to t{N_TRIALS - 1:04d} "
        f"(search.n_trials) and has the references {sorted(REFERENCES)} (final.references)"
    )


def training_settings(stage):
    """Param: the config values a training job depends on, so that a change reruns exactly
    the jobs that use them."""
    shared = {"seed": config["seed"], "device": config["device"]}
    if stage == "search":
        keys = ("folds", "patience", "max_epochs")
        return shared | {key: SEARCH[key] for key in keys} | FIXED
    if stage == "final":
        return shared | FIXED | {"max_epochs": config["final"]["epochs"]}
    raise ValueError(f"unknown training stage {stage}")


def sampling_params():
    """Params of sample_trials: what the trials are drawn from (with TPE, its batches are
    inputs). The random sampler's are those of the lab's runs, so that they stay current."""
    params = {"seed": config["seed"], "n_trials": STARTUP, "space": SPACE}
    return params | ({"tpe": SEARCH["tpe"], "total": N_TRIALS} if TPE else {})


def proposals(wildcards):
    """Input of sample_trials: TPE's batches (none with the random sampler)."""
    return [path("propose_trials", "batch").format(batch=b) for b in range(1, BATCHES)]


def trial_result(trial, wildcards=None):
    """A trial's final result: its CV result, or with halving the rung where it finished or
    was pruned (known once that batch's rungs are decided)."""
    if not HALVING:
        return path("cross_validate", "cv").format(trial=trial)
    return path("train_rung", "result").format(trial=trial, rung=last_rung(trial))


def rung_decisions(batch, rung):
    """The rows of one rung's decisions (a checkpoint's table)."""
    return read_tsv(checkpoints.promote_trials.get(batch=batch, rung=rung).output[0])


def rung_trials(batch, rung):
    """The trials that train at ``rung`` in ``batch``: all at the first, then those promoted."""
    if rung == 0:
        return batch_ids(batch)
    return [r["trial"] for r in rung_decisions(batch, rung - 1) if r["decision"] == "promoted"]


def last_rung(trial):
    batch = batch_of(trial)
    for rung in range(len(RUNGS)):
        decided = {r["trial"]: r["decision"] for r in rung_decisions(batch, rung)}
        if decided.get(trial) != "promoted":
            return rung
    raise WorkflowError(f"trial {trial} was promoted past the last rung")


def previous_rung_state(wildcards):
    """Input of train_rung: the state the previous rung left (none at the first rung)."""
    rung = int(wildcards.rung)
    if rung == 0:
        return []
    return path("train_rung", "state").format(trial=wildcards.trial, rung=rung - 1)


def decided_before(wildcards):
    """Input of promote_trials: the decisions of the rung before (none at the first). Which
    trials reach a rung is read from them; as an input they make Snakemake plan the rung again
    once the rung before is decided again (after a change), rather than from the old table."""
    batch, rung = int(wildcards.batch), int(wildcards.rung)
    if rung == 0:
        return []
    return path("promote_trials", "decisions").format(batch=batch, rung=rung - 1)


def earlier_rung_tables(wildcards):
    """Input of propose_trials with halving: the rung decisions of the earlier batches, where
    each of their trials' final result is read from (as ``decided_before``)."""
    return rung_tables(batches=int(wildcards.batch))


def rung_results(wildcards):
    """Input of promote_trials: the results of the trials that trained at this rung."""
    batch, rung = int(wildcards.batch), int(wildcards.rung)
    result = path("train_rung", "result")
    return [result.format(trial=t, rung=rung) for t in rung_trials(batch, rung)]


def batch_results(batch):
    return [trial_result(trial) for trial in batch_ids(batch)]


def earlier_results(wildcards):
    """Input of propose_trials: the final result of every trial of the earlier batches."""
    return [path for batch in range(int(wildcards.batch)) for path in batch_results(batch)]


def result_histories(wildcards=None):
    """Every trial's per-fold, per-epoch history (beside its final result)."""
    return [path.replace(".json", ".history.tsv") for path in all_results()]


# Tracking is an export of the tracked files (mnist_mlp.tracking): its rule runs when switched on.
TRACKING = config["tracking"]
TRACKING_OUTPUT = layout.tracking_output(TRACKING)
if TRACKING["backend"] == "tensorboard":
    TRACKING_OUTPUT = directory(TRACKING_OUTPUT)


def all_results(wildcards=None):
    """Input of rank_trials: every trial's final result."""
    return [path for batch in range(BATCHES) for path in batch_results(batch)]


def rung_tables(wildcards=None, batches=BATCHES):
    """Every rung's decisions, of all batches or of the first ``batches`` (halving)."""
    if not HALVING:
        return []
    return [
        path("promote_trials", "decisions").format(batch=batch, rung=rung)
        for batch in range(batches)
        for rung in range(len(RUNGS))
    ]


def search_outputs():
    return [*paths("sample_trials").values(), *paths("rank_trials", HALVING).values()]


def retrained_trials(wildcards=None):
    """The final.top_k best trials of the search that did not diverge, then the references.
    Known once the ranking exists (rank_trials is a checkpoint)."""
    ranking = read_tsv(checkpoints.rank_trials.get().output.ranking)
    finite = [row["trial"] for row in ranking if row["status"] == "ok"]
    return finite[: config["final"]["top_k"]] + list(REFERENCES)


def retrained(name):
    """Input function: one file per retrained trial (the retrain rule's output ``name``:
    model, metrics, history)."""
    pattern = path("retrain", name)
    return lambda wildcards: [pattern.format(trial=trial) for trial in retrained_trials()]


def candidates(name):
    """Input function: one file per retrained candidate (the references left out)."""
    return lambda wildcards: [
        path("retrain", name).format(trial=trial)
        for trial in retrained_trials()
        if trial not in REFERENCES
    ]


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
    """What a run ends with beyond the search: every output without wildcards of the final
    stage and the figures (and the tracking export where it is on)."""
    found = [
        output
        for rule in layout.RULES
        if layout.RULES[rule].stage in ("final", "figures")
        for output in paths(rule, HALVING).values()
        if "{" not in output
    ]
    found += [*paths("export_study").values()]
    return found + ([TRACKING_OUTPUT] if TRACKING["backend"] != "none" else [])


# The config of the run that started last (make progress reads it), and of the results: the
# latter only once a run of the whole workflow has ended well, since a run cut short or given
# some targets only may leave results of several configs (the report refuses them then).
STARTED_CONFIG = layout.STARTED_CONFIG
RESULTS_CONFIG = layout.RESULTS_CONFIG


def start_run():
    """Before the first job of a run (not for a dry-run): refuse a GPU the machine does not
    have, and keep the run's effective config beside its results."""
    if workflow.local_exec and config["device"].startswith("cuda"):
        try:
            check_cuda(config["device"])
        except ConfigError as error:
            raise WorkflowError(str(error)) from None
    Path("results").mkdir(exist_ok=True)
    write_text(STARTED_CONFIG, yaml.safe_dump(config, sort_keys=False))
    Path(RESULTS_CONFIG).unlink(missing_ok=True)  # until this run ends well


def end_run():
    """After a run that ended well: if it made the whole workflow (no targets given), every
    result is this config's."""
    if not workflow.dag_settings.targets and Path(STARTED_CONFIG).exists():
        os.replace(STARTED_CONFIG, RESULTS_CONFIG)
