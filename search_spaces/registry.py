"""DomainBed's hparam registry, Fishr-paper era: ONE definition per hparam.

Each hparam is (name, default, random distribution, valid override range). They are grouped the
way DomainBed groups them: hparams every algorithm has, one block per algorithm, then the
hparams that depend on the dataset group (``small``: MNIST-like and the embedded digits; ``big``:
224x224 images; ``domainnet``: big with DomainNet's smaller batch).

Era: the values are those of alexrame/fishr (a fork of DomainBed from 2021-09), which produced
the Fishr paper and the published DomainBed tables (frozen-BN torchvision ResNet-50). Where
DomainBed's main branch later changed the registry, a comment says so. Two later DomainBed bug
fixes are kept on purpose: Mixup's alpha and SANDMask's k (see their blocks).

Defaults are stored with the hparam's own type (ANDMask's ``tau`` default is 1.0 where DomainBed
writes the int 1, IGA's ``penalty`` 1000.0): the values compare equal, and a float hparam then
always holds a float whichever seed produced it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from search_spaces.constraints import (AT_LEAST_ONE, BOOL, EMA, NON_NEGATIVE, POSITIVE, STEPS,
                                       UNIT, Valid)
from search_spaces.distributions import (Choice, Distribution, Fixed, IntOf, LogUniform10, Pow2,
                                         Uniform)


@dataclass(frozen=True)
class HParam:
    """One hparam: its name, default (hparams_seed 0), random distribution and valid range."""

    name: str
    default: Any
    dist: Distribution
    valid: Valid


H = HParam  # the tables below are easier to read with a short constructor

# Every algorithm, every dataset. FR-era: DomainBed main later added resnet50_augmix,
# freeze_bn (BN now trains), dinov2, vit, vit_attn_tune, lars, linear_steps and vit_dropout;
# none of them exists here, so the backbone is the frozen-BN torchvision ResNet-50.
COMMON = (
    H("data_augmentation", True, Fixed(True), BOOL),
    H("resnet18", False, Fixed(False), BOOL),
    H("resnet_dropout", 0.0, Choice((0.0, 0.1, 0.5)), UNIT),
    H("class_balanced", False, Fixed(False), BOOL),
    # DomainBed draws bool(r.choice([False, False])) on this hparam's own RNG: always False, and
    # no other hparam's draw depends on it, so a constant reproduces it.
    H("nonlinear_classifier", False, Fixed(False), BOOL),
)

_DANN = (
    H("lambda", 1.0, LogUniform10(-2, 2), NON_NEGATIVE),
    H("weight_decay_d", 0.0, LogUniform10(-6, -2), NON_NEGATIVE),
    H("d_steps_per_g_step", 1, Pow2(0, 3), AT_LEAST_ONE),
    H("grad_penalty", 0.0, LogUniform10(-2, 1), NON_NEGATIVE),
    H("beta1", 0.5, Choice((0.0, 0.5)), Valid("float", 0.0, 1.0, high_open=True)),
    H("mlp_width", 256, Pow2(6, 10), AT_LEAST_ONE),
    H("mlp_depth", 3, Choice((3, 4, 5)), Valid("int", low=2)),  # input and output layers
    H("mlp_dropout", 0.0, Choice((0.0, 0.1, 0.5)), UNIT),
)

_MMD = (H("mmd_gamma", 1.0, LogUniform10(-1, 1), NON_NEGATIVE),)

# THE algorithm registry: every algorithm of the project, in DomainBed's ALGORITHMS order, with
# its hparam block (SelfReg, which has no hparam of its own, is not part of this project).
# fishr_tune.algorithms derives its classes from these names (class Name in module
# fishr_tune/algorithms/<name lowercased>.py), so a new algorithm is that module + one line here.
ALGORITHMS: dict[str, tuple[HParam, ...]] = {
    "ERM": (),
    "Fish": (H("meta_lr", 0.5, Choice((0.05, 0.1, 0.5)), POSITIVE),),
    "IRM": (
        H("irm_lambda", 100.0, LogUniform10(-1, 5), NON_NEGATIVE),
        H("irm_penalty_anneal_iters", 500, IntOf(LogUniform10(0, 4)), STEPS),
    ),
    "GroupDRO": (H("groupdro_eta", 0.01, LogUniform10(-3, -1), NON_NEGATIVE),),
    # Bug fix kept from DomainBed aa728f5 (2023-01): the FR-era registry drew 10^U(-1, -1),
    # i.e. always 0.1; the intended range is 10^U(-1, 1). Beta(alpha, alpha) needs alpha > 0.
    "Mixup": (H("mixup_alpha", 0.2, LogUniform10(-1, 1), POSITIVE),),
    # FR-era: no n_meta_test (DomainBed main later added n_meta_test 2 | C{1, 2}).
    "MLDG": (H("mldg_beta", 1.0, LogUniform10(-1, 1), NON_NEGATIVE),),
    "CORAL": _MMD,
    "MMD": _MMD,
    "DANN": _DANN,
    "CDANN": _DANN,
    "MTL": (H("mtl_ema", 0.99, Choice((0.5, 0.9, 0.99, 1.0)), UNIT),),
    "SagNet": (H("sag_w_adv", 0.1, LogUniform10(-2, 1), NON_NEGATIVE),),
    "ARM": (),  # its batch size is in the dataset-group block below
    "VREx": (
        H("vrex_lambda", 10.0, LogUniform10(-1, 5), NON_NEGATIVE),
        H("vrex_penalty_anneal_iters", 500, IntOf(LogUniform10(0, 4)), STEPS),
    ),
    "RSC": (
        H("rsc_f_drop_factor", 1 / 3, Uniform(0, 0.5), UNIT),
        H("rsc_b_drop_factor", 1 / 3, Uniform(0, 0.5), UNIT),
    ),
    "SD": (H("sd_reg", 0.1, LogUniform10(-5, -1), NON_NEGATIVE),),
    "ANDMask": (H("tau", 1.0, Uniform(0.5, 1.0), UNIT),),
    "SANDMask": (
        H("tau", 1.0, Uniform(0.0, 1.0), UNIT),
        # Bug fix kept from DomainBed: k is the float 10^U(-3, 5). The FR-era registry truncated
        # it, int(10^U(-3, 5)), which gives k = 0 (a dead mask) for 3/8 of the draws.
        H("k", 10.0, LogUniform10(-3, 5), POSITIVE),
    ),
    "IGA": (H("penalty", 1000.0, LogUniform10(1, 5), NON_NEGATIVE),),
    "Fishr": (
        H("lambda", 1000.0, LogUniform10(1, 4), NON_NEGATIVE),
        H("penalty_anneal_iters", 1500, IntOf(Uniform(0, 5000)), STEPS),
        H("ema", 0.95, Uniform(0.90, 0.99), EMA),
        # Project-specific: how per-sample gradients are computed. Never drawn, so it changes no
        # DomainBed draw (each hparam has its own RNG); "backpack" is the reference library.
        H("fishr_backend", "closed_form", Fixed("closed_form"),
          Valid("str", choices=("closed_form", "backpack"))),
    ),
}

GROUPS = ("small", "big", "domainnet")

# (default, distribution) per dataset group.
_LR = {"small": (1e-3, LogUniform10(-4.5, -2.5)), "big": (5e-5, LogUniform10(-5, -3.5))}
_LR["domainnet"] = _LR["big"]
_WEIGHT_DECAY = {"small": (0.0, Fixed(0.0)), "big": (0.0, LogUniform10(-6, -2))}
_WEIGHT_DECAY["domainnet"] = _WEIGHT_DECAY["big"]
_BATCH_SIZE = {"small": (64, Pow2(3, 9)), "big": (32, Pow2(3, 5.5)),
               "domainnet": (32, Pow2(3, 5))}

_ADVERSARIAL = ("DANN", "CDANN")
# Valid ranges narrower for one algorithm than for the others, so that an override it cannot
# train with is refused with the other bad overrides (before a sweep starts Ray): IRM's penalty
# needs an even and an odd half of each domain's batch, CORAL's unbiased covariance divides by
# n - 1, and Fishr's closed-form variances need a linear classifier.
_AT_LEAST_TWO = Valid("int", low=2)
_NARROWED = {"IRM": {"batch_size": _AT_LEAST_TWO}, "CORAL": {"batch_size": _AT_LEAST_TWO},
             "Fishr": {"nonlinear_classifier": Valid("bool", choices=(False,))}}


def _group_block(algorithm: str, group: str) -> tuple[HParam, ...]:
    """lr, weight_decay, batch_size (+ DANN's generator/discriminator copies) for one group."""
    lr, weight_decay = _LR[group], _WEIGHT_DECAY[group]
    batch_size = _BATCH_SIZE[group]
    # DomainBed tests "small dataset" before "ARM": ARM on MNIST keeps the small-image batch.
    if algorithm == "ARM" and group != "small":
        batch_size = (8, Fixed(8))
    block = [H("lr", *lr, POSITIVE), H("weight_decay", *weight_decay, NON_NEGATIVE),
             H("batch_size", *batch_size, AT_LEAST_ONE)]
    if algorithm in _ADVERSARIAL:
        # Same laws as lr / weight_decay, but each name has its own RNG, so lr_g != lr.
        block += [H("lr_g", *lr, POSITIVE), H("lr_d", *lr, POSITIVE),
                  H("weight_decay_g", *weight_decay, NON_NEGATIVE)]
    return tuple(block)


def hparams_for(algorithm: str, group: str) -> tuple[HParam, ...]:
    """All hparam definitions of a (canonical) algorithm and dataset group, in DomainBed order."""
    narrowed = _NARROWED.get(algorithm, {})
    return tuple(replace(h, valid=narrowed[h.name]) if h.name in narrowed else h
                 for h in COMMON + ALGORITHMS[algorithm] + _group_block(algorithm, group))
