"""Training speed of the workflow against plain PyTorch and the machine's GEMM roofline.

Run with ``make bench`` (``python bench/training_speed.py --help`` for the options). Prints, on
the real MNIST, for the report's winner shape and a small shape: the sgemm roofline, a plain
PyTorch loop, the workflow's CV training path (with the share of each epoch spent validating),
two one-thread CV jobs at once against one, and a projection of the full protocol's core-hours.
Ends with one line: ``cv_vs_plain=<ratio> roofline_share=<fraction> two_job_scaling=<ratio>``.
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow"))

import torch  # noqa: E402
from skorch.callbacks import Callback  # noqa: E402

from mnist_mlp import training  # noqa: E402
from mnist_mlp.data import (  # noqa: E402
    download_mnist_stage,
    images_to_tensor,
    labels_to_tensor,
    load_mnist,
    stratified_split,
)
from mnist_mlp.model import MLP  # noqa: E402
from mnist_mlp.trials import sample_trials, sampled_space  # noqa: E402

SHAPES = {"winner 532-195": (532, 195), "small 100-50": (100, 50)}
FOLD_IMAGES = 38_250  # one CV training fold: 3/4 of the 85 % part of 60,000


def flops_per_image(nh1: int, nh2: int) -> float:
    """Multiply-adds x 2 of one forward pass, x 3 for forward + backward (two GEMMs each)."""
    return 3 * 2 * (784 * nh1 + nh1 * nh2 + nh2 * 10)


def sgemm_gflops(n: int = 2048, repeats: int = 10) -> float:
    """Sustained float32 GEMM rate: the median of ``repeats`` 2048x2048 products."""
    a, b = torch.rand(n, n), torch.rand(n, n)
    for _ in range(3):
        a @ b
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - start)
    return 2 * n**3 / statistics.median(times) / 1e9


def fold_tensors(mnist_path: Path):
    mnist = load_mnist(mnist_path)
    train, _ = stratified_split(mnist["train_labels"], 0.15, seed=0)
    rows = train[:FOLD_IMAGES]
    images, labels = mnist["train_images"][rows], mnist["train_labels"][rows]
    return images_to_tensor(images), labels_to_tensor(labels)


def params_for(shape) -> dict:
    nh1, nh2 = shape
    return {
        "trial": "t0000",
        "Nh1": nh1,
        "Nh2": nh2,
        "dropout": 0.477,
        "optimizer": "Adam",
        "lr": 1e-3,
        "L2": 1.53e-6,
    }


def torch_dropout_mlp(nh1, nh2, dropout):
    """The workflow's network with torch's own nn.Dropout, to show what its Dropout saves."""
    model = MLP(nh1, nh2, dropout)
    model.layers.drop1 = torch.nn.Dropout(dropout)
    model.layers.drop2 = torch.nn.Dropout(dropout)
    return model


def plain_loop(X, y, shape, batch_size: int = 128, net=MLP):
    """A hand-written PyTorch loop (same net, optimizer, batch size): returns a function that
    trains one more epoch and returns its images per second."""
    torch.manual_seed(0)
    params = params_for(shape)
    model = net(params["Nh1"], params["Nh2"], params["dropout"])
    optimizer = torch.optim.Adam(
        model.parameters(),
        lr=params["lr"],
        weight_decay=params["L2"],
        **training.optimizer_options("Adam"),  # the same optimizer as the workflow's
    )
    criterion = torch.nn.CrossEntropyLoss()

    def epoch() -> float:
        start = time.perf_counter()
        model.train()
        order = torch.randperm(len(X))
        Xs, ys = X[order], y[order]
        for first in range(0, len(X), batch_size):
            optimizer.zero_grad()
            loss = criterion(model(Xs[first : first + batch_size]), ys[first : first + batch_size])
            loss.backward()
            optimizer.step()
        return len(X) / (time.perf_counter() - start)

    return epoch


class _ValidationTimer(Callback):
    """Times each epoch's validation pass: from its first batch to the end of the epoch."""

    def on_epoch_begin(self, net, **kwargs):
        self.valid_start = None

    def on_batch_begin(self, net, training=None, **kwargs):
        if not training and self.valid_start is None:
            self.valid_start = time.perf_counter()

    def on_epoch_end(self, net, **kwargs):
        net.history.record("valid_seconds", time.perf_counter() - self.valid_start)


