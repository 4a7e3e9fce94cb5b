"""Trials: the search space as the config declares it, the hyper-parameter sets drawn from it (ids
``t0000``, ...), the fixed reference sets of the config (ids ``ref_<name>``), and the lab's
random sampler.

"config" in this project means the workflow's configuration (``config.yaml``); one sampled set
of hyper-parameters is a *trial*, as in Optuna or Ray Tune.

The space (``search.space``) gives each hyper-parameter of the training routine as a
distribution or a fixed value::

    {int: [low, high]}          an integer, low <= x < high (numpy's randint, as in the lab);
                                a bound may name an integer parameter drawn before this one
    {uniform: [low, high]}      low <= x < high
    {loguniform: [low, high]}   10 ** uniform(log10 low, log10 high)
    {choice: {a: p, b: q}}      a with probability p, ... ({choice: [a, b]}: equal weights)
    value                       fixed

Every sampler works in the unit cube: a trial is a point u in [0, 1) per searched parameter,
mapped to its value by ``value_of`` (the cumulative weights for a choice, the fraction of the
range left by another parameter for a bound that names it). The random sampler draws u; TPE
proposes it (``mnist_mlp.tpe``), so TPE's prior is the random sampler's distribution and every
constraint of the space holds by construction.

Pure standard library: the Snakefile samples every random trial when it plans a run (each
trial's hyper-parameters reach its jobs as ``params``), and planning must work where only
Snakemake is installed. Each trial is drawn from its own stream, ``random.Random`` seeded with
the string "<seed>/<index>": raising ``n_trials`` adds trials without changing the existing
ones. The lab's six hyper-parameters take that stream's first six uniforms in the lab's order
(Nh1, Nh2, optimizer, dropout, lr, L2) whatever the space, fixed ones included, so that
changing one leaves the others of each trial as they were; any other parameter draws from a
stream of its own name. Only ``Random.random()`` is used, whose sequence for a given seed
Python guarantees across versions (``randint``, ``choice`` and numpy's generators carry no
such promise).
"""

from __future__ import annotations

import math
import random
import re

from .io import read_json

TRIAL_ID_DIGITS = 4  # ids t0000..t9999; the schema caps n_trials at 10000
TRIAL_ID_PATTERN = rf"t\d{{{TRIAL_ID_DIGITS}}}"
REFERENCE_PREFIX = "ref_"
REFERENCE_ID_PATTERN = rf"{REFERENCE_PREFIX}[A-Za-z0-9_]+"
# The lab's hyper-parameters: every trial has them, drawn or fixed.
HYPERPARAMETERS = ("Nh1", "Nh2", "dropout", "optimizer", "lr", "L2")
# Every hyper-parameter the training routine takes, in the order a trial lists them. One beyond
# the lab's six belongs to a trial only where the space searches it; fixed, it is a setting of
# every training job (search.space.batch_size: 128 is the lab's batch size).
TRAINING_HYPERPARAMETERS = (*HYPERPARAMETERS, "batch_size")
LAB_DRAW_ORDER = ("Nh1", "Nh2", "optimizer", "dropout", "lr", "L2")
OPTIMIZERS = ("Adam", "AdamW", "RMSprop", "SGD")  # those of torch.optim the workflow supports
INTEGER_PARAMETERS = ("Nh1", "Nh2", "batch_size")
DISTRIBUTIONS = ("int", "uniform", "loguniform", "choice")
# What each hyper-parameter may be: (test, what it must be).
VALID_VALUES = {
    "Nh1": (lambda v: _is_int(v) and v >= 1, "an integer >= 1"),
    "Nh2": (lambda v: _is_int(v) and v >= 1, "an integer >= 1"),
    "batch_size": (lambda v: _is_int(v) and v >= 1, "an integer >= 1"),
    "dropout": (lambda v: _is_number(v) and 0 <= v < 1, "a number in [0, 1)"),
    "lr": (lambda v: _is_number(v) and 0 < v <= 1e30, "a number > 0"),
    "L2": (lambda v: _is_number(v) and 0 <= v <= 1e30, "a number >= 0"),
    "optimizer": (lambda v: v in OPTIMIZERS, f"one of {', '.join(OPTIMIZERS)}"),
}


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def trial_id(index: int) -> str:
    return f"t{index:0{TRIAL_ID_DIGITS}d}"


