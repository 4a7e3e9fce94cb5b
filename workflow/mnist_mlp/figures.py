"""What the winning network's neurons respond to: receptive fields and gradient-ascent images,
and the learning curves of the retrained networks."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import torch

from .constants import LAYER_NAMES, LAYERS, N_PIXELS
from .io import read_json, read_table, write_json
from .model import load_model
from .plotting import pyplot, save_png
from .ranking import best_so_far
from .trials import is_reference

log = logging.getLogger(__name__)


def receptive_fields(module) -> dict[str, np.ndarray]:
    """Each layer's neurons as linear filters of the image, rows of shape (784,): layer 1 its
    weights W1; deeper layers the product of the weight matrices (W2·W1, W3·W2·W1), which is
    what the neuron sees when the nonlinearities are taken as the identity."""
    w1, w2, w3 = (layer.weight.detach().double().cpu() for layer in module.linear_layers())
    return {
        "layer1": w1.numpy(),
        "layer2": (w2 @ w1).numpy(),
        "output": (w3 @ w2 @ w1).numpy(),
    }


def activation(module, layer: str, x: torch.Tensor) -> torch.Tensor:
    """Activations of every neuron of ``layer`` for the images ``x``: the output of that
    layer's Linear, before the nonlinearity (LeakyReLU is monotonic, so it has the same
    maximiser, and a gradient that does not shrink by 100 on the negative side)."""
    target = dict(zip(LAYERS, module.linear_layers(), strict=True))[layer]
    for child in module.layers:
        x = child(x)
        if child is target:
            return x
    raise ValueError(f"{layer} is not a layer of {module}")


def gradient_ascent(module, layer, neurons, steps, step_size, start):
    """Images that maximise each neuron of ``neurons`` in ``layer``: ``x += step_size * grad``,
    then clamp to [0, 1], ``steps`` times from a uniform image of value ``start``, with the
    network in eval mode (no dropout).

    Returns (images (n, 784), trace (steps + 1, n)): for each neuron the image with the highest
    activation seen (the last one whenever the ascent never went down, as for layer 1, where
    the objective is linear), and its activation after every step.
    """
    module.eval()
    neurons = torch.as_tensor(list(neurons))
    rows = torch.arange(len(neurons))
    x = torch.full((len(neurons), N_PIXELS), float(start), requires_grad=True)
    trace, best, best_value = [], x.detach().clone(), torch.full((len(neurons),), -math.inf)
    for step in range(steps + 1):
        value = activation(module, layer, x)[rows, neurons]
        trace.append(value.detach().clone())
        with torch.no_grad():
            improved = value >= best_value
            best[improved], best_value[improved] = x[improved], value[improved]
        if step == steps:
            break
        # Rows are independent images; only the gradient with respect to x is computed.
        (gradient,) = torch.autograd.grad(value.sum(), x)
        with torch.no_grad():
            x += step_size * gradient
            x.clamp_(0.0, 1.0)
    return best.numpy(), torch.stack(trace).numpy()


# The regularised ascent (feature visualisation with priors, after Olah et al., "Feature
# Visualization", Distill 2017): Adam steps on the image, from the mean training image, with an
# L2 pull back towards that mean (a prior of what digits look like), total variation (smooth
# strokes) and a Gaussian blur every few steps, clamped to [0, 1]. An output neuron maximises
# its log-softmax (its class against the others, not a raw logit that noise can inflate).
REGULARISED = {"steps": 300, "lr": 0.02, "l2": 0.05, "tv": 0.005, "blur": 0.8, "blur_every": 4}


def _blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """A separable 5x5 Gaussian blur of (n, 784) images, edges replicated."""
    offsets = torch.arange(-2, 3, dtype=x.dtype)
    kernel = torch.exp(-(offsets**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    image = x.reshape(-1, 1, 28, 28)
    pad = torch.nn.functional.pad
    image = torch.nn.functional.conv2d(
        pad(image, (2, 2, 0, 0), "replicate"), kernel.view(1, 1, 1, 5)
    )
    image = torch.nn.functional.conv2d(
        pad(image, (0, 0, 2, 2), "replicate"), kernel.view(1, 1, 5, 1)
    )
    return image.reshape(-1, N_PIXELS)


def _total_variation(x: torch.Tensor) -> torch.Tensor:
    image = x.reshape(-1, 28, 28)
    return (image[:, 1:] - image[:, :-1]).abs().sum((1, 2)) + (
        image[:, :, 1:] - image[:, :, :-1]
    ).abs().sum((1, 2))


def regularised_ascent(module, layer, neurons, mean_image, settings=REGULARISED):
    """Images that maximise each neuron of ``neurons`` under the priors of ``REGULARISED``, from
    ``mean_image`` (784,). Returns (images (n, 784), the objective reached per neuron: the
    activation, or for the output layer the softmax probability of the neuron's digit)."""
    module.eval()
    neurons = torch.as_tensor(list(neurons))
    rows = torch.arange(len(neurons))
    mean = torch.as_tensor(mean_image, dtype=torch.float32)
    x = mean.repeat(len(neurons), 1).clone().requires_grad_(True)
    optimizer = torch.optim.Adam([x], lr=settings["lr"])

    def objective(images):
        if layer == "output":
            return module(images).log_softmax(dim=1)[rows, neurons]
        return activation(module, layer, images)[rows, neurons]

    for step in range(settings["steps"]):
        optimizer.zero_grad()
        penalty = (
            settings["l2"] * ((x - mean) ** 2).sum() + settings["tv"] * _total_variation(x).sum()
        )
        (penalty - objective(x).sum()).backward()
        optimizer.step()
        with torch.no_grad():
            if step % settings["blur_every"] == 0:
                x.copy_(_blur(x, settings["blur"]))
            x.clamp_(0.0, 1.0)
    with torch.no_grad():
        reached = objective(x)
        if layer == "output":
            reached = reached.exp()
    return x.detach().numpy(), reached.numpy()


def box_maximiser(weights: np.ndarray) -> np.ndarray:
    """The exact maximiser over [0, 1]^784 of a layer-1 neuron w·x + b: 1 where w > 0, else 0."""
    return (weights > 0).astype(np.float64)


def ascent_stats(images, trace, weights=None) -> dict:
    """What an ascent reached: per neuron the activation at the start and the best one (that
    of the returned image); over all neurons the largest drop of any step (0 if every ascent
    only climbed). Given
    layer-1 ``weights``, also the share of pixels equal to the exact box maximiser, overall
    and where the weight is not ~0: pixels black in every training image keep decayed ~0
    weights, their maximiser is undetermined and the ascent leaves them at the start value."""
    stats = {
        "activation_start": trace[0].tolist(),
        "activation_reached": trace.max(axis=0).tolist(),
        "largest_decrease": float(max(0.0, -np.diff(trace, axis=0).min(initial=0.0))),
    }
    if weights is not None:
        equal = images == box_maximiser(weights)
        magnitude = np.abs(weights)
        matters = magnitude > 1e-6 * magnitude.max(axis=1, keepdims=True)
        stats["pixels_equal_to_box_maximiser"] = float(equal.mean())
        stats["pixels_equal_where_weight_matters"] = float(equal[matters].mean())
    return stats


def neuron_indices(layer: str, n_hidden: int, n_output: int, width: int) -> list[int]:
    """The first ``n_hidden`` neurons of a hidden layer, or the first ``n_output`` outputs."""
    return list(range(min(n_output if layer == "output" else n_hidden, width)))


def plot_neuron_grids(panels, path, title: str):
    """One figure of side-by-side grids of 28×28 images, five to a row, each panel with its
    colour bar underneath.

    ``panels``: list of (images (n, 784), labels, panel title, kind). kind "weights": diverging
    colour map centred on zero, positive red, negative blue, one symmetric scale for the whole
    panel (so that images compare); kind "image": grey scale on [0, 1], black 0, white 1.
    Returns the figure (closed, for inspection).
    """
    plt = pyplot()
    n_cols, panel_width, row_height, header, footer = 5, 5.0, 1.05, 1.25, 0.85
    n_rows = max(math.ceil(len(images) / n_cols) for images, *_ in panels)
    width, height = panel_width * len(panels), row_height * n_rows + header + footer
    fig = plt.figure(figsize=(width, height))
    fig.text(0.5, 1 - 0.12 / height, title, ha="center", va="top", fontsize=9, wrap=True)
    for index, (images, labels, panel_title, kind) in enumerate(panels):
        left, right = (index + 0.03) / len(panels), (index + 0.97) / len(panels)
        top, bottom = 1 - header / height, footer / height
        grid = fig.add_gridspec(
            n_rows,
            n_cols,
            left=left,
            right=right,
            top=top,
            bottom=bottom,
            hspace=0.3,
            wspace=0.1,
        )
        fig.text((left + right) / 2, top + 0.3 / height, panel_title, ha="center", fontsize=10)
        if kind == "weights":
            scale = float(np.abs(images).max()) or 1.0
            style = {"cmap": "bwr", "vmin": -scale, "vmax": scale}
        else:
            style = {"cmap": "gray", "vmin": 0.0, "vmax": 1.0}
        for cell, (image, label) in enumerate(zip(images, labels, strict=True)):
            ax = fig.add_subplot(grid[cell // n_cols, cell % n_cols])
            ax.set_axis_off()
            shown = ax.imshow(image.reshape(28, 28), **style)
            ax.set_title(label, fontsize=7, pad=2)
        bar = fig.add_axes(
            (left + 0.15 * (right - left), 0.22 / height, 0.7 * (right - left), 0.12 / height)
        )
        fig.colorbar(shown, cax=bar, orientation="horizontal")
        bar.tick_params(labelsize=7)
        bar.set_title("weight" if kind == "weights" else "pixel value", fontsize=7, pad=2)
    save_png(fig, path)
    return fig


SMOOTHING = 10  # epochs in the learning curves' running mean


def running_mean(values: np.ndarray, window: int) -> np.ndarray:
    """At each point, the mean of the last ``window`` values (of those there are at the start)."""
    sums = np.cumsum(np.insert(np.asarray(values, dtype=float), 0, 0.0))
    ends = np.arange(1, len(values) + 1)
    starts = np.maximum(ends - window, 0)
    return (sums[ends] - sums[starts]) / (ends - starts)


def label_ends(ax, ends: list[tuple[float, str, str]], epoch: int) -> None:
    """Each line's name right of its end, moved apart vertically where ends crowd, with a leader
    line to the end (16 curves end within 0.3 points of each other)."""
    low, high = ax.get_ylim()
    gap = (high - low) / 28  # one label's height at the overview's size
    order = sorted(range(len(ends)), key=lambda i: ends[i][0])
    placed: list[float] = []
    for i in order:  # upwards, each at least a gap above the one below
        y = max(ends[i][0], placed[-1] + gap) if placed else ends[i][0]
        placed.append(y)
    overflow = placed[-1] - (high - gap / 2) if placed else 0
    if overflow > 0:  # the stack ran off the top: shift it down, keeping the gaps
        placed = [y - overflow for y in placed]
    x_text = epoch * 1.04
    for i, y in zip(order, placed, strict=True):
        value, name, colour = ends[i]
        ax.annotate(
            name,
            (epoch, value),
            xytext=(x_text, y),
            textcoords="data",
            fontsize=7,
            color=colour,
            va="center",
            arrowprops={"arrowstyle": "-", "color": colour, "lw": 0.5, "alpha": 0.6},
        )
    ax.set_xlim(0, epoch * 1.16)


def plot_learning_curves(histories: dict[str, list[dict]], winner: str, path):
    """Every retrained trial's learning curves. Top: test-part accuracy of all of them, zoomed
    to the band their last epochs span (the 0.1-point differences that decide the winner), each
    line its own colour and labelled at its end. Below: one small panel per trial (the winner's
    framed in red, references' titles in italics) with its test and train cross-entropy.
    Returns the figure (closed, for inspection)."""
    from matplotlib.ticker import MaxNLocator, NullFormatter

    plt = pyplot()
    trials = sorted(histories, key=lambda t: (is_reference(t), t))
    columns = min(4, len(trials))
    rows = math.ceil(len(trials) / columns)
    fig = plt.figure(figsize=(3.3 * columns + 1.5, 4.2 + 2.1 * rows), constrained_layout=True)
    grid = fig.add_gridspec(1 + rows, columns, height_ratios=[2.0] + [1.0] * rows)
    overview = fig.add_subplot(grid[0, :])
    # every colour of the cycle but red, which marks the winner
    many = len(trials) > 10
    cycle = plt.get_cmap("tab20" if many else "tab10")
    palette = [cycle(i) for i in range(cycle.N) if i not in ((6, 7) if many else (3,))]
    last, ends, end_epoch = [], [], 0
    for index, trial in enumerate(trials):
        rows_ = histories[trial]
        epochs = [row["epoch"] for row in rows_]
        accuracy = np.array([row["test_accuracy"] for row in rows_], dtype=float)
        smooth = running_mean(accuracy, SMOOTHING)
        is_winner = trial == winner
        colour = "tab:red" if is_winner else palette[index % len(palette)]
        style = {"color": colour, "ls": ":" if is_reference(trial) else "-"}
        # epoch-to-epoch noise (0.2-0.7 points) hides the order: the raw curve faint, its
        # running mean drawn over it
        overview.plot(epochs, accuracy, lw=0.6, alpha=0.25, zorder=1, **style)
        width, order = (2.2, 3) if is_winner else (1.1, 2)
        overview.plot(epochs, smooth, lw=width, zorder=order, **style)
        ends.append((smooth[-1], trial + (" (winner)" if is_winner else ""), colour))
        end_epoch = max(end_epoch, epochs[-1])
        tail = accuracy[-max(1, len(accuracy) // 6) :]
        last += [float(min(tail)), float(max(tail))] if not is_reference(trial) else []
    if last:  # the band of the candidates' last sixth of training, with a margin
        low, high = min(last), max(last)
        margin = max(0.002, (high - low) * 0.25)
        overview.set_ylim(low - margin, min(1.0, high + margin))
    label_ends(overview, ends, end_epoch)
    overview.set_xlabel("epoch")
    overview.set_ylabel("accuracy on the 15 % test part")
    overview.set_title(
        f"Test-part accuracy of every retrained network: running mean over {SMOOTHING} epochs "
        "over the raw curve (faint), zoomed to the candidates' final band; dotted: references",
        fontsize=10,
    )
    overview.grid(True, alpha=0.3)
    overview.xaxis.set_major_locator(MaxNLocator(integer=True))
    for index, trial in enumerate(trials):
        ax = fig.add_subplot(grid[1 + index // columns, index % columns])
        rows_ = histories[trial]
        epochs = [row["epoch"] for row in rows_]
        ax.plot(epochs, [row["test_loss"] for row in rows_], color="tab:blue", lw=1.2, label="test")
        ax.plot(
            epochs, [row["train_loss"] for row in rows_], color="tab:orange", lw=1.0, label="train"
        )
        ax.set_yscale("log")
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=4))
        ax.tick_params(labelsize=7)
        ax.set_title(
            trial + (" (winner)" if trial == winner else ""),
            fontsize=8,
            style="italic" if is_reference(trial) else "normal",
            color="tab:red" if trial == winner else "black",
        )
        if trial == winner:
            for spine in ax.spines.values():
                spine.set_color("tab:red")
                spine.set_linewidth(1.5)
        if index == 0:
            ax.legend(fontsize=7, title="cross-entropy", title_fontsize=7)
    save_png(fig, path)
    return fig


RECEPTIVE_FIELD_TITLES = {
    "layer1": "hidden layer 1: rows of W1",
    "layer2": "hidden layer 2: rows of W2·W1",
    "output": "output neurons: rows of W3·W2·W1",
}


def plot_receptive_fields_stage(model_path, outputs, n_neurons: int, output_neurons: int) -> None:
    """Rule plot_receptive_fields: one figure per layer (``outputs[layer]``)."""
    module, checkpoint = load_model(model_path)
    fields = receptive_fields(module)
    for layer in LAYERS:
        neurons = neuron_indices(layer, n_neurons, output_neurons, len(fields[layer]))
        plot_neuron_grids(
            [
                (
                    fields[layer][neurons],
                    [f"{n}" for n in neurons],
                    RECEPTIVE_FIELD_TITLES[layer],
                    "weights",
                )
            ],
            outputs[layer],
            f"{checkpoint['trial']['trial']}: red positive, blue negative, one scale for all "
            "(colour bar)",
        )


def mean_training_image(data, train_indices) -> np.ndarray:
    """The mean of the training part's images (784,), in [0, 1]: the regularised ascent's start
    and prior (the test part and the official test set are not looked at)."""
    from .data import load_part

    X, _ = load_part(data, train_indices)
    return X.mean(dim=0).numpy()


def plot_gradient_ascent_stage(model_path, outputs, settings: dict, mean_image=None) -> dict:
    """Rule plot_gradient_ascent: one figure per layer (``outputs[layer]``): the lab's clamped
    ascent, layer 1 beside its exact box maximiser, and the regularised ascent
    (``regularised_ascent``, from ``mean_image``, the mean training image), and what each
    ascent reached (``outputs.stats``). ``settings``: n_neurons, output_neurons, steps,
    step_size, start."""
    module, checkpoint = load_model(model_path)
    linear = dict(zip(LAYERS, module.linear_layers(), strict=True))
    stats = {}
    for layer in LAYERS:
        neurons = neuron_indices(
            layer, settings["n_neurons"], settings["output_neurons"], linear[layer].out_features
        )
        images, trace = gradient_ascent(
            module, layer, neurons, settings["steps"], settings["step_size"], settings["start"]
        )
        # layer 1 is linear in the image: its exact maximiser over the box is known
        weights = (
            linear[layer].weight.detach().cpu().numpy()[neurons] if layer == "layer1" else None
        )
        stats[layer] = {"neurons": neurons, **ascent_stats(images, trace, weights)}
        reached = stats[layer]["activation_reached"]
        what = "digit: logit" if layer == "output" else "neuron: activation"
        panels = [
            (
                images,
                [f"{n}: {a:.3g}" for n, a in zip(neurons, reached, strict=True)],
                f"the lab's ascent ({what})",
                "image",
            )
        ]
        if weights is not None:
            exact = box_maximiser(weights)
            panels.append(
                (exact, [f"{n}" for n in neurons], "exact box maximiser (neuron)", "image")
            )
        if mean_image is not None:
            regular, objective = regularised_ascent(module, layer, neurons, mean_image)
            stats[layer]["regularised_reached"] = objective.tolist()
            unit = "digit: probability" if layer == "output" else "neuron: activation"
            labels = [
                f"{n}: {v:.2f}" if layer == "output" else f"{n}: {v:.3g}"
                for n, v in zip(neurons, objective, strict=True)
            ]
            panels.append((regular, labels, f"regularised ascent ({unit})", "image"))
        plot_neuron_grids(
            panels,
            outputs[layer],
            f"{checkpoint['trial']['trial']}, {LAYER_NAMES[layer]}. The lab's: "
            f"{settings['steps']} steps of x += {settings['step_size']:g}·grad from grey "
            f"{settings['start']:g}, clamped to [0, 1]. Regularised: from the mean training "
            f"image, {REGULARISED['steps']} Adam steps with an L2 pull to it, total variation "
            "and blur",
        )
        log.info("%s: %s", layer, stats[layer])
    write_json(outputs.stats, stats)
    return stats


def plot_learning_curves_stage(history_paths, winner_path, output) -> None:
    """Rule plot_learning_curves: every retrained trial's learning curves, the winner bold."""
    histories = {
        Path(path).parent.name: read_table(path).to_dict("records") for path in history_paths
    }
    plot_learning_curves(histories, read_json(winner_path)["trial"], output)


# The search overview's panels: hyper-parameter, axis label, log scale (batch_size only where
# the search draws it).
SEARCH_PANELS = (
    ("Nh1", "Nh1 (first hidden layer)", False),
    ("Nh2", "Nh2 (second hidden layer)", False),
    ("dropout", "dropout probability", False),
    ("lr", "learning rate", True),
    ("L2", "L2 (weight decay)", True),
    ("optimizer", "optimizer", False),
    ("batch_size", "batch size", True),
)
PRUNED_MARKERS = ("v", "<", "^", ">", "d")  # one per rung a trial was pruned at


def plot_search_overview(ranking, summary, path, title="Random search"):
    """The CV loss of every trial against each of its hyper-parameters, one panel each; the
    retrained top k ringed and the winner starred. Diverged trials have no loss: counted in the
    title, not drawn. With successive halving, a pruned trial is drawn at its score at the rung
    where it stopped (the lowest validation loss so far), grey, one marker per rung."""
    plt = pyplot()
    finite = ranking[np.isfinite(ranking["mean_loss"])]
    pruned = ranking[ranking["status"] == "pruned"]
    retrained = set(summary.loc[~summary["reference"], "trial"])
    winner = summary.loc[summary["winner"], "trial"].tolist()
    panels = [panel for panel in SEARCH_PANELS if panel[0] in ranking.columns]
    columns = math.ceil(len(panels) / 2)
    fig, axes = plt.subplots(
        2, columns, figsize=(4.4 * columns, 7.5), sharey=True, constrained_layout=True
    )
    optimizers = sorted(ranking["optimizer"].unique())
    size = 30 if len(ranking) <= 30 else 14
    jitter = np.random.default_rng(0).uniform(-0.15, 0.15, len(ranking))

    def positions(rows, key):
        if key != "optimizer":
            return rows[key].to_numpy()
        # categorical: one column per optimizer, jittered
        return rows["optimizer"].map(optimizers.index).to_numpy() + jitter[rows.index]

    for ax, (key, label, log_scale) in zip(axes.flat, panels, strict=False):
        if key == "optimizer":
            ax.set_xticks(range(len(optimizers)), optimizers)
        for rung, rows in pruned.groupby("rung") if len(pruned) else ():
            ax.scatter(
                positions(rows, key),
                rows["score"],
                s=size,
                marker=PRUNED_MARKERS[int(rung) % len(PRUNED_MARKERS)],
                color="0.55",
                alpha=0.6,
                label=f"pruned at rung {int(rung)} ({int(rows['budget'].iloc[0])} epochs per fold)",
            )
        x = positions(finite, key)
        top = finite["trial"].isin(retrained).to_numpy()
        best = finite["trial"].isin(winner).to_numpy()
        loss = finite["mean_loss"].to_numpy()
        ax.scatter(x, loss, s=size, color="tab:blue", alpha=0.6, label="trial")
        ax.scatter(
            x[top],
            loss[top],
            s=size * 4,
            facecolors="none",
            edgecolors="tab:orange",
            linewidths=1.5,
            label=f"retrained (top {top.sum()})" if top.any() else "_nolegend_",
        )
        ax.scatter(
            x[best],
            loss[best],
            s=size * 8,
            marker="*",
            color="tab:red",
            label="winner" if best.any() else "_nolegend_",  # none before the final stage
            zorder=3,
        )
        ax.tick_params(labelsize=9, which="both")
        if log_scale:
            ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(label)
        ax.grid(True, which="both", alpha=0.3)
    for ax in axes.flat[len(panels) :]:
        ax.set_visible(False)
    ylabel = "mean held-out loss (CV)" + ("; pruned: rung score" if len(pruned) else "")
    for ax in axes[:, 0]:
        ax.set_ylabel(ylabel)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=min(len(labels), 4))
    diverged = int((ranking["status"] == "diverged").sum())
    counts = [f"{len(finite)} trials completed"]
    counts += [f"{len(pruned)} pruned"] if len(pruned) else []
    counts += [f"{diverged} diverged, not drawn"] if diverged else []
    fig.suptitle(f"{title}: {len(ranking)} trials ({', '.join(counts)})")
    save_png(fig, path, dpi=110)
    return fig


def plot_search_stage(ranking_path, summary_path, output, title="Random search") -> None:
    """Rule plot_search: the search overview, with the retrained trials and the winner."""
    plot_search_overview(read_table(ranking_path), read_table(summary_path), output, title)


def plot_best_so_far(rankings: dict, path):
    """The best CV loss after n trials (in trial order: the order a sampler proposed them) of
    each search, one line each, log scale. Returns the figure (closed)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.2), constrained_layout=True)
    for label, ranking in rankings.items():
        best = best_so_far(ranking)["mean_loss"]
        ax.step(best.index, best.to_numpy(), where="post", label=label)
    ax.set_yscale("log")
    ax.set_xlabel("trials so far (in the order they were proposed)")
    ax.set_ylabel("best mean held-out loss (CV)")
    ax.set_title("The best CV loss after n trials (one seed each: one draw)")
    ax.grid(True, alpha=0.3, which="both")
    ax.legend()
    save_png(fig, path)
    return fig
