"""The shared loop of DANN and CDANN (Ganin et al. 2016; Li et al. 2018), as DomainBed's
``AbstractDANN``: a domain discriminator on the features, trained ``d_steps_per_g_step`` steps
for each step of the featurizer + classifier against it."""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from fishr_tune.algorithms.base import Algorithm, Minibatches, pooled
from fishr_tune.networks import MLP


class Adversarial(Algorithm):
    """Reads ``lambda``, ``d_steps_per_g_step``, ``grad_penalty``, ``beta1``, ``mlp_width``,
    ``mlp_depth``, ``mlp_dropout``, ``lr_d``, ``weight_decay_d``, ``lr_g``, ``weight_decay_g``.

    Optimizers: ``disc`` (discriminator, plus the class embeddings when conditional; lr_d,
    weight_decay_d) and ``gen`` (featurizer + classifier; lr_g, weight_decay_g), both Adam with
    betas (beta1, 0.9). ``update_count`` is incremented FIRST; a step is a discriminator step
    when ``update_count % (1 + d) < d``, else a generator step, so ``update`` returns
    ``disc_loss`` or ``gen_loss`` (the trial averages each key over its own steps).
    """

    #: CDANN: the discriminator sees features + a learned embedding of the class, and its loss
    #: weights each sample by 1 / (count of its class * number of classes).
    CONDITIONAL: ClassVar[bool] = False

    def build_networks(self, featurizer: nn.Module | None) -> None:
        """Featurizer, classifier, discriminator MLP (and class embeddings if conditional)."""
        super().build_networks(featurizer)
        width = self.featurizer.n_outputs
        self.discriminator = MLP(width, self.num_domains, int(self.hparam("mlp_width")),
                                 int(self.hparam("mlp_depth")), float(self.hparam("mlp_dropout")))
        if self.CONDITIONAL:
            self.class_embeddings = nn.Embedding(self.num_classes, width)

    def make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """``disc`` and ``gen`` (see the class doc)."""
        betas = (float(self.hparam("beta1")), 0.9)
        disc_params = list(self.discriminator.parameters())
        if self.CONDITIONAL:
            disc_params += list(self.class_embeddings.parameters())
        return {"disc": self.adam(disc_params, "lr_d", "weight_decay_d", betas),
                "gen": self.adam(self.network.parameters(), "lr_g", "weight_decay_g", betas)}

    def _discriminator_loss(self, disc_input, disc_out, disc_labels, all_y) -> torch.Tensor:
        if self.CONDITIONAL:
            counts = F.one_hot(all_y).sum(0)  # DomainBed: classes up to the batch's largest
            weights = 1.0 / (counts[all_y] * counts.shape[0]).float()
            loss = (weights * F.cross_entropy(disc_out, disc_labels, reduction="none")).sum()
        else:
            loss = F.cross_entropy(disc_out, disc_labels)
        # DomainBed's gradient penalty: d/d(input) of the softmax summed over ALL (sample, label
        # of any sample) pairs (its ``[:, disc_labels]`` indexing), squared norm, batch mean.
        softmax = F.softmax(disc_out, dim=1)
        input_grad = torch.autograd.grad(softmax[:, disc_labels].sum(), [disc_input],
                                         create_graph=True)[0]
        return loss + float(self.hparam("grad_penalty")) * input_grad.square().sum(1).mean(0)

    def update(self, minibatches: Minibatches) -> dict[str, float]:
        """One discriminator or generator step (see the class doc)."""
        self.update_count += 1
        all_x, all_y = pooled(minibatches)
        all_z = self.featurizer(all_x)
        disc_input = all_z + self.class_embeddings(all_y) if self.CONDITIONAL else all_z
        disc_out = self.discriminator(disc_input)
        disc_labels = torch.cat([torch.full((x.shape[0],), i, dtype=torch.int64, device=x.device)
                                 for i, (x, _) in enumerate(minibatches)])
        disc_loss = self._discriminator_loss(disc_input, disc_out, disc_labels, all_y)
        d_steps = int(self.hparam("d_steps_per_g_step"))
        if self.update_count % (1 + d_steps) < d_steps:
            self.optimizers["disc"].zero_grad()
            disc_loss.backward()
            self.optimizers["disc"].step()
            return {"disc_loss": disc_loss.item()}
        classifier_loss = F.cross_entropy(self.classifier(all_z), all_y)
        gen_loss = classifier_loss - float(self.hparam("lambda")) * disc_loss
        self.optimizers["disc"].zero_grad()
        self.optimizers["gen"].zero_grad()
        gen_loss.backward()
        self.optimizers["gen"].step()
        return {"gen_loss": gen_loss.item()}
