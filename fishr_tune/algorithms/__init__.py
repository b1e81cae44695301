"""Algorithms: an explicit registry of DomainBed-contract algorithms (one module each)."""

from __future__ import annotations

from fishr_tune.algorithms.base import Algorithm
from fishr_tune.algorithms.erm import ERM
from fishr_tune.algorithms.fishr import Fishr
from fishr_tune.datasets.registry import normalise_name
from fishr_tune.errors import UserError

__all__ = ["ALGORITHMS", "ERM", "Algorithm", "Fishr", "get_algorithm_class"]

ALGORITHMS: dict[str, type[Algorithm]] = {"ERM": ERM, "Fishr": Fishr}


def get_algorithm_class(name: str) -> type[Algorithm]:
    """The class registered as ``name`` (case-insensitive, ``_``/``-``/spaces ignored).

    Raises:
        UserError: no such algorithm; the message lists the valid names.
    """
    for registered, cls in ALGORITHMS.items():
        if normalise_name(registered) == normalise_name(str(name)):
            return cls
    raise UserError(f"unknown algorithm {name!r}: choose one of {', '.join(ALGORITHMS)}")
