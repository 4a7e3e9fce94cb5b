"""The one training routine of the workflow: a skorch classifier around ``MLP``, fed from
tensors, early-stopped on an internal validation split, used by every training stage."""

from __future__ import annotations

import logging
import math
import time
import zlib
from dataclasses import dataclass

import numpy as np
import torch
from skorch import NeuralNetClassifier
from skorch.callbacks import Callback, EarlyStopping
from skorch.dataset import Dataset
from skorch.helper import predefined_split
from skorch.history import History

from .constants import EVAL_BATCH_SIZE, N_CLASSES, VALID_FRACTION
from .errors import TrainingDiverged, UserFacingError
from .model import MLP
from .trials import hyperparameters_of

log = logging.getLogger(__name__)

# Random streams derived from the seed (the sampler seeds its own, see trials).
_FOLD_STREAM, _FIT_STREAM, _RETRAIN_STREAM = 2, 3, 4


@dataclass(frozen=True)
class TrainingSettings:
    max_epochs: int
    batch_size: int | None  # None: each trial gives its own (search.space.batch_size drawn)
    patience: int | None  # None: no early stopping, train for max_epochs
    seed: int
    device: str = "cpu"

    @classmethod
    def from_params(cls, settings: dict, device: str) -> TrainingSettings:
        """From a training rule's ``settings`` param (``patience`` absent: no early stopping),
        and the resolved device."""
        return cls(
            max_epochs=settings["max_epochs"],
            batch_size=settings.get("batch_size"),
            patience=settings.get("patience"),
            seed=settings["seed"],
            device=device,
        )


def configure_torch(threads: int, device: str = "auto") -> str:
    """Set torch's thread count to the job's share of cores (before any torch work, so that
    parallel jobs do not oversubscribe the machine) and resolve ``device``."""
    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # only settable before the first parallel work; harmless if late
        pass
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UserFacingError(
            f"config key device is '{device}' but torch sees no CUDA device. "
            "Set device to 'auto' or 'cpu', or run on a machine with a GPU."
        )
    return device


def mkl_mode() -> int | None:
    """MKL's conditional numerical reproducibility mode as it runs, read back from MKL (65538 is
    AUTO|STRICT, what the package sets through MKL_CBWR; 1 is off); None without MKL."""
    import ctypes
    import os

    library = ctypes.CDLL(os.path.join(os.path.dirname(torch.__file__), "lib", "libtorch_cpu.so"))
    getter = getattr(library, "mkl_serv_cbwr_get", None)
    return getter(-1) if getter else None


def derived_seed(seed: int, *stream: int | str) -> int:
    """A 32-bit seed of its own for each (stream, ...) tuple, e.g. (fit, trial id, fold)."""
    key = tuple(zlib.crc32(part.encode()) if isinstance(part, str) else part for part in stream)
    return int(np.random.SeedSequence(seed, spawn_key=key).generate_state(1)[0])


class TensorBatches:
    """Mini-batches sliced from the dataset's tensors.

    skorch's default iterator, a DataLoader, fetches and collates one row at a time (skorch
    issue #1100); slicing whole tensors removes that cost. Shuffling permutes once per epoch.
    """

    def __init__(self, dataset: Dataset, batch_size: int, shuffle: bool = False):
        self.X, self.y = dataset.X, dataset.y
        self.batch_size = batch_size
        self.shuffle = shuffle

    def __len__(self) -> int:
        return math.ceil(len(self.X) / self.batch_size)

    def __iter__(self):
        X, y = self.X, self.y
        if self.shuffle:
            order = torch.randperm(len(X), device=X.device)
            X, y = X[order], (None if y is None else y[order])
        for start in range(0, len(X), self.batch_size):
            stop = start + self.batch_size
            yield X[start:stop], (None if y is None else y[start:stop])