def trial_index(tid: str) -> int:
    if not re.fullmatch(TRIAL_ID_PATTERN, tid):
        raise ValueError(f"not a trial id: {tid!r} (expected t followed by 4 digits)")
    return int(tid[1:])


def trial_ids(n_trials: int, start: int = 0) -> list[str]:
    return [trial_id(i) for i in range(start, n_trials)]


def batch_range(batch: int, startup: int, size: int) -> tuple[int, int]:
    """(first trial index, number of trials) of a batch of the search: batch 0 is the
    ``startup`` trials (all of them with the random sampler), batch k >= 1 the k-th batch of
    ``size`` that TPE proposes. TPE proposes a whole batch even where n_trials ends inside it,
    so that raising n_trials changes no proposal made before (the trials beyond n_trials are
    not trained)."""
    if batch == 0:
        return 0, startup
    return startup + (batch - 1) * size, size


def batch_sizes(n_trials: int, startup: int, size: int) -> list[int]:
    """The number of trials each batch trains (up to n_trials)."""
    sizes = [min(startup, n_trials)]
    while sum(sizes) < n_trials:
        sizes.append(min(size, n_trials - sum(sizes)))
    return sizes


def search_batch_sizes(search: dict) -> list[int]:
    """The batches of the config's search (``search``), as ``batch_sizes``: one of every trial
    with the random sampler; with TPE, its startup trials, then batches of ``tpe.batch``."""
    n_trials = int(search["n_trials"])
    if search.get("sampler") != "tpe":
        return [n_trials]
    startup = min(int(search["tpe"]["startup_trials"]), n_trials)
    return batch_sizes(n_trials, startup, int(search["tpe"]["batch"]))


def reference_id(name: str) -> str:
    return f"{REFERENCE_PREFIX}{name}"


def is_reference(tid: str) -> bool:
    return tid.startswith(REFERENCE_PREFIX)


def hyperparameters_of(trial: dict) -> list[str]:
    """The hyper-parameter names of a trial (or of its ``params``), in trial order."""
    return [name for name in TRAINING_HYPERPARAMETERS if name in trial]


def trial_of(param: dict, proposal=None) -> dict:
    """A training job's trial: its ``trial`` param (sampled, or a reference of the config), or,
    for a trial TPE proposed (the param names its batch: ``proposed_in``), read from the batch's
    proposal, an input of the job. Snakemake plans params before a checkpoint reruns and does
    not support reading one into them: a job could start with ``<TBD>`` hyper-parameters."""
    if "proposed_in" not in param:
        return param
    proposed = read_json(proposal)[param["trial"]]  # JSON keeps the exact floats
    return {"trial": param["trial"], **{key: proposed[key] for key in hyperparameters_of(proposed)}}


# --- the space --------------------------------------------------------------------------------


def _number(value):
    """A number written as a string (Snakemake's --config passes "1e-4") as a number."""
    if isinstance(value, str):
        try:
            return int(value) if re.fullmatch(r"[+-]?\d+", value) else float(value)
        except ValueError:
            return value
    return value


def _typed(name: str, value):
    """``value`` as the type ``name`` takes: 2.0 means 2 for an integer, 1 means 1.0 for a
    number, so that how the config writes a value is no change."""
    value = _number(value)
    if name in INTEGER_PARAMETERS and isinstance(value, float) and value.is_integer():
        return int(value)
    if name not in INTEGER_PARAMETERS and name != "optimizer" and _is_int(value):
        return float(value)
    return value


