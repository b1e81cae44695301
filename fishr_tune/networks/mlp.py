"""DomainBed's MLP (DANN/CDANN's domain discriminator)."""

from __future__ import annotations

import torch
from torch import nn


class MLP(nn.Module):
    """Linear -> dropout -> ReLU, ``depth - 2`` hidden blocks alike, then a linear output.

    Args:
        n_inputs: input width.
        n_outputs: output width.
        width: hidden width (hparam ``mlp_width``).
        depth: number of linear layers, input and output included (``mlp_depth``, >= 2).
        dropout: dropout rate after every hidden linear layer (``mlp_dropout``).
    """

    def __init__(self, n_inputs: int, n_outputs: int, width: int, depth: int, dropout: float):
        super().__init__()
        if depth < 2:
            raise ValueError(f"MLP depth {depth} must be >= 2 (input and output layers)")
        self.input = nn.Linear(n_inputs, width)
        self.hiddens = nn.ModuleList(nn.Linear(width, width) for _ in range(depth - 2))
        self.output = nn.Linear(width, n_outputs)
        self.dropout = nn.Dropout(dropout)
        self.n_outputs = n_outputs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, n_inputs) -> (N, n_outputs)."""
        for layer in (self.input, *self.hiddens):
            x = torch.relu(self.dropout(layer(x)))  # DomainBed's order: dropout before ReLU
        return self.output(x)
