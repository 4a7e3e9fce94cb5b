"""The network of the lab: 784 -> Nh1 -> LeakyReLU -> Dropout -> Nh2 -> LeakyReLU -> Dropout -> 10.

It returns logits; ``nn.CrossEntropyLoss`` applies the softmax, so there is no softmax layer.
"""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from .data import N_CLASSES, N_PIXELS


class MLP(nn.Module):
    def __init__(self, n_hidden1: int, n_hidden2: int, dropout: float = 0.0):
        super().__init__()
        self.layers = nn.Sequential(
            OrderedDict(
                hidden1=nn.Linear(N_PIXELS, n_hidden1),
                act1=nn.LeakyReLU(),
                drop1=nn.Dropout(dropout),
                hidden2=nn.Linear(n_hidden1, n_hidden2),
                act2=nn.LeakyReLU(),
                drop2=nn.Dropout(dropout),
                output=nn.Linear(n_hidden2, N_CLASSES),
            )
        )

    def forward(self, x):
        return self.layers(x.reshape(len(x), N_PIXELS))

    def linear_layers(self) -> list[nn.Linear]:
        """The three weight layers, input side first."""
        return [self.layers.hidden1, self.layers.hidden2, self.layers.output]