def dimension(name: str, declared) -> dict:
    """One hyper-parameter of the space in its canonical form: ``{"int": [low, high]}``,
    ``{"uniform": [...]}``, ``{"loguniform": [...]}``, ``{"choice": {value: weight}}`` (in
    value order, weights as floats) or the fixed value. Assumes ``space_problems`` found none."""
    if not isinstance(declared, dict):
        return _typed(name, declared)
    (kind, argument), *_ = declared.items()
    if kind == "choice":
        if isinstance(argument, list):
            argument = {value: 1.0 for value in argument}
        weights = {_typed(name, value): float(_number(w)) for value, w in argument.items()}
        return {"choice": dict(sorted(weights.items()))}
    if kind == "int":
        return {"int": [bound if _is_name(bound) else int(_number(bound)) for bound in argument]}
    return {kind: [float(_number(bound)) for bound in argument]}


def _is_numeric(text: str) -> bool:
    return not isinstance(_number(text), str)


def sampled_space(space: dict) -> dict:
    """What the sampler draws from, canonical (``dimension``): the lab's six hyper-parameters,
    drawn or fixed, then the others that are drawn (a fixed one is a setting, not part of a
    trial). The sampling job's param: a change of it is a change of the trials."""
    return {
        name: dimension(name, space[name])
        for name in TRAINING_HYPERPARAMETERS
        if name in HYPERPARAMETERS or isinstance(space.get(name), dict)
    }


def fixed_settings(space: dict) -> dict:
    """The fixed values of the hyper-parameters beyond the lab's six (``batch_size: 128``):
    settings of every training job rather than part of each trial."""
    return {
        name: dimension(name, space[name])
        for name in TRAINING_HYPERPARAMETERS
        if name not in HYPERPARAMETERS and name in space and not isinstance(space[name], dict)
    }


def searched(space: dict) -> list[str]:
    """The names of the parameters that are drawn (not fixed), in draw order."""
    return [name for name in draw_order(space) if isinstance(space[name], dict)]


def draw_order(space: dict) -> list[str]:
    """The order values are computed in: the lab's, then the others in trial order."""
    extras = [n for n in TRAINING_HYPERPARAMETERS if n not in LAB_DRAW_ORDER and n in space]
    return [*LAB_DRAW_ORDER, *extras]


def space_problems(space, key: str = "search.space") -> list[str]:
    """What is wrong with a declared space, one line per problem naming its key."""
    if not isinstance(space, dict):
        return [f"config key {key}: expected a mapping of hyper-parameters, got {space!r}"]
    problems = []
    for name in space:
        if name not in TRAINING_HYPERPARAMETERS:
            problems.append(
                f"config key {key}.{name}: not a hyper-parameter of the training routine "
                f"(those are {', '.join(TRAINING_HYPERPARAMETERS)})"
            )
    for name in TRAINING_HYPERPARAMETERS:
        if name not in space:
            problems.append(
                f"config key {key}.{name}: missing; give a distribution or a fixed value"
            )
    if problems:
        return problems
    order, bad = draw_order(space), set()
    for position, name in enumerate(order):
        declared = space[name]
        named = declared.get("int", []) if isinstance(declared, dict) else []
        if any(bound in bad for bound in named if isinstance(bound, str)):
            bad.add(name)  # its bound names a parameter that is wrong already
            continue
        found = _dimension_problems(name, declared, f"{key}.{name}", order[:position], space)
        if found:
            bad.add(name)
            problems += found
    return problems


