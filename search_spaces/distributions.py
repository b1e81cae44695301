"""The distribution kinds of DomainBed's hparam registry, each with its three views.

Every kind knows how to:

* ``sample(r)``: draw one value from a numpy ``RandomState`` with EXACTLY the RandomState call
  and arithmetic DomainBed uses (``10**r.uniform(a, b)``, ``int(2**r.uniform(a, b))``,
  ``r.choice([...])``), so that the stream, and the value to the last bit, match DomainBed;
* ``tune_domain()``: a Ray Tune domain with the same distribution;
* ``suggest(trial, name)``: the Optuna define-by-run call with the same bounds and scale;
* ``bounds()``: the bounds, scale and type the three views must agree on;
* ``text()``: how the distribution is written in tables (``10^U(1, 4)``).

Ray and Optuna are imported only inside the view methods: training workers that only draw
hparams should not pay for importing Ray.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


def _num(x: float) -> str:
    return f"{x:g}"


@dataclass(frozen=True)
class Bounds:
    """What the seeded draw, the Tune domain and the Optuna domain must agree on.

    Attributes:
        kind: ``float``, ``int`` or ``categorical``.
        low: smallest value (float or int kinds).
        high: largest value, INCLUSIVE for ints (the int views all state it this way).
        log: True if the scale is logarithmic.
        choices: the values of a categorical.
    """

    kind: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: tuple = ()


class Distribution:
    """Base class: a random hparam distribution. ``searched`` is False for constants."""

    searched = True

    def sample(self, r) -> Any:
        """Draw one plain Python value from numpy RandomState ``r``, as DomainBed does."""
        raise NotImplementedError

    def tune_domain(self) -> Any:
        """Ray Tune domain with the same distribution (a constant for ``Fixed``)."""
        raise NotImplementedError

    def suggest(self, trial, name: str) -> Any:
        """Call the matching ``trial.suggest_*`` on an Optuna trial and return its value."""
        raise NotImplementedError

    def bounds(self) -> Bounds:
        """Bounds, scale and type of the searched values."""
        raise NotImplementedError

    def text(self) -> str:
        """Short notation for tables, e.g. ``int(2^U(3, 9))``."""
        raise NotImplementedError


@dataclass(frozen=True)
class Uniform(Distribution):
    """U(a, b): ``r.uniform(a, b)``."""

    a: float
    b: float

    def sample(self, r) -> float:
        return float(r.uniform(self.a, self.b))

    def tune_domain(self):
        from ray import tune

        return tune.uniform(self.a, self.b)

    def suggest(self, trial, name: str) -> float:
        return trial.suggest_float(name, self.a, self.b)

    def bounds(self) -> Bounds:
        return Bounds("float", self.a, self.b)

    def text(self) -> str:
        return f"U({_num(self.a)}, {_num(self.b)})"


@dataclass(frozen=True)
class LogUniform10(Distribution):
    """10^U(a, b): ``10**r.uniform(a, b)``, log-uniform on [10^a, 10^b]."""

    a: float
    b: float

    def sample(self, r) -> float:
        # Same expression as DomainBed (Python float power of the RandomState draw) so that the
        # result matches to the last bit.
        return float(10 ** r.uniform(self.a, self.b))

    def tune_domain(self):
        from ray import tune

        # Tune draws exp(U(ln lo, ln hi)): the same law as 10^U(a, b) (log-uniform is base-free).
        return tune.loguniform(10**self.a, 10**self.b)

    def suggest(self, trial, name: str) -> float:
        return trial.suggest_float(name, 10**self.a, 10**self.b, log=True)

    def bounds(self) -> Bounds:
        return Bounds("float", 10**self.a, 10**self.b, log=True)

    def text(self) -> str:
        return f"10^U({_num(self.a)}, {_num(self.b)})"


@dataclass(frozen=True)
class _FloorPow(Distribution):
    """int(base^U(a, b)): a log-uniform truncated to int (shared by Pow2 and IntOf(10^U))."""

    base: int
    a: float
    b: float

    def __post_init__(self):
        # The log-int views need an integer lower end >= 1: base^a must be a whole number.
        low = self.base ** self.a
        if low < 1 or not float(low).is_integer():
            raise ValueError(f"int({self.base}^U({self.a}, {self.b})) needs base^a integral >= 1")

    def sample(self, r) -> int:
        return int(self.base ** r.uniform(self.a, self.b))

    def low_high(self) -> tuple[int, int]:
        """Smallest and largest value: base^a and the last int below base^b (2^5.5 -> 45)."""
        return int(self.base ** self.a), math.ceil(self.base ** self.b) - 1

    def tune_domain(self):
        from search_spaces._tune import floor_pow_domain

        low, high = self.low_high()
        return floor_pow_domain(self.base, self.a, self.b, low, high)

    def suggest(self, trial, name: str) -> int:
        # Optuna's log-int rounds a log-uniform on [low - 0.5, high + 0.5] instead of truncating
        # one on [low, high + 1): same support and scale, slightly different weights (see
        # search_spaces.api.OptunaSpace).
        low, high = self.low_high()
        return trial.suggest_int(name, low, high, log=True)

    def bounds(self) -> Bounds:
        low, high = self.low_high()
        return Bounds("int", low, high, log=True)

    def text(self) -> str:
        return f"int({self.base}^U({_num(self.a)}, {_num(self.b)}))"


def Pow2(a: float, b: float) -> _FloorPow:  # noqa: N802 - reads like the other kinds
    """int(2^U(a, b)): DomainBed's batch sizes and widths, ``int(2**r.uniform(a, b))``."""
    return _FloorPow(2, a, b)


