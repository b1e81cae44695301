"""Algorithms: one module per algorithm, registered by the ONE algorithm registry.

The list of algorithms is ``search_spaces.registry.ALGORITHMS`` (the hparam blocks, which
``search_spaces`` needs without importing torch); algorithm ``Name`` is the class ``Name`` of the
module ``fishr_tune.algorithms.<name lowercased>``. So an algorithm with a search space but no
implementation cannot exist (this package would not import), and a new algorithm is one module
plus one registry line. The penalty functions are re-exported here for use in any training loop.
"""

from __future__ import annotations

import importlib

from fishr_tune.algorithms.base import Algorithm
from fishr_tune.algorithms.fishr import domain_gradient_variances, fishr_penalty
from fishr_tune.algorithms.penalties import (and_mask, coral_penalty, groupdro_weights,
                                             iga_penalty, irm_penalty, mmd_penalty, sand_mask,
                                             vrex_penalty)
from search_spaces import algorithm_names, canonical_algorithm


def _implementation(name: str) -> type[Algorithm]:
    module = importlib.import_module(f"{__name__}.{name.lower()}")
    cls = getattr(module, name, None)
    if not (isinstance(cls, type) and issubclass(cls, Algorithm)):
        raise ImportError(f"{module.__name__} defines no Algorithm subclass {name}")
    return cls


ALGORITHMS: dict[str, type[Algorithm]] = {name: _implementation(name)
                                          for name in algorithm_names()}
globals().update(ALGORITHMS)  # ``from fishr_tune.algorithms import ERM, Fishr`` keeps working

__all__ = ["ALGORITHMS", "Algorithm", "and_mask", "coral_penalty", "domain_gradient_variances",
           "fishr_penalty", "get_algorithm_class", "groupdro_weights", "iga_penalty",
           "irm_penalty", "mmd_penalty", "sand_mask", "vrex_penalty"]
__all__ += list(ALGORITHMS)


def get_algorithm_class(name: str) -> type[Algorithm]:
    """The class registered as ``name`` (case-insensitive, ``_``/``-``/spaces ignored).

    Raises:
        UserError: no such algorithm; the message lists the valid names.
    """
    return ALGORITHMS[canonical_algorithm(str(name))]