def workflow_path(X, y, shape):
    """The workflow's CV fit (``make_classifier``: skorch, early stopping on a 20 % internal
    split): returns a function that trains one more epoch (``partial_fit``) and returns its
    training images/s (the epoch minus its validation pass), whole-epoch images/s and the
    validation share of the epoch, from skorch's own epoch timer."""
    settings = training.TrainingSettings(max_epochs=1, batch_size=128, patience=1000, seed=0)
    net = training.make_classifier(params_for(shape), settings)
    net.callbacks.append(_ValidationTimer())
    n_train = round(len(X) * (1 - training.VALID_FRACTION))
    torch.manual_seed(0)

    def epoch() -> dict:
        net.partial_fit(X, y, epochs=1)
        row = net.history[-1]
        return {
            "train_rate": n_train / (row["dur"] - row["valid_seconds"]),
            "epoch_rate": n_train / row["dur"],
            "valid_share": row["valid_seconds"] / row["dur"],
        }

    return epoch


def compare(X, y, shape, rounds: int) -> dict:
    """Roofline, then one epoch each of the plain loop, the workflow path and the plain loop
    with torch's Dropout, back to back, ``rounds`` times (after one warm-up epoch each).

    This shared machine has slow spells of +-30 % lasting longer than a measurement:
    alternating single epochs puts the figures of a ratio seconds apart. Returns the medians
    of the rates and of the per-round ratios."""
    plain, path = plain_loop(X, y, shape), workflow_path(X, y, shape)
    torch_dropout = plain_loop(X, y, shape, net=torch_dropout_mlp)
    plain(), path(), torch_dropout()
    rows = []
    for _ in range(rounds):
        roofline, plain_rate, path_rates = sgemm_gflops(), plain(), path()
        path_gflops = path_rates["train_rate"] * flops_per_image(*shape) / 1e9
        rows.append(
            {
                "roofline": roofline,
                "plain": plain_rate,
                "torch_dropout": torch_dropout(),
                **path_rates,
                "cv_vs_plain": path_rates["train_rate"] / plain_rate,
                "roofline_share": path_gflops / roofline,
            }
        )
    return {key: statistics.median(row[key] for row in rows) for key in rows[0]}


def _one_job(args) -> float:
    mnist_path, shape, epochs = args
    torch.set_num_threads(1)
    X, y = fold_tensors(mnist_path)
    epoch = workflow_path(X, y, shape)
    epoch()  # warm-up
    return statistics.median(epoch()["epoch_rate"] for _ in range(epochs))


def two_job_scaling(mnist_path: Path, shape, epochs: int) -> tuple[float, float]:
    """(one job alone, two jobs at once summed) in images/s, one thread each."""
    context = multiprocessing.get_context("spawn")
    with context.Pool(1) as pool:
        alone = pool.map(_one_job, [(mnist_path, shape, epochs)])[0]
    with context.Pool(2) as pool:
        together = sum(pool.map(_one_job, [(mnist_path, shape, epochs)] * 2))
    return alone, together


