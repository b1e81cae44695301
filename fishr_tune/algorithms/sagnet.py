"""SagNet (Nam et al. 2021, Algorithm 1) as in DomainBed: content and style classifiers on one
featurizer's features, with style / content randomisation and an adversarial style loss."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from fishr_tune.algorithms.base import Algorithm, Minibatches, pooled

EPS = 1e-5


def randomize(features: torch.Tensor, what: str) -> torch.Tensor:
    """DomainBed's ``SagNet.randomize`` on (N, D) features (statistics over the D features).

    ``"style"``: normalise each sample, then give it a random mixture alpha * own + (1 - alpha) *
    another sample's mean and variance (alpha ~ U(0, 1) per sample, the other sample by a
    random permutation). ``"content"``: the other sample's normalised (detached) content with
    this sample's own statistics. Uses torch's global RNG.
    """
    alpha = torch.rand(features.shape[0], 1, device=features.device)
    mean = features.mean(-1, keepdim=True)
    var = features.var(-1, keepdim=True)
    normalised = (features - mean) / (var + EPS).sqrt()
    swap = torch.randperm(features.shape[0])
    if what == "style":
        mean = alpha * mean + (1 - alpha) * mean[swap]
        var = alpha * var + (1 - alpha) * var[swap]
    else:
        normalised = normalised[swap].detach()
    return normalised * (var + EPS).sqrt() + mean


class SagNet(Algorithm):
    """Reads ``sag_w_adv``. Networks: ``network`` = (featurizer, content classifier), used by
    ``predict``, and ``style_classifier``. Optimizers ``featurizer``, ``content`` and ``style``
    (Adam, lr, weight_decay). Returns ``loss_c``, ``loss_s`` and ``loss_adv``."""

    def build_networks(self, featurizer: nn.Module | None) -> None:
        """ERM's networks plus the style classifier."""
        super().build_networks(featurizer)
        self.style_classifier = self.new_classifier(self.featurizer.n_outputs)

    def make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """One Adam per network."""
        return {"featurizer": self.adam(self.featurizer.parameters()),
                "content": self.adam(self.classifier.parameters()),
                "style": self.adam(self.style_classifier.parameters())}

    def update(self, minibatches: Minibatches) -> dict[str, float]:
        """Content step (featurizer + content), style step (style), adversarial step
        (featurizer: the style classifier's predictions pushed towards uniform)."""
        opt = self.optimizers
        all_x, all_y = pooled(minibatches)
        opt["featurizer"].zero_grad()
        opt["content"].zero_grad()
        loss_c = F.cross_entropy(self.classifier(randomize(self.featurizer(all_x), "style")),
                                 all_y)
        loss_c.backward()
        opt["featurizer"].step()
        opt["content"].step()

        opt["style"].zero_grad()
        loss_s = F.cross_entropy(
            self.style_classifier(randomize(self.featurizer(all_x), "content")), all_y)
        loss_s.backward()
        opt["style"].step()

        opt["featurizer"].zero_grad()
        style_logits = self.style_classifier(randomize(self.featurizer(all_x), "content"))
        loss_adv = -F.log_softmax(style_logits, dim=1).mean(1).mean() * float(
            self.hparam("sag_w_adv"))
        loss_adv.backward()
        opt["featurizer"].step()
        self.update_count += 1
        return {"loss_c": loss_c.item(), "loss_s": loss_s.item(), "loss_adv": loss_adv.item()}
