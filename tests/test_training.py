"""The one training routine (fast tier, synthetic data)."""

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import REPO
from skorch.dataset import Dataset

from mnist_mlp import training
from mnist_mlp.data import load_part

TRIAL = {
    "trial": "t0007",
    "Nh1": 64,
    "Nh2": 32,
    "dropout": 0.1,
    "optimizer": "Adam",
    "lr": 2e-3,
    "L2": 1e-5,
}


@pytest.fixture(scope="module")
def images(synthetic_npz):
    torch.set_num_threads(1)
    return load_part(synthetic_npz)


def test_tensor_batches_cover_every_row_once_per_epoch():
    X = torch.arange(10.0).reshape(10, 1)
    y = torch.arange(10)
    batches = list(training.TensorBatches(Dataset(X, y), batch_size=4, shuffle=True))
    assert [len(b[1]) for b in batches] == [4, 4, 2]
    seen = torch.cat([b[1] for b in batches])
    assert sorted(seen.tolist()) == list(range(10))
    assert torch.equal(torch.cat([b[0] for b in batches]).flatten().long(), seen)


def test_cross_validation_gives_finite_reproducible_scores(images):
    X, y = images
    settings = training.TrainingSettings(max_epochs=4, batch_size=64, patience=15, seed=0)
    result, history, _ = training.cross_validate_trial(TRIAL, settings, X, y, folds=2)
    assert result["status"] == "ok"
    assert [fold["fold"] for fold in result["folds"]] == [1, 2]
    for fold in result["folds"]:
        assert math.isfinite(fold["loss"]) and 0 < fold["loss"] < math.log(10)
        assert 0.6 < fold["accuracy"] < 0.95  # it learned (chance is 0.1); the classes overlap
        assert fold["epochs"] == 4 and fold["seconds"] > 0 and 1 <= fold["best_epoch"] <= 4
    assert len(history) == 8 and {row["fold"] for row in history} == {1, 2}
    assert result["mean_loss"] == pytest.approx(np.mean([f["loss"] for f in result["folds"]]))
    again, _, _ = training.cross_validate_trial(TRIAL, settings, X, y, folds=2)
    assert [f["loss"] for f in again["folds"]] == [f["loss"] for f in result["folds"]]


def test_early_stopping_stops_patience_epochs_after_the_best(images):
    X, y = images
    # 200 images and a large step: the validation loss soon stops improving
    eager = TRIAL | {"lr": 0.03, "dropout": 0.0, "L2": 0.0}
    settings = training.TrainingSettings(max_epochs=60, batch_size=32, patience=2, seed=0)
    torch.manual_seed(0)
    net, record, _ = training.fit_and_score(eager, settings, X[:200], y[:200], X[:100], y[:100])
    epochs = training.epoch_table(net)
    best = training.best_epoch(epochs)
    assert record["status"] == "ok" and record["epochs"] < 60
    assert record["epochs"] == best + 2  # patience 2: two epochs without a better loss


def test_held_out_loss_is_sklearns_log_loss_of_the_softmax():
    """The CV score is what cross_val_score(scoring="neg_log_loss") computes, negated."""
    from sklearn.metrics import accuracy_score, log_loss

    torch.manual_seed(0)
    module = torch.nn.Linear(784, 10)
    X, y = torch.rand(300, 784), torch.randint(0, 10, (300,))
    loss, accuracy = training.evaluate(module, X, y)
    with torch.no_grad():
        logits = module(X)
    probabilities = torch.softmax(logits.double(), dim=1).numpy()
    assert loss == pytest.approx(log_loss(y.numpy(), probabilities, labels=range(10)), rel=1e-5)
    assert accuracy == accuracy_score(y.numpy(), logits.argmax(dim=1).numpy())


def test_a_diverging_fit_stops_at_once(images):
    X, y = images
    exploding = TRIAL | {"optimizer": "SGD", "lr": 1e4, "L2": 0.0}
    settings = training.TrainingSettings(max_epochs=50, batch_size=64, patience=15, seed=0)
    torch.manual_seed(0)
    _, record, _ = training.fit_and_score(exploding, settings, X, y, X[:100], y[:100])
    assert record["status"] == "diverged"
    assert math.isnan(record["loss"])
    assert record["epochs"] <= 2  # not after 15 epochs of patience