@dataclass(frozen=True)
class _FloorUniform(Distribution):
    """int(U(a, b)) with integer a < b: every int in [a, b) equally likely."""

    a: int
    b: int

    def sample(self, r) -> int:
        return int(r.uniform(self.a, self.b))

    def tune_domain(self):
        from ray import tune

        return tune.randint(self.a, self.b)  # upper bound exclusive, like the truncation

    def suggest(self, trial, name: str) -> int:
        return trial.suggest_int(name, self.a, self.b - 1)

    def bounds(self) -> Bounds:
        return Bounds("int", self.a, self.b - 1)

    def text(self) -> str:
        return f"int(U({_num(self.a)}, {_num(self.b)}))"


def IntOf(inner: Distribution) -> Distribution:  # noqa: N802 - reads like the other kinds
    """DomainBed's ``int(...)`` of a Uniform (integer ends) or of a LogUniform10.

    Raises:
        ValueError: any other inner distribution (no exact Tune/Optuna view is defined for it).
    """
    if isinstance(inner, Uniform) and float(inner.a).is_integer() and float(inner.b).is_integer():
        return _FloorUniform(int(inner.a), int(inner.b))
    if isinstance(inner, LogUniform10):
        return _FloorPow(10, inner.a, inner.b)
    raise ValueError(f"IntOf({inner!r}) is not supported")


@dataclass(frozen=True)
class Choice(Distribution):
    """C{values}: ``r.choice([...])``, each value equally likely."""

    values: tuple

    def sample(self, r) -> Any:
        value = r.choice(list(self.values))
        return value.item() if hasattr(value, "item") else value  # numpy scalar -> plain Python

    def tune_domain(self):
        from ray import tune

        return tune.choice(list(self.values))

    def suggest(self, trial, name: str) -> Any:
        return trial.suggest_categorical(name, list(self.values))

    def bounds(self) -> Bounds:
        return Bounds("categorical", choices=tuple(self.values))

    def text(self) -> str:
        return "C{" + ", ".join(repr(v) for v in self.values) + "}"


@dataclass(frozen=True)
class Fixed(Distribution):
    """A constant: the random value is the default (DomainBed's ``lambda r: True``)."""

    value: Any
    searched = False

    def sample(self, r) -> Any:
        return self.value  # no draw: DomainBed's own draw, if any, is on this hparam's own RNG

    def tune_domain(self) -> Any:
        return self.value

    def suggest(self, trial, name: str) -> Any:
        return self.value

    def bounds(self) -> Bounds:
        raise TypeError("a Fixed hparam is not searched")

    def text(self) -> str:
        return "fixed"