class StratifiedHoldout:
    """skorch ``train_split``: a seeded, stratified holdout of ``fraction`` of the data, kept as
    tensors so that ``TensorBatches`` can slice them.

    Not skorch's ``ValidSplit(5, stratified=True)``: that one hands back ``torch.utils.data.
    Subset`` views, which skorch's loader reads row by row (what ``TensorBatches`` avoids), and
    seeds its shuffle through ``random_state`` only when asked; here the split is a pair of
    tensors, seeded by the config's seed, the same in every fold and rung of a trial."""

    def __init__(self, fraction: float, seed: int):
        self.fraction = fraction
        self.seed = seed

    def __call__(self, dataset: Dataset, y=None, **fit_params):
        from sklearn.model_selection import train_test_split

        labels = dataset.y.cpu().numpy()
        train, valid = train_test_split(
            np.arange(len(labels)),
            test_size=self.fraction,
            stratify=labels,
            random_state=self.seed,
        )
        train = torch.from_numpy(train).to(dataset.X.device)
        valid = torch.from_numpy(valid).to(dataset.X.device)
        return (
            Dataset(dataset.X[train], dataset.y[train]),
            Dataset(dataset.X[valid], dataset.y[valid]),
        )


class StopOnDivergence(Callback):
    """Stop the fit after the first epoch whose training loss is not finite, instead of after
    ``patience`` more epochs of NaN: a diverged trial does not recover. Checked once
    per epoch (a NaN batch makes the epoch's mean NaN), which costs nothing per batch."""

    def on_epoch_end(self, net, **kwargs):
        loss = net.history[-1, "train_loss"]
        if not math.isfinite(loss):
            raise TrainingDiverged(f"training loss became {loss} in epoch {len(net.history)}")


