"""The network of the lab: 784 -> Nh1 -> LeakyReLU -> Dropout -> Nh2 -> LeakyReLU -> Dropout -> 10.

It returns logits; ``nn.CrossEntropyLoss`` applies the softmax, so there is no softmax layer.
"""

from __future__ import annotations

import io
import zipfile
from collections import OrderedDict

import torch
from torch import nn

from .constants import N_CLASSES, N_PIXELS
from .errors import UserFacingError
from .io import atomic_write_bytes


class Dropout(nn.Dropout):
    """``nn.Dropout`` (zero each value with probability p, scale the rest by 1 / (1 - p)) with
    its mask drawn as ``torch.rand(...) >= p`` on the CPU: there torch's ``bernoulli_`` took 28 %
    of a training epoch of the report's winner shape (850 us per 128x532 mask, against 270 us).
    Same distribution; on a GPU torch's fused kernel is kept."""

    def forward(self, x):
        if not self.training or self.p == 0 or x.is_cuda:
            return super().forward(x)
        if self.p == 1:
            return torch.zeros_like(x)
        # The scaled mask is built in place in float: a boolean mask would be converted to
        # float in every multiplication, forward and backward.
        mask = torch.rand_like(x).ge_(self.p).mul_(1.0 / (1.0 - self.p))
        return x * mask


class MLP(nn.Module):
    def __init__(self, n_hidden1: int, n_hidden2: int, dropout: float = 0.0):
        super().__init__()
        self.layers = nn.Sequential(
            OrderedDict(
                hidden1=nn.Linear(N_PIXELS, n_hidden1),
                act1=nn.LeakyReLU(),
                drop1=Dropout(dropout),
                hidden2=nn.Linear(n_hidden1, n_hidden2),
                act2=nn.LeakyReLU(),
                drop2=Dropout(dropout),
                output=nn.Linear(n_hidden2, N_CLASSES),
            )
        )

    def forward(self, x):
        return self.layers(x.reshape(len(x), N_PIXELS))

    def linear_layers(self) -> list[nn.Linear]:
        """The three weight layers, input side first."""
        return [self.layers.hidden1, self.layers.hidden2, self.layers.output]


ARCHITECTURE_KEYS = ("Nh1", "Nh2", "dropout")


def atomic_save(path, content) -> None:
    """``torch.save`` to a temporary file beside ``path``, then renamed into place."""
    buffer = io.BytesIO()
    torch.save(content, buffer)
    atomic_write_bytes(path, lambda handle: handle.write(buffer.getvalue()))


def load_state(path, device="cpu", repair: bool = True) -> dict:
    """What ``atomic_save`` saved: tensors and plain Python values only (``weights_only``). A
    file torch cannot read (cut short, overwritten) is set aside and named (``repair``: a
    result of the workflow, which the next run recomputes; else the error is raised as it is);
    a file with anything else than tensors and plain values is refused."""
    import pickle

    from .io import set_aside

    if not repair:
        return torch.load(path, map_location=device, weights_only=True)
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError as err:
        raise UserFacingError(
            f"{path} holds more than tensors and plain values, which this workflow never "
            f"writes: it refuses to load it ({str(err).splitlines()[0]}). Delete it and run the "
            "workflow again."
        ) from err
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile) as err:
        if isinstance(err, FileNotFoundError):
            raise
        raise set_aside(path, f"torch cannot read it: {str(err).splitlines()[0]}") from err


def save_model(path, module: MLP, trial: dict, metrics: dict | None = None) -> None:
    """One file with the state dict, the architecture and the trial's hyper-parameters (and
    optionally the metrics it was saved with); ``load_model`` rebuilds the network from it."""
    checkpoint = {
        "format": "mnist_mlp/2",
        "architecture": {key: trial[key] for key in ARCHITECTURE_KEYS},
        "trial": dict(trial),
        "metrics": dict(metrics or {}),
        "state_dict": {key: value.cpu() for key, value in module.state_dict().items()},
    }
    atomic_save(path, checkpoint)


def _network(entry: dict) -> MLP:
    architecture = entry["architecture"]
    module = MLP(architecture["Nh1"], architecture["Nh2"], architecture["dropout"])
    module.load_state_dict(entry["state_dict"])
    return module


class Ensemble(nn.Module):
    """Networks voting with equal weights: the mean of their softmax outputs. ``forward``
    returns the log of that mean, which works as logits do (its softmax is the mean, its
    argmax the ensemble's digit, ``cross_entropy`` on it the ensemble's loss)."""

    def __init__(self, members: list[MLP]):
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, x):
        mean = torch.stack([member(x).softmax(dim=1) for member in self.members]).mean(dim=0)
        return mean.clamp_min(torch.finfo(mean.dtype).tiny).log()


def save_ensemble(path, members: list[tuple[dict, MLP]], info: dict) -> None:
    """One file with every member's trial, architecture and weights, and ``info`` (how the
    members were chosen, the accuracies); ``load_model`` rebuilds the ensemble from it."""
    atomic_save(
        path,
        {
            "format": ENSEMBLE_FORMAT,
            "members": [
                {
                    "trial": dict(trial),
                    "architecture": {key: trial[key] for key in ARCHITECTURE_KEYS},
                    "state_dict": {k: v.cpu() for k, v in module.state_dict().items()},
                }
                for trial, module in members
            ],
            "metrics": dict(info),
        },
    )


ENSEMBLE_FORMAT = "mnist_mlp/ensemble/1"


def load_model(path, device="cpu", repair: bool = True) -> tuple[nn.Module, dict]:
    """Load a model saved by ``save_model`` (``model.pt`` of a retrained trial, or
    ``winning_net.dat``) or ``save_ensemble`` (``ensemble.pt``): returns the network in eval
    mode and the checkpoint's other entries (format, architecture, trial, metrics; members)."""
    checkpoint = load_state(path, device, repair)
    if checkpoint.get("format") == ENSEMBLE_FORMAT:
        module = Ensemble([_network(entry) for entry in checkpoint["members"]])
        checkpoint["members"] = [entry["trial"] for entry in checkpoint["members"]]
    else:
        module = _network(checkpoint)
        checkpoint.pop("state_dict")
    return module.to(device).eval(), checkpoint
