import math

import numpy as np
import pytest
import torch
from skorch.dataset import Dataset

from mnist_mlp import training
from mnist_mlp.data import load_part

CONFIG = {
    "config_id": "c0007",
    "Nh1": 120,
    "Nh2": 60,
    "dropout": 0.1,
    "optimizer": "Adam",
    "lr": 1e-3,
    "L2": 1e-5,
}


@pytest.fixture(scope="module")
def subset(mnist_npz, tmp_path_factory):
    """3,000 real training images, the first of each class in equal measure."""
    rows = np.arange(3_000)
    path = tmp_path_factory.mktemp("rows") / "rows.npy"
    np.save(path, rows)
    return load_part(mnist_npz, path)


def test_tensor_batches_cover_every_row_once_per_epoch():
    X = torch.arange(10.0).reshape(10, 1)
    y = torch.arange(10)
    batches = list(training.TensorBatches(Dataset(X, y), batch_size=4, shuffle=True))
    assert [len(b[1]) for b in batches] == [4, 4, 2]
    seen = torch.cat([b[1] for b in batches])
    assert sorted(seen.tolist()) == list(range(10))
    assert torch.equal(torch.cat([b[0] for b in batches]).flatten().long(), seen)


def test_cross_validation_on_real_images_gives_finite_scores(subset):
    training.configure_torch(1, "cpu")
    X, y = subset
    settings = training.TrainingSettings(max_epochs=4, batch_size=128, patience=15, seed=0)
    result = training.cross_validate_config(CONFIG, settings, X, y, folds=2)
    assert result["status"] == "ok"
    assert [fold["fold"] for fold in result["folds"]] == [0, 1]
    for fold in result["folds"]:
        assert math.isfinite(fold["loss"]) and 0 < fold["loss"] < math.log(10)
        assert fold["accuracy"] > 0.7  # it learned: chance is 0.1
        assert fold["epochs"] == 4 and fold["seconds"] > 0
    assert result["mean_loss"] == pytest.approx(np.mean([f["loss"] for f in result["folds"]]))
    again = training.cross_validate_config(CONFIG, settings, X, y, folds=2)
    assert [f["loss"] for f in again["folds"]] == [f["loss"] for f in result["folds"]]


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


def test_a_diverging_fit_stops_at_once(subset):
    X, y = subset
    exploding = CONFIG | {"optimizer": "SGD", "lr": 1e4, "L2": 0.0}
    settings = training.TrainingSettings(max_epochs=50, batch_size=128, patience=15, seed=0)
    torch.manual_seed(0)
    _, record = training.fit_and_score(exploding, settings, X, y, X[:100], y[:100])
    assert record["status"] == "diverged"
    assert math.isnan(record["loss"])
    assert record["epochs"] <= 2  # not after 15 epochs of patience


def test_the_fast_path_gives_the_losses_of_a_plain_pytorch_loop(subset):
    """Tensor slicing and skorch change no result: same seed, same per-epoch training losses
    as a hand-written loop over the same batches."""
    from mnist_mlp.model import MLP

    X, y = subset
    params = CONFIG | {"dropout": 0.3}
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
