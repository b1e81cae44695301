"""RSC, Representation Self-Challenging (Huang et al. 2020), as DomainBed."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from fishr_tune.algorithms.base import Algorithm, Minibatches, pooled


class RSC(Algorithm):
    """Reads ``rsc_f_drop_factor`` and ``rsc_b_drop_factor``.

    Per step: g = d(sum of the true-class logits)/d(features); per sample, the features whose g
    is at or above the (1 - f_drop) quantile are muted (eq. 2-3); the samples whose true-class
    probability drops least under that muting, below the (1 - b_drop) quantile of the drops,
    keep all their features (sec. 3.3: a feature is kept where either mask keeps it); the CE of
    the classifier on the masked features is minimised. Quantiles are linear-interpolation
    percentiles, as DomainBed's ``np.percentile``.
    """

    def update(self, minibatches: Minibatches) -> dict[str, float]:
        """One Adam step on the masked-feature CE; returns ``loss``."""
        all_x, all_y = pooled(minibatches)
        onehot = F.one_hot(all_y, self.num_classes)
        features = self.featurizer(all_x)
        logits = self.classifier(features)
        grads = torch.autograd.grad((logits * onehot).sum(), features)[0]
        f_quantile = 1 - float(self.hparam("rsc_f_drop_factor"))
        thresholds = torch.quantile(grads.detach(), f_quantile, dim=1, keepdim=True)
        mask_f = grads.lt(thresholds).float()
        muted_logits = self.classifier(features * mask_f)
        changes = ((F.softmax(logits, dim=1) * onehot).sum(1)
                   - (F.softmax(muted_logits, dim=1) * onehot).sum(1)).detach()
        b_quantile = 1 - float(self.hparam("rsc_b_drop_factor"))
        mask_b = changes.lt(torch.quantile(changes, b_quantile)).float().view(-1, 1)
        mask = torch.logical_or(mask_f, mask_b).float()
        loss = F.cross_entropy(self.classifier(features * mask), all_y)
        self.take_step(loss)
        return {"loss": loss.item()}
