"""DomainBed's random pairs of domain minibatches (Mixup, MLDG)."""

from __future__ import annotations

import torch

from fishr_tune.algorithms.base import Minibatches


def random_pairs_of_minibatches(minibatches: Minibatches):
    """Pairs (batch i, batch i+1) around a random cycle of the domains (``torch.randperm``),
    each pair cut to the smaller of its two sizes (DomainBed's ``lib/misc.py`` rule)."""
    order = torch.randperm(len(minibatches)).tolist()
    pairs = []
    for position, i in enumerate(order):
        j = order[(position + 1) % len(order)]
        (xi, yi), (xj, yj) = minibatches[i], minibatches[j]
        n = min(len(xi), len(xj))
        pairs.append(((xi[:n], yi[:n]), (xj[:n], yj[:n])))
    return pairs
