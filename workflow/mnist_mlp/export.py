"""The winner and the ensemble outside this package: ``torch.export`` programs (``.pt2``) that
``torch.export.load(path).module()`` opens with PyTorch alone (no ``mnist_mlp``, no skorch),
taking a float tensor of shape (n, 784) in [0, 1] (28x28 images flattened row by row, white
digit on black, as MNIST) and returning the probabilities of the ten digits (n, 10). The batch
size is free (1 to 1,000,000)."""

from __future__ import annotations

import copy
import io
import logging

import torch
from torch import nn

from .io import atomic_write_bytes
from .model import Ensemble, load_model

log = logging.getLogger(__name__)


def for_inference(network: nn.Module) -> nn.Module:
    """A copy of ``network`` without its dropout layers (identities in eval mode)."""
    network = copy.deepcopy(network).eval()
    for module in list(network.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, nn.Dropout):
                setattr(module, name, nn.Identity())
    return network


class Probabilities(nn.Module):
    """The mean softmax output of one network or of an ensemble's members, on images flattened
    to 784 values: plain layers only."""

    def __init__(self, network: nn.Module):
        super().__init__()
        members = network.members if isinstance(network, Ensemble) else [network]
        self.members = nn.ModuleList(for_inference(member).layers for member in members)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = images.reshape(images.shape[0], 784).float()
        found = [member(x).softmax(dim=1) for member in self.members]
        return torch.stack(found).mean(dim=0)


def export(model_path, output):
    """The model at ``model_path`` (a network or an ensemble) as a ``torch.export`` program."""
    module, _ = load_model(model_path)
    program = torch.export.export(
        Probabilities(module).eval(),
        (torch.zeros(2, 784),),  # the example input is saved too: a fixed one
        dynamic_shapes={"images": {0: torch.export.Dim("batch", min=1, max=1_000_000)}},
    )
    # torch.export keeps the source location of every node (the file's absolute path, its line
    # numbers): the program's bytes would depend on where the code is checked out and on
    # edits that move lines. They are debugging aids only: dropped.
    for node in program.graph.nodes:
        node.meta.pop("stack_trace", None)
    buffer = io.BytesIO()
    torch.export.save(program, buffer)
    atomic_write_bytes(output, lambda handle: handle.write(buffer.getvalue()))
    return program


def export_models_stage(winner_path, ensemble_path, outputs) -> None:
    """Rule export_models: ``outputs.winner`` and ``outputs.ensemble`` (``.pt2``)."""
    export(winner_path, outputs.winner)
    export(ensemble_path, outputs.ensemble)
    log.info("exported %s and %s", outputs.winner, outputs.ensemble)
