"""The search as an Optuna study, and which hyper-parameters mattered.

``results/search/study.db`` is an Optuna storage (SQLite) built from the trials' results, which
stay the source of truth: every trial with its hyper-parameters in the declared space, its CV
loss as the objective (lower is better), its other figures as user attributes; a diverged trial
as failed; with successive halving each rung's score as an intermediate value (step: the
epochs per fold) and a pruned trial as pruned. Any sampler's run has one, so that
``optuna-dashboard sqlite:///results/search/study.db`` and ``optuna.load_study`` open it
offline. Its start and end times are stand-ins (trials ran in parallel, in other processes):
each trial's duration is its job's fitting time.

Importance: Optuna's fANOVA evaluator (a random forest fitted to the completed trials' CV
losses, seeded), over the drawn hyper-parameters, normalised to sum to 1.
"""

from __future__ import annotations

import logging
import math
import os
import tempfile
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path

from .io import read_result, read_table, write_table
from .plotting import pyplot, save_png
from .trials import searched, value_of

log = logging.getLogger(__name__)

STUDY_NAME = "mnist-mlp-search"
# Trials get start times one minute apart from here (stand-ins, see the module docstring).
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


def _quiet():
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    return optuna


def distributions(space: dict) -> dict:
    """Optuna's distribution of each drawn hyper-parameter: the widest range it can take (a
    bound that names another parameter at that parameter's extreme), so that every trial
    shares one search space, as the importance evaluators require."""
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    found = {}
    for name in searched(space):
        (kind, argument), *_ = space[name].items()
        if kind == "choice":
            found[name] = CategoricalDistribution([v for v, w in argument.items() if w > 0])
        elif kind == "int":
            low = value_of(space[name], 0.0, _extremes(space, 0.0))
            high = value_of(space[name], math.nextafter(1.0, 0.0), _extremes(space, 1.0))
            found[name] = IntDistribution(low, high)
        else:
            found[name] = FloatDistribution(*argument, log=kind == "loguniform")
    return found


def _extremes(space: dict, u: float) -> dict:
    """Every integer parameter at its smallest (u = 0) or largest (u -> 1) value."""
    values, u = {}, min(u, math.nextafter(1.0, 0.0))
    for name, declared in space.items():
        if not isinstance(declared, dict) or "int" in declared:
            values[name] = value_of(declared, u, values)
    return values


def frozen_trials(results: list[dict], rungs, space: dict) -> list:
    """The trials of the study, in trial order."""
    optuna = _quiet()
    from optuna.trial import TrialState, create_trial

    found = distributions(space)
    scores: dict[str, dict[int, float]] = {}
    if rungs is not None:
        for row in rungs.to_dict("records"):
            if row["decision"] in ("promoted", "pruned") and math.isfinite(row["score"]):
                scores.setdefault(row["trial"], {})[int(row["budget"])] = float(row["score"])
    trials = []
    for number, result in enumerate(sorted(results, key=lambda r: r["trial"])):
        params = {name: result["params"][name] for name in found}
        status = result["status"]
        attrs = {"trial": result["trial"], "mean_epochs": result["mean_epochs"]}
        if status == "ok":
            attrs |= {"std_loss": result["std_loss"], "mean_accuracy": result["mean_accuracy"]}
            state, value = TrialState.COMPLETE, result["mean_loss"]
        else:
            state = TrialState.PRUNED if status == "running" else TrialState.FAIL
            value = None
        attrs["status"] = "pruned" if status == "running" else status
        if "rung" in result:
            attrs |= {"rung": result["rung"], "budget": result["budget"]}
        trial = create_trial(
            state=state,
            value=value,
            params=params,
            distributions=found,
            user_attrs=attrs,
            intermediate_values=scores.get(result["trial"], {}),
        )
        trial.datetime_start = EPOCH + timedelta(minutes=number)
        seconds = sum(fold.get("seconds", 0.0) for fold in result["folds"])
        trial.datetime_complete = trial.datetime_start + timedelta(seconds=seconds)
        trials.append(trial)
    del optuna
    return trials