def _dimension_problems(name, declared, key, earlier, space) -> list[str]:
    valid, must_be = VALID_VALUES[name]
    if not isinstance(declared, dict):
        value = _typed(name, declared)
        return [] if valid(value) else [f"config key {key}: must be {must_be}, got {declared!r}"]
    if len(declared) != 1 or next(iter(declared)) not in DISTRIBUTIONS:
        return [
            f"config key {key}: expected one of {{int: [low, high]}}, {{uniform: [low, high]}}, "
            f"{{loguniform: [low, high]}}, {{choice: ...}} or a fixed value, got {declared!r}"
        ]
    (kind, argument), *_ = declared.items()
    if kind == "choice":
        return _choice_problems(name, argument, key, valid, must_be)
    if not isinstance(argument, list) or len(argument) != 2:
        return [f"config key {key}: {kind} takes [low, high], got {argument!r}"]
    if kind == "int":
        return _int_problems(name, argument, key, earlier, space)
    if name in INTEGER_PARAMETERS or name == "optimizer":
        return [f"config key {key}: {name} takes int or choice, not {kind}"]
    low, high = (_number(bound) for bound in argument)
    if not (_is_number(low) and _is_number(high)):
        return [f"config key {key}: {kind} bounds must be finite numbers, got {argument!r}"]
    if not low < high:
        return [f"config key {key}: expected [low, high] with low < high, got {argument!r}"]
    problems = []
    if kind == "loguniform" and low <= 0:
        problems.append(f"config key {key}: loguniform needs low > 0, got {argument!r}")
    elif kind == "loguniform" and not (-30 <= math.log10(low) and math.log10(high) <= 30):
        problems.append(
            f"config key {key}: bounds between 1e-30 and 1e30 (beyond, float32 training "
            f"under- or overflows), got {argument!r}"
        )
    # uniform: values lie in [low, high), so high itself may be the limit (dropout 1)
    high_ok = valid(high) or (name == "dropout" and high == 1)
    if not valid(low) or (kind == "uniform" and not high_ok):
        problems.append(f"config key {key}: values must be {must_be}, got {argument!r}")
    return problems


def _choice_problems(name, argument, key, valid, must_be) -> list[str]:
    if isinstance(argument, list):
        argument = {value: 1 for value in argument}
    if not isinstance(argument, dict) or not argument:
        return [f"config key {key}: choice takes {{value: weight, ...}} or [value, ...]"]
    problems = []
    for value, weight in argument.items():
        if not valid(_typed(name, value)):
            problems.append(f"config key {key}: choices must be {must_be}, got {value!r}")
        weight = _number(weight)
        if not _is_number(weight) or weight < 0:
            problems.append(f"config key {key}: weights must be numbers >= 0, got {weight!r}")
    if not problems and not math.fsum(_number(w) for w in argument.values()) > 0:
        problems.append(f"config key {key}: at least one weight must be above 0")
    return problems


def _int_problems(name, argument, key, earlier, space) -> list[str]:
    if name not in INTEGER_PARAMETERS:
        return [f"config key {key}: {name} is not an integer: use uniform or loguniform"]
    for bound in argument:
        if _is_name(bound):
            if bound not in earlier or bound not in INTEGER_PARAMETERS:
                named = ", ".join(n for n in earlier if n in INTEGER_PARAMETERS) or "none"
                return [
                    f"config key {key}: a bound may name an integer parameter drawn before "
                    f"{name} ({named}), got {bound!r}"
                ]
        elif not _is_integral(_number(bound)):
            return [f"config key {key}: int bounds must be integers, got {argument!r}"]
    low, high = argument
    if _lowest(low, space) < 1:
        return [f"config key {key}: values must be integers >= 1, got {argument!r}"]
    if not _lowest(high, space) > _highest(low, space):
        return [
            f"config key {key}: expected [low, high] with high > low (high excluded), for "
            f"every value a bound that names a parameter can take; got {argument!r}"
        ]
    return []


def _is_name(bound) -> bool:
    return isinstance(bound, str) and not _is_numeric(bound)


def _is_integral(value) -> bool:
    return _is_int(value) or (isinstance(value, float) and value.is_integer())


def _int_range(name: str, space: dict) -> tuple[int, int]:
    """(smallest, largest) value an integer parameter can take."""
    declared = dimension(name, space[name])
    if not isinstance(declared, dict):
        return declared, declared
    if "choice" in declared:
        values = [v for v, w in declared["choice"].items() if w > 0]
        return min(values), max(values)
    low, high = declared["int"]
    return _lowest(low, space), _highest(high, space) - 1