class ResumableEarlyStopping(EarlyStopping):
    """skorch's ``EarlyStopping`` whose count survives a pause: a fit that goes on from a saved
    state (successive halving's next rung) starts from the saved count instead of afresh, so
    that it stops where an unpaused fit would."""

    def __init__(self, *args, resume: dict | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.resume = resume

    def on_train_begin(self, net, **kwargs):
        super().on_train_begin(net, **kwargs)
        if self.resume:
            self.misses_ = self.resume["misses"]
            self.dynamic_threshold_ = self.resume["threshold"]
            self.best_epoch_ = self.resume["best_epoch"]

    @property
    def stopped(self) -> bool:
        return self.misses_ >= self.patience

    def state(self) -> dict:
        return {
            "misses": self.misses_,
            "threshold": float(self.dynamic_threshold_),
            "best_epoch": self.best_epoch_,
        }


class EpochLog(Callback):
    """One log line per epoch ("fold 2/4 epoch 17/100 ..."), so that a user can follow a long
    job with ``tail -f``."""

    def __init__(self, prefix: str = ""):
        self.prefix = prefix

    def on_epoch_end(self, net, **kwargs):
        row = net.history[-1]
        log.info(
            "%sepoch %d/%d train_loss %.5f valid_loss %.5f valid_acc %.4f seconds %.2f",
            self.prefix,
            row["epoch"],
            net.max_epochs,
            row["train_loss"],
            row.get("valid_loss", float("nan")),
            row.get("valid_acc", float("nan")),
            row["dur"],
        )


# Fused Adam(W) updates all parameters in one kernel: on a 2-core CPU it halved the optimizer
# step of the report's winner shape (0.29 s to 0.13 s of a 1.4 s epoch), same update rule.
FUSED_OPTIMIZERS = ("Adam", "AdamW")


def optimizer_options(name: str) -> dict:
    """Keyword arguments the workflow passes to ``torch.optim.<name>`` besides lr and L2."""
    return {"fused": True} if name in FUSED_OPTIMIZERS else {}


def make_classifier(
    trial: dict,
    settings: TrainingSettings,
    log_prefix: str = "",
    monitor: Dataset | None = None,
    stopping: dict | None = None,
):
    """The skorch classifier for one trial's hyper-parameters ``trial`` (Nh1, Nh2,
    dropout, optimizer, lr, L2; batch_size where the trial draws it).

    With ``settings.patience`` it early-stops on a stratified internal validation split (the
    search; ``stopping``: the early-stopping count of a paused fit that goes on). Without, it
    trains for ``max_epochs`` and, given ``monitor``, reports loss and accuracy on it after
    every epoch as ``valid_loss``/``valid_acc`` without learning from it (the final
    retraining, as in the report).
    """
    if settings.patience is not None and monitor is not None:
        raise ValueError("monitoring runs for a fixed number of epochs: patience must be None")
    optimizer = getattr(torch.optim, trial["optimizer"])
    callbacks = [EpochLog(log_prefix), StopOnDivergence()]
    if settings.patience is not None:
        callbacks.insert(0, ResumableEarlyStopping(patience=settings.patience, resume=stopping))
        train_split = StratifiedHoldout(VALID_FRACTION, settings.seed)
    elif monitor is not None:
        train_split = predefined_split(monitor)
    else:
        train_split = None
    return NeuralNetClassifier(
        MLP,
        module__n_hidden1=int(trial["Nh1"]),
        module__n_hidden2=int(trial["Nh2"]),
        module__dropout=float(trial["dropout"]),
        criterion=torch.nn.CrossEntropyLoss,
        optimizer=optimizer,
        lr=float(trial["lr"]),
        optimizer__weight_decay=float(trial["L2"]),
        **{
            f"optimizer__{key}": value
            for key, value in optimizer_options(trial["optimizer"]).items()
        },
        max_epochs=settings.max_epochs,
        batch_size=int(trial.get("batch_size") or settings.batch_size),
        iterator_train=TensorBatches,
        iterator_train__shuffle=True,
        iterator_valid=TensorBatches,
        iterator_valid__batch_size=EVAL_BATCH_SIZE,
        train_split=train_split,
        callbacks=callbacks,
        callbacks__print_log=None,  # EpochLog writes the job's log instead
        classes=list(range(N_CLASSES)),
        device=settings.device,
        verbose=0,
    )


def evaluate(module: torch.nn.Module, X, y) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of ``module`` (in eval mode) on (X, y).

    The one evaluation of the workflow: CV scores, retraining metrics and a reloaded model all
    go through it, so a saved model reproduces its recorded figures exactly.
    """
    module.eval()
    logits = []
    with torch.no_grad():
        for start in range(0, len(X), EVAL_BATCH_SIZE):
            logits.append(module(X[start : start + EVAL_BATCH_SIZE]).float())
    logits = torch.cat(logits)
    loss = torch.nn.functional.cross_entropy(logits, y, reduction="mean")
    accuracy = (logits.argmax(dim=1) == y).double().mean()
    return float(loss), float(accuracy)


def fit_and_score(
    trial,
    settings,
    X_train,
    y_train,
    X_eval,
    y_eval,
    log_prefix="",
    monitor_eval=False,
    until=None,
    resume=None,
):
    """Fit one classifier and score it on (X_eval, y_eval).

    With ``monitor_eval`` the evaluation data are also scored after every epoch (without early
    stopping: ``settings.patience`` must be None). ``until``: stop after that many epochs in
    all (successive halving's rung budget) unless the fit ends before; ``resume``: the
    ``FitState`` a paused fit left, to go on from (the torch random state must be the one the
    fit started with otherwise: the caller seeds it). Returns (net, record, state): record
    holds loss, accuracy, epochs, seconds and status ('ok', 'diverged' with NaN scores, or
    'running' for a fit paused at ``until``, unscored); state is what going on needs.
    """
    monitor = Dataset(X_eval, y_eval) if monitor_eval else None
    stopping = resume["stopping"] if resume else None
    net = make_classifier(trial, settings, log_prefix, monitor, stopping)
    net.initialize()
    spent = 0.0
    if resume:  # the paused fit exactly as it was: weights, optimizer, history, random state
        net.module_.load_state_dict(resume["module"])
        net.optimizer_.load_state_dict(resume["optimizer"])
        net.history = History(resume["history"])
        torch.set_rng_state(resume["rng"])
        spent = resume["seconds"]
    epochs = (until or settings.max_epochs) - len(net.history)
    start = time.perf_counter()
    try:
        net.partial_fit(X_train, y_train, epochs=epochs)
    except TrainingDiverged as err:
        log.warning("%sdiverged: %s", log_prefix, err)
        return (
            net,
            {
                "status": "diverged",
                "loss": math.nan,
                "accuracy": math.nan,
                "epochs": len(net.history),
                "seconds": spent + time.perf_counter() - start,
            },
            None,
        )
    seconds = spent + time.perf_counter() - start
    stopper = next((cb for _, cb in net.callbacks_ if isinstance(cb, ResumableEarlyStopping)), None)
    if len(net.history) < settings.max_epochs and not (stopper and stopper.stopped):
        state = {
            "module": net.module_.state_dict(),
            "optimizer": net.optimizer_.state_dict(),
            "history": _plain(list(net.history)),
            "rng": torch.get_rng_state(),
            "stopping": stopper.state() if stopper else None,
            "seconds": seconds,
        }
        return net, {"status": "running", "epochs": len(net.history), "seconds": seconds}, state
    loss, accuracy = evaluate(net.module_, X_eval, y_eval)
    if not math.isfinite(loss):
        log.warning("%sheld-out loss is %s: recorded as diverged", log_prefix, loss)
        loss, accuracy, status = math.nan, math.nan, "diverged"
    else:
        status = "ok"
    return (
        net,
        {
            "status": status,
            "loss": loss,
            "accuracy": accuracy,
            "epochs": len(net.history),
            "seconds": seconds,
        },
        None,
    )


def _plain(value):
    """``value`` with numpy scalars as Python numbers: a state file loads with
    ``weights_only=True``, which refuses any other type."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value.item() if isinstance(value, np.generic) else value


def epoch_table(net) -> list[dict]:
    """One row per epoch of a fit: train loss, validation loss and accuracy, seconds."""
    return [
        {
            "epoch": row["epoch"],
            "train_loss": row["train_loss"],
            "valid_loss": row.get("valid_loss", math.nan),
            "valid_accuracy": row.get("valid_acc", math.nan),
            "seconds": row["dur"],
        }
        for row in net.history
    ]


def best_epoch(epochs: list[dict]) -> int | None:
    """The epoch of the lowest validation loss (the one early stopping counted from)."""
    finite = [row for row in epochs if math.isfinite(row["valid_loss"])]
    return min(finite, key=lambda row: row["valid_loss"])["epoch"] if finite else None


def fold_splits(settings: TrainingSettings, y, folds: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """The stratified k folds of (train, held-out) indices, the same for every trial."""
    from sklearn.model_selection import StratifiedKFold

    splitter = StratifiedKFold(
        n_splits=folds, shuffle=True, random_state=derived_seed(settings.seed, _FOLD_STREAM)
    )
    labels = y.cpu().numpy()
    return list(splitter.split(np.zeros(len(labels)), labels))


def cross_validate_trial(
    trial: dict, settings: TrainingSettings, X, y, folds: int, until=None, resume=None
):
    """``cross_val_score``-style stratified k-fold CV of one trial on (X, y), scored by the
    held-out log loss, as the report's search.

    ``until``: train each fold to at most that many epochs (a rung of successive halving);
    ``resume``: the per-fold states the previous rung returned. Returns (result, history,
    states): per fold the held-out loss and accuracy, epochs, best epoch, seconds and status
    ('running' for a fold paused at ``until``), with their summary (``summarize_folds``, or
    ``summarize_rung`` while a fold runs); one row per fold and epoch so far; and per fold
    what the next rung needs (None once the trial is complete).
    """
    records, history, states = [], [], []
    for fold, (train, held_out) in enumerate(fold_splits(settings, y, folds)):
        previous = resume[fold] if resume else None
        if previous and previous["done"]:  # finished in an earlier rung: as it was
            records.append(previous["record"])
            history += previous["epochs"]
            states.append(previous)
            continue
        if previous is None:
            torch.manual_seed(derived_seed(settings.seed, _FIT_STREAM, trial["trial"], fold))
        train = torch.from_numpy(train).to(X.device)
        held_out = torch.from_numpy(held_out).to(X.device)
        net, record, state = fit_and_score(
            trial,
            settings,
            X[train],
            y[train],
            X[held_out],
            y[held_out],
            log_prefix=f"fold {fold + 1}/{folds} ",
            until=until,
            resume=previous and previous["fit"],
        )
        epochs = [{"fold": fold + 1, **row} for row in epoch_table(net)]
        record = {"fold": fold + 1, **record, "best_epoch": best_epoch(epochs)}
        records.append(record)
        history += epochs
        states.append(
            _plain({"done": state is None, "record": record, "epochs": epochs, "fit": state})
        )
        log.info("fold %d/%d: %s", fold + 1, folds, records[-1])
        if record["status"] == "diverged":
            break  # the trial is out: the remaining folds would not change that
    if any(r["status"] == "diverged" for r in records) or all(s["done"] for s in states):
        # complete: only the folds an unpaused CV would have run (it stops at a divergence)
        last = next((i for i, r in enumerate(records) if r["status"] == "diverged"), None)
        kept = len(records) if last is None else last + 1
        history = [row for row in history if row["fold"] <= kept]
        return summarize_folds(trial, records[:kept]), history, None
    return summarize_rung(trial, records, history), history, states


def summarize_folds(trial: dict, folds: list[dict]) -> dict:
    diverged = any(f["status"] == "diverged" for f in folds)
    losses = np.array([f["loss"] for f in folds])
    return {
        "trial": trial["trial"],
        "params": {key: trial[key] for key in hyperparameters_of(trial)},
        "status": "diverged" if diverged else "ok",
        "mean_loss": math.nan if diverged else float(losses.mean()),
        "std_loss": math.nan if diverged else float(losses.std()),
        "mean_accuracy": math.nan if diverged else float(np.mean([f["accuracy"] for f in folds])),
        "mean_epochs": float(np.mean([f["epochs"] for f in folds])),
        "folds": folds,
    }


def summarize_rung(trial: dict, folds: list[dict], history: list[dict]) -> dict:
    """A trial paused at a rung: its score is the mean over folds of the lowest validation loss
    so far (what early stopping watches; a finished fold counts with its whole curve)."""
    best = []
    for fold in folds:
        losses = [r["valid_loss"] for r in history if r["fold"] == fold["fold"]]
        finite = [loss for loss in losses if math.isfinite(loss)]
        best.append(min(finite) if finite else math.nan)
    return {
        "trial": trial["trial"],
        "params": {key: trial[key] for key in hyperparameters_of(trial)},
        "status": "running",
        "score": float(np.mean(best)),
        "mean_epochs": float(np.mean([f["epochs"] for f in folds])),
        "folds": folds,
    }


def retrain_trial(trial: dict, settings: TrainingSettings, train, test):
    """Train one trial on the whole ``train`` part (X, y) for ``settings.max_epochs``, scoring
    the ``test`` part after every epoch for monitoring only, as the report did.

    Returns (module, record, history): the trained ``MLP``, the final test loss/accuracy record
    of ``fit_and_score``, and one row per epoch (train loss, test loss, test accuracy, seconds).
    """
    torch.manual_seed(derived_seed(settings.seed, _RETRAIN_STREAM, trial["trial"]))
    net, record, _ = fit_and_score(trial, settings, *train, *test, monitor_eval=True)
    history = [
        {
            "epoch": row["epoch"],
            "train_loss": row["train_loss"],
            "test_loss": row["valid_loss"],
            "test_accuracy": row["valid_accuracy"],
            "seconds": row["seconds"],
        }
        for row in epoch_table(net)
    ]
    return net.module_, record, history