def export_study(results: list[dict], rungs, space: dict, path, direction="minimize") -> None:
    """Write the study to the SQLite file ``path`` (made beside it, then renamed into place)."""
    optuna = _quiet()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        os.unlink(tmp)  # SQLite makes the file itself
        study = optuna.create_study(
            storage=f"sqlite:///{tmp}", study_name=STUDY_NAME, direction=direction
        )
        study.add_trials(frozen_trials(results, rungs, space))
        del study
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def load(path):
    """The study in ``path`` (``optuna.load_study``)."""
    optuna = _quiet()
    return optuna.load_study(study_name=STUDY_NAME, storage=f"sqlite:///{Path(path)}")


def export_study_stage(result_paths, rungs_path, space: dict, output) -> None:
    """Rule export_study: the Optuna study of the search."""
    rungs = read_table(rungs_path) if rungs_path else None
    export_study([read_result(path) for path in result_paths], rungs, space, output)
    log.info("study with %d trials in %s", len(result_paths), output)


def importances(study) -> dict[str, float]:
    """fANOVA importance of each drawn hyper-parameter for the CV loss (sums to 1); empty with
    fewer than two completed trials."""
    optuna = _quiet()
    from optuna.importance import FanovaImportanceEvaluator
    from optuna.trial import TrialState

    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if len(complete) < 2:
        return {}
    found = optuna.importance.get_param_importances(
        study, evaluator=FanovaImportanceEvaluator(seed=0)
    )
    return dict(sorted(found.items(), key=lambda item: (-item[1], item[0])))


def plot_importance(importance: dict[str, float], completed: int, path) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 0.5 * max(len(importance), 2) + 1.2))
    names = list(importance)[::-1]
    ax.barh(names, [importance[n] for n in names], color="tab:blue")
    for y, name in enumerate(names):
        ax.text(importance[name], y, f" {importance[name]:.2f}", va="center", fontsize=9)
    ax.set_xlim(0, 1.1)
    ax.set_xlabel("share of the CV loss's variance (fANOVA, Optuna)")
    ax.set_title(f"Which hyper-parameters mattered ({completed} completed trials)")
    if not importance:
        ax.text(0.5, 0.5, "fewer than 2 completed trials", ha="center", transform=ax.transAxes)
    fig.tight_layout()
    save_png(fig, path, dpi=110)


def _axis_values(column, declared):
    """A hyper-parameter's values on a [0, 1] axis (log scale for loguniform, one tick per
    choice) and the axis's tick labels."""
    import numpy as np

    (kind, argument), *_ = declared.items()
    if kind == "choice":
        choices = list(argument)
        positions = np.linspace(0, 1, len(choices)) if len(choices) > 1 else np.array([0.5])
        lookup = dict(zip(choices, positions, strict=True))
        return column.map(lookup).to_numpy(), list(zip(positions, map(str, choices), strict=True))
    values = column.to_numpy(dtype=float)
    logarithmic = kind == "loguniform"
    transform = np.log10 if logarithmic else (lambda x: x)
    low, high = transform(np.nanmin(values)), transform(np.nanmax(values))
    span = (high - low) or 1.0
    return (transform(values) - low) / span, _ticks(low, high, logarithmic)


def _ticks(low: float, high: float, logarithmic: bool) -> list[tuple[float, str]]:
    """The axis's ends and, between them, each power of ten (log axes) or the middle."""
    span = (high - low) or 1.0
    ends = [low, high]
    inner = range(math.ceil(low + 0.15 * span), math.floor(high - 0.15 * span) + 1)
    between = [float(d) for d in inner] if logarithmic else [(low + high) / 2]
    values = sorted({*ends, *between}) if high > low else [low]
    shown = (lambda v: f"{10**v:.3g}") if logarithmic else (lambda v: f"{v:.3g}")
    return [((v - low) / span, shown(v)) for v in values]