def _lowest(bound, space) -> int:
    return _int_range(bound, space)[0] if _is_name(bound) else int(_number(bound))


def _highest(bound, space) -> int:
    return _int_range(bound, space)[1] if _is_name(bound) else int(_number(bound))


def widest(space: dict) -> tuple[int, int]:
    """The largest Nh1 and Nh2 the space can give (for the memory check)."""
    return _int_range("Nh1", space)[1], _int_range("Nh2", space)[1]


# --- from the unit cube to a trial -------------------------------------------------------------


def _below(u: float, n: int) -> int:
    """An integer uniform on [0, n) from u uniform on [0, 1)."""
    return min(int(u * n), n - 1)


def value_of(declared, u: float, drawn: dict):
    """The value of one hyper-parameter (canonical, ``dimension``) at ``u`` in [0, 1); ``drawn``:
    the values computed before it (for a bound that names one)."""
    if not isinstance(declared, dict):
        return declared
    (kind, argument), *_ = declared.items()
    if kind == "int":
        low, high = (drawn[b] if isinstance(b, str) else b for b in argument)
        return low + _below(u, high - low)
    if kind == "uniform":
        low, high = argument
        return low + u * (high - low)
    if kind == "loguniform":
        low, high = (math.log10(bound) for bound in argument)
        return 10 ** (low + u * (high - low))
    names = list(argument)  # choice: in value order
    total = math.fsum(argument.values())
    # the last value with a positive weight, should rounding leave u above the sum
    cumulative, chosen = 0.0, [value for value in names if argument[value] > 0][-1]
    for value in names:
        cumulative += argument[value] / total
        if u < cumulative:
            return value
    return chosen


def uniform_of(declared, value, drawn: dict) -> float | None:
    """The inverse of ``value_of``: a point of [0, 1) that gives ``value`` (the middle of the
    interval that does), or None for a fixed value (TPE learns from earlier trials this way)."""
    if not isinstance(declared, dict):
        return None
    (kind, argument), *_ = declared.items()
    if kind == "int":
        low, high = (drawn[b] if isinstance(b, str) else b for b in argument)
        return (value - low + 0.5) / (high - low)
    if kind == "uniform":
        low, high = argument
        return min(max((value - low) / (high - low), 0.0), math.nextafter(1.0, 0.0))
    if kind == "loguniform":
        low, high = (math.log10(bound) for bound in argument)
        position = (math.log10(value) - low) / (high - low)
        return min(max(position, 0.0), math.nextafter(1.0, 0.0))
    total, cumulative = math.fsum(argument.values()), 0.0
    for choice, weight in argument.items():
        if choice == value:
            return (cumulative + weight / total / 2) if weight > 0 else cumulative
        cumulative += weight / total
    raise ValueError(f"{value!r} is not among the choices {list(argument)}")


def trial_from_uniforms(index: int, space: dict, uniforms: dict) -> dict:
    """Trial ``index`` at the point ``uniforms`` (name -> u) of the sampled space
    (``sampled_space``): the lab's six, then the drawn others, in trial order."""
    drawn = {}
    for name in draw_order(space):
        drawn[name] = value_of(space[name], uniforms.get(name, 0.0), drawn)
    return {"trial": trial_id(index), **{name: drawn[name] for name in hyperparameters_of(drawn)}}


def uniforms_of(trial: dict, space: dict) -> dict:
    """The point of the unit cube of a trial's hyper-parameters (drawn ones only)."""
    point = {}
    for name in draw_order(space):
        u = uniform_of(space[name], trial[name], trial)
        if u is not None:
            point[name] = u
    return point


def random_uniforms(seed: int, index: int, space: dict) -> dict:
    """The random sampler's point for trial ``index``: the lab's six take the first six uniforms
    of the trial's stream in the lab's order, any other parameter one of its own stream."""
    stream = random.Random(f"{seed}/{index}")
    point = {name: stream.random() for name in LAB_DRAW_ORDER}
    for name in draw_order(space)[len(LAB_DRAW_ORDER) :]:
        point[name] = random.Random(f"{seed}/{index}/{name}").random()
    return point


