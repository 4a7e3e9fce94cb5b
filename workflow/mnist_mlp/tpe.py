"""The TPE sampler (``search.sampler: tpe``): Optuna's Tree-structured Parzen Estimator proposes
each batch of trials from the results of every earlier one.

TPE works in the unit cube of ``mnist_mlp.trials`` (one coordinate in [0, 1) per drawn
hyper-parameter, mapped to a value by ``trials.value_of``), so its prior is the random
sampler's distribution (log scales, the weights of a choice, Nh2 below Nh1) and every trial it
proposes lies in the declared space. A batch is one job: the study is rebuilt in memory from
the earlier trials' results (the results stay the source of truth), seeded by the config's seed
and the batch's index, and asked for the batch's trials one after another with the "constant
liar" (each trial asked counts as a bad result until told), so that a batch spreads out instead
of proposing one point several times. The same results give the same batch on the same kind of
machine; on another kind, CV losses differ in their last bits and TPE may propose other trials.
"""

from __future__ import annotations

import logging
import math
import warnings

from .io import read_result, write_json
from .trials import trial_from_uniforms, trial_index, uniforms_of

log = logging.getLogger(__name__)

TPE_STREAM = "tpe"
CHANCE_LOSS = math.log(10)  # cross-entropy of a uniform guess among 10 digits


def _study(seed: int, batch: int, space: dict, results: list[dict]):
    import optuna
    from optuna.distributions import FloatDistribution
    from optuna.samplers import TPESampler
    from optuna.trial import TrialState, create_trial

    from .training import derived_seed

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    sampler = TPESampler(
        seed=derived_seed(seed, TPE_STREAM, batch),
        n_startup_trials=0,  # the startup trials are the random sampler's, told below
        multivariate=True,
        constant_liar=True,
    )
    study = optuna.create_study(direction="minimize", sampler=sampler)
    finite = [r["mean_loss"] for r in results if _finite(r.get("mean_loss"))]
    worst = max([*finite, CHANCE_LOSS])
    for result in sorted(results, key=lambda r: r["trial"]):
        params = {"trial": result["trial"], **result["params"]}
        point = uniforms_of(params, space)
        distributions = {name: FloatDistribution(0.0, 1.0) for name in point}
        if result["status"] == "pruned":  # successive halving stopped it: its rung scores
            trial = create_trial(
                state=TrialState.PRUNED,
                params=point,
                distributions=distributions,
                intermediate_values={int(k): v for k, v in result["rung_scores"].items()},
            )
        else:  # a diverged trial counts as the worst loss seen, at least a uniform guess's
            value = result["mean_loss"] if _finite(result.get("mean_loss")) else worst
            trial = create_trial(params=point, distributions=distributions, value=value)
        study.add_trial(trial)
    return study


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def propose(seed: int, batch: int, first: int, size: int, space: dict, results: list[dict]):
    """Trials ``first`` to ``first + size - 1`` (id -> hyper-parameters), proposed by TPE from
    ``results`` (the final result of every earlier trial: a CV result, or a halving rung)."""
    from optuna.distributions import FloatDistribution

    study = _study(seed, batch, space, results)
    drawn = [name for name, declared in space.items() if isinstance(declared, dict)]
    below_one = math.nextafter(1.0, 0.0)
    trials = {}
    for index in range(first, first + size):
        asked = study.ask({name: FloatDistribution(0.0, 1.0) for name in drawn})
        point = {name: min(asked.params[name], below_one) for name in drawn}
        trial = trial_from_uniforms(index, space, point)
        trials[trial["trial"]] = trial
    return trials


def propose_trials_stage(result_paths, output, seed, batch, first, size, space) -> dict:
    """Rule propose_trials: batch ``batch`` of the TPE search as a JSON table of trials."""
    results = [read_result(path) for path in result_paths]
    trials = propose(seed, batch, first, size, space, results)
    write_json(output, trials)
    log.info(
        "batch %d: %d trials from %d results: %s",
        batch,
        len(trials),
        len(results),
        ", ".join(sorted(trials, key=trial_index)),
    )
    return trials
