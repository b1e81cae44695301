"""MTL, DomainBed's neural version of Marginal Transfer Learning (Blanchard et al. 2021)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from fishr_tune.algorithms.base import Algorithm, Minibatches


class MTL(Algorithm):
    """Reads ``mtl_ema``. The classifier takes [features, domain embedding] (twice the width).

    Per training domain, the embedding is an EMA of the batch's mean feature, ``mtl_ema`` *
    batch mean + (1 - mtl_ema) * stored (a buffer, saved with the model); at evaluation it is
    the evaluation batch's mean feature, so ``predict`` depends on its batch
    (``EVAL_BATCH_DEPENDENT``).

    DomainBed quirk kept: its ``predict`` ends the embedding with an in-place ``.normal_()``,
    so the classifier actually receives N(0, 1) noise of the embedding's shape (drawn from
    torch's global RNG, in ``update`` and ``predict`` alike) and no gradient flows through the
    embedding; the EMA is still tracked. We reproduce that to match its numbers.
    """

    EVAL_BATCH_DEPENDENT = True

    def build_networks(self, featurizer: nn.Module | None) -> None:
        """Featurizer, a classifier of width 2 * n_outputs, the ``embeddings`` buffer."""
        if featurizer is None:
            featurizer = self.new_featurizer(self.input_shape)
        width = featurizer.n_outputs
        self.network = nn.Sequential(featurizer, self.new_classifier(2 * width))
        self.register_buffer("embeddings", torch.zeros(self.num_domains, width))
        self.ema = float(self.hparam("mtl_ema"))

    def _embedding(self, features: torch.Tensor, env: int | None) -> torch.Tensor:
        embedding = features.mean(0)
        if env is not None:
            embedding = self.ema * embedding + (1 - self.ema) * self.embeddings[env]
            self.embeddings[env] = embedding.detach().clone()
        # The quirk (class doc): same shape, values replaced by standard normal noise.
        return torch.randn(len(features), embedding.numel(), device=features.device,
                           dtype=features.dtype)

    def predict(self, x: torch.Tensor, env: int | None = None) -> torch.Tensor:
        """Logits for x; with ``env`` (training only) that domain's EMA embedding is updated."""
        features = self.featurizer(x)
        return self.classifier(torch.cat([features, self._embedding(features, env)], 1))

    def update(self, minibatches: Minibatches) -> dict[str, float]:
        """One Adam step on the SUM over domains of their CE; returns ``loss``."""
        loss = sum(F.cross_entropy(self.predict(x, env), y)
                   for env, (x, y) in enumerate(minibatches))
        self.take_step(loss)
        return {"loss": loss.item()}