def sample_trial(seed: int, index: int, space: dict) -> dict:
    """Draw trial ``index`` as the lab did (``space``: ``sampled_space``)."""
    return trial_from_uniforms(index, space, random_uniforms(seed, index, space))


def sample_trials(seed: int, n_trials: int, space: dict, start: int = 0) -> dict[str, dict]:
    """Trial id -> hyper-parameters, for trials ``start`` to ``n_trials - 1``."""
    return {trial_id(i): sample_trial(seed, i, space) for i in range(start, n_trials)}


# --- references --------------------------------------------------------------------------------


def reference_trial(name: str, values: dict) -> dict:
    """A reference of the config as a trial, in trial order and types (so that how the config
    writes it, 1e-3 or 0.001, in whatever key order, is no change)."""
    return {
        "trial": reference_id(name),
        **{key: _typed(key, values[key]) for key in TRAINING_HYPERPARAMETERS if key in values},
    }


def reference_trials(references: dict) -> dict[str, dict]:
    """Trial id -> hyper-parameters of the config's ``final.references``, in name order."""
    return {
        reference_id(name): reference_trial(name, references[name]) for name in sorted(references)
    }


# --- the space before it was data ---------------------------------------------------------------

# The search keys of releases before search.space, and what replaced each.
OLD_SEARCH_KEYS = ("Nh1", "dropout", "log10_lr", "log10_L2", "optimizers", "batch_size")


def space_from_old(old: dict) -> dict:
    """The space (``sampled_space`` form, plus batch_size where given) that the search keys of
    earlier releases described: the same trials."""
    space = {}
    if "Nh1" in old:
        low, high = old["Nh1"]
        space["Nh1"] = {"int": [int(low) + 1, int(high)]}  # Nh1 = low left no Nh2 below it
        space["Nh2"] = {"int": [int(low), "Nh1"]}
    if "optimizers" in old:
        space["optimizer"] = {"choice": dict(sorted(old["optimizers"].items()))}
    if "dropout" in old:
        space["dropout"] = {"uniform": [float(b) for b in old["dropout"]]}
    for key, name in (("log10_lr", "lr"), ("log10_L2", "L2")):
        if key in old:
            space[name] = {"loguniform": [10.0 ** _number(b) for b in old[key]]}
    if "batch_size" in old:
        space["batch_size"] = old["batch_size"]
    return {name: space[name] for name in TRAINING_HYPERPARAMETERS if name in space}


def old_key_problems(search: dict) -> list[str]:
    """One line per search key of an earlier release, naming what replaced it."""
    found = [key for key in OLD_SEARCH_KEYS if key in search]
    if not found:
        return []
    space = space_from_old({key: search[key] for key in found})
    return [
        f"config key search.{key}: replaced by search.space (the space as data, README "
        f"'Configuration'); written there: "
        + ", ".join(
            f"{name}: {_flow(value)}" for name, value in space.items() if name in _replacing(key)
        )
        for key in found
    ]


def _replacing(key: str) -> tuple[str, ...]:
    return {
        "Nh1": ("Nh1", "Nh2"),
        "optimizers": ("optimizer",),
        "log10_lr": ("lr",),
        "log10_L2": ("L2",),
    }.get(key, (key,))


def _flow(value) -> str:
    """A value as YAML's flow style writes it: {int: [51, 600]}."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_flow(v) for v in value) + "]"
    return f"{value:g}" if isinstance(value, float) else str(value)


def write_trials_table(path, trials: dict[str, dict]) -> list[dict]:
    """``trials.tsv``: every trial, one row each, in id order."""
    from .io import write_table

    rows = [trials[tid] for tid in sorted(trials)]
    write_table(rows, path)
    return rows