def projection(rate_per_thread_gflops: float, cv_epochs: int, config: dict) -> dict:
    """Core-hours of the full default protocol from a measured per-thread GFLOP/s, for the 150
    sampled shapes, assuming ``cv_epochs`` epochs per CV fit (early stopping) and 20 %
    validation overhead, and final.epochs for the retraining of the top k (taken as the mean
    shape)."""
    search = config["search"]
    space = sampled_space(search["space"])
    shapes = list(sample_trials(config["seed"], search["n_trials"], space).values())
    fold_train = 60_000 * (1 - config["test_fraction"]) * (search["folds"] - 1) / search["folds"]
    per_epoch = fold_train * (1 - training.VALID_FRACTION) * 1.2  # + validation forward passes
    cv_flops = sum(
        flops_per_image(s["Nh1"], s["Nh2"]) * per_epoch * cv_epochs * search["folds"]
        for s in shapes
    )
    mean_flops = statistics.mean(flops_per_image(s["Nh1"], s["Nh2"]) for s in shapes)
    final = config["final"]
    final_flops = mean_flops * 60_000 * (1 - config["test_fraction"]) * final["epochs"]
    final_flops *= final["top_k"] + len(final["references"])
    seconds = (cv_flops + final_flops) / (rate_per_thread_gflops * 1e9)
    return {
        "cv_core_hours": cv_flops / (rate_per_thread_gflops * 1e9) / 3600,
        "final_core_hours": final_flops / (rate_per_thread_gflops * 1e9) / 3600,
        "total_core_hours": seconds / 3600,
    }


def main() -> None:
    import yaml

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mnist-dir", default=str(REPO.parent / "shared" / "data" / "mnist"))
    parser.add_argument("--threads", type=int, default=2, help="torch threads of items 1-3")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per one-thread job (item 4)")
    parser.add_argument("--rounds", type=int, default=10, help="alternations plain/workflow")
    parser.add_argument("--cv-epochs", type=int, default=35, help="assumed epochs per CV fit")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        mnist_path = Path(tmp) / "mnist.npz"
        download_mnist_stage(mnist_path, args.mnist_dir or None)
        X, y = fold_tensors(mnist_path)
        print(f"torch {torch.__version__}, {args.threads} threads, fold of {len(X)} images")
        summary = {}
        for name, shape in SHAPES.items():
            flops = flops_per_image(*shape)
            m = compare(X, y, shape, args.rounds)
            print(f"-- shape {name} ({flops / 1e6:.2f} MFLOP per training image)")
            print(f"1. sgemm roofline (2048x2048): {m['roofline']:.1f} GFLOP/s")
            print(
                f"2. plain PyTorch loop: {m['plain']:,.0f} images/s, "
                f"{m['plain'] * flops / 1e9:.1f} GFLOP/s"
            )
            print(
                f"3. workflow CV path: {m['train_rate']:,.0f} images/s training, "
                f"{m['train_rate'] * flops / 1e9:.1f} GFLOP/s; "
                f"validation {m['valid_share']:.1%} of an epoch; "
                f"{m['epoch_rate']:,.0f} training images/s over whole epochs; "
                f"{m['cv_vs_plain']:.3f}x the plain loop, {m['roofline_share']:.1%} of the roofline"
            )
            torch_dropout = m["torch_dropout"]
            print(
                f"   plain loop with torch.nn.Dropout: {torch_dropout:,.0f} images/s, "
                f"{torch_dropout * flops / 1e9:.1f} GFLOP/s"
            )
            summary[name] = (m, flops)
        winner_shape = SHAPES["winner 532-195"]
        alone, together = two_job_scaling(mnist_path, winner_shape, args.epochs)
        print(
            f"4. one CV job, 1 thread: {alone:,.0f} images/s; two at once: {together:,.0f} "
            f"images/s together ({together / alone:.2f}x)"
        )
        config = yaml.safe_load((REPO / "config.yaml").read_text())
        m, flops = summary["winner 532-195"]
        per_thread = alone * flops / 1e9
        hours = projection(per_thread, args.cv_epochs, config)
        print(
            f"5. full default protocol at {per_thread:.1f} GFLOP/s per thread, "
            f"{args.cv_epochs} epochs per CV fit: {hours['cv_core_hours']:.1f} core-hours search"
            f" + {hours['final_core_hours']:.1f} retraining = "
            f"{hours['total_core_hours']:.1f} core-hours"
        )
    ratio, share, scaling = m["cv_vs_plain"], m["roofline_share"], together / alone
    print(f"cv_vs_plain={ratio:.3f} roofline_share={share:.3f} two_job_scaling={scaling:.3f}")


if __name__ == "__main__":
    main()
