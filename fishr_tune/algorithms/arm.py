"""ARM-CML (Zhang et al. 2021), as DomainBed: a context network summarises each support batch into
one extra input channel of the featurizer."""

from __future__ import annotations

import torch
from torch import nn

from fishr_tune.algorithms.erm import ERM
from fishr_tune.networks import context_net


class ARM(ERM):
    """ERM's update through this ``predict``. No hparam of its own; the support size is
    ``batch_size`` (each domain's batch is one support set when the sizes are equal).

    The featurizer is built for C + 1 input channels (for the ResNet that widens the first
    convolution, its filters copied cyclically as DomainBed does). ``predict`` cuts its batch
    into support sets of ``batch_size`` samples when it divides the batch (else one set), and
    appends to each image its set's mean context map: it depends on the evaluation batch
    (``EVAL_BATCH_DEPENDENT``).

    Deviation: DomainBed builds ERM's Adam before the context network, so it never trains its
    context network; here the main Adam covers it (``network`` and ``context_net``).
    """

    EVAL_BATCH_DEPENDENT = True

    def build_networks(self, featurizer: nn.Module | None) -> None:
        """The context network and ERM's networks on the widened input."""
        channels, *spatial = self.input_shape
        self.context_net = context_net(channels)
        if featurizer is None:
            featurizer = self.new_featurizer((channels + 1, *spatial))
        self.network = nn.Sequential(featurizer, self.new_classifier(featurizer.n_outputs))
        self.support_size = int(self.hparam("batch_size"))

    def make_optimizer(self) -> torch.optim.Optimizer:
        """Adam over the network and the context network."""
        return self.adam([*self.network.parameters(), *self.context_net.parameters()])

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Logits for x with the context channel of each support set."""
        n, _, height, width = x.shape
        support = self.support_size if n % self.support_size == 0 else n
        context = self.context_net(x).reshape(n // support, support, 1, height, width).mean(1)
        context = torch.repeat_interleave(context, repeats=support, dim=0)
        return self.network(torch.cat([x, context], dim=1))