def test_the_fast_path_gives_the_losses_of_a_plain_pytorch_loop(images):
    """Tensor slicing and skorch change no result: same seed, same per-epoch training losses
    as a hand-written loop over the same batches."""
    from mnist_mlp.model import MLP

    X, y = images
    params = TRIAL | {"dropout": 0.3}
    settings = training.TrainingSettings(max_epochs=3, batch_size=128, patience=None, seed=0)
    torch.manual_seed(123)
    net = training.make_classifier(params, settings)
    net.fit(X, y)
    skorch_losses = [row["train_loss"] for row in net.history]

    torch.manual_seed(123)
    model = MLP(params["Nh1"], params["Nh2"], params["dropout"])
    optimizer = torch.optim.Adam(
        model.parameters(),
        lr=params["lr"],
        weight_decay=params["L2"],
        **training.optimizer_options("Adam"),
    )
    plain_losses = []
    for _ in range(3):
        model.train()
        order = torch.randperm(len(X))
        total = 0.0
        for start in range(0, len(X), 128):
            batch = order[start : start + 128]
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(X[batch]), y[batch])
            loss.backward()
            optimizer.step()
            total += loss.item() * len(batch)
        plain_losses.append(total / len(X))
    np.testing.assert_allclose(skorch_losses, plain_losses, rtol=1e-5)
    assert skorch_losses[-1] < skorch_losses[0]


THREADS_PROBE = """
import json
import mnist_mlp  # sets MKL's reproducibility mode before torch computes anything
import torch
from mnist_mlp import training
params = {"trial": "t0001", "Nh1": 200, "Nh2": 100, "dropout": 0.2, "optimizer": "Adam",
          "lr": 1e-3, "L2": 1e-5}
settings = training.TrainingSettings(max_epochs=2, batch_size=128, patience=None, seed=0)
results = []
for threads in (1, 2):
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    X, y = torch.rand(1000, 784), torch.randint(0, 10, (1000,))
    module, record, history = training.retrain_trial(params, settings, (X, y), (X, y))
    weights = [p.detach().double().sum().item() for p in module.parameters()]
    results.append({"loss": record["loss"], "weights": weights,
                    "train": [row["train_loss"] for row in history]})
print(json.dumps(results))
"""


def test_results_do_not_depend_on_the_thread_count():
    """MKL's strict reproducibility mode (set by the package): 1 and 2 threads give the same
    bits. In a fresh process, as jobs are, so that the mode is set before torch computes."""
    done = subprocess.run(
        [sys.executable, "-c", THREADS_PROBE],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(REPO / "workflow"), "PATH": "/usr/bin:/bin"},
    )
    one_thread, two_threads = json.loads(done.stdout)
    assert one_thread == two_threads


def test_a_non_finite_held_out_loss_is_recorded_as_diverged(images):
    """The training loss stays finite, but the held-out images overflow the network (a pixel of
    inf): the fold is recorded as diverged with no score, not as a loss of inf."""
    X, y = images
    settings = training.TrainingSettings(max_epochs=2, batch_size=64, patience=None, seed=0)
    held_out = X[:50].clone()
    held_out[0, :] = float("inf")
    _, record, _ = training.fit_and_score(TRIAL, settings, X, y, held_out, y[:50])
    assert record["status"] == "diverged"
    assert math.isnan(record["loss"]) and math.isnan(record["accuracy"])
    assert record["epochs"] == 2  # it trained: only the score is missing


def test_importing_the_package_pins_mkls_strict_reproducibility():
    """Without MKL_CBWR in the environment, importing mnist_mlp puts MKL in AUTO,STRICT mode (read
    back from MKL as it runs: 65538 is AUTO|STRICT), so that the thread count changes no bit of a
    result; an explicit MKL_CBWR is the user's and is kept."""
    probe = (
        "import os, torch\n"
        "from mnist_mlp.training import mkl_mode\n"
        "torch.rand(64, 64) @ torch.rand(64, 64)\n"
        "print(os.environ.get('MKL_CBWR'), mkl_mode())\n"
    )
    environment = {k: v for k, v in os.environ.items() if k != "MKL_CBWR"}
    environment["PYTHONPATH"] = str(REPO / "workflow")  # this checkout's package
    for given, expected in ((None, "AUTO,STRICT 65538"), ("COMPATIBLE", "COMPATIBLE")):
        env = environment | ({"MKL_CBWR": given} if given else {})
        done = subprocess.run(
            [sys.executable, "-c", probe], capture_output=True, text=True, env=env, check=True
        )
        assert done.stdout.startswith(expected), done.stdout