def plot_parallel_coordinates(ranking, space: dict, top_k: int, path) -> None:
    """One line per trial across the drawn hyper-parameters and the CV loss, coloured by the
    loss (log scale); the best ``top_k`` drawn on top in red; pruned trials grey."""
    import numpy as np
    from matplotlib.colors import LogNorm

    plt = pyplot()
    names = searched(space)
    axes_values, ticks = [], []
    for name in names:
        values, labels = _axis_values(ranking[name], space[name])
        axes_values.append(values)
        ticks.append(labels)
    loss = ranking["mean_loss"].to_numpy(dtype=float)
    finite = np.isfinite(loss)
    fig, ax = plt.subplots(figsize=(1.6 * (len(names) + 1) + 2, 5.2))
    norm = None
    if finite.any():
        norm = LogNorm(vmin=np.min(loss[finite]), vmax=np.max(loss[finite]))
        low, high = np.log10(norm.vmin), np.log10(norm.vmax)
        loss_axis = np.where(
            finite, (np.log10(np.where(finite, loss, 1)) - low) / ((high - low) or 1), np.nan
        )
        ticks.append(_ticks(low, high, logarithmic=True))
    else:
        loss_axis = np.full(len(loss), np.nan)
        ticks.append([])
    matrix = np.column_stack([*axes_values, loss_axis])
    x = np.arange(matrix.shape[1])
    cmap = plt.get_cmap("viridis")  # the best dark, on white
    order = np.argsort(-np.where(finite, loss, np.inf))  # the best drawn last, on top
    best = set(np.flatnonzero(finite)[np.argsort(loss[finite])][:top_k])
    for row in order:
        if finite[row]:
            ax.plot(
                x,
                matrix[row],
                color="tab:red" if row in best else cmap(norm(loss[row])),
                lw=1.8 if row in best else 0.8,
                alpha=0.95 if row in best else 0.5,
                zorder=3 if row in best else 2,
            )
        else:
            ax.plot(x[:-1], matrix[row, :-1], color="0.7", lw=0.6, alpha=0.6, zorder=1)
    for position, labels in zip(x, ticks, strict=True):
        ax.axvline(position, color="0.3", lw=0.8)
        for y, label in labels:
            ax.text(position, y, f" {label}", fontsize=8, va="center", ha="left")
    ax.set_xticks(x, [*names, "CV loss"])
    ax.set_yticks([])
    ax.set_xlim(-0.3, x[-1] + 0.6)
    ax.set_ylim(-0.05, 1.05)
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    if norm is not None:
        mappable = plt.cm.ScalarMappable(norm=norm, cmap=cmap)
        fig.colorbar(mappable, ax=ax, label="mean held-out loss (CV)", pad=0.02)
    pruned = int((ranking["status"] == "pruned").sum())
    ax.set_title(
        f"Every trial across its hyper-parameters: the best {min(top_k, int(finite.sum()))} "
        "in red" + (f", {pruned} pruned in grey" if pruned else "")
    )
    fig.tight_layout()
    save_png(fig, path, dpi=110)


def plot_importance_stage(study_path, ranking_path, space: dict, top_k: int, outputs) -> dict:
    """Rule plot_importance: the importance table and figure, and the parallel coordinates."""
    study = load(study_path)
    importance = importances(study)
    rows = [{"hyperparameter": k, "importance": v} for k, v in importance.items()]
    write_table(rows or {"hyperparameter": [], "importance": []}, outputs.table)
    completed = sum(t.state.name == "COMPLETE" for t in study.get_trials(deepcopy=False))
    plot_importance(importance, completed, outputs.importance)
    plot_parallel_coordinates(read_table(ranking_path), space, top_k, outputs.parallel)
    log.info("importance: %s", importance)
    return importance
