"""A Ray Tune domain for DomainBed's truncated log-uniform ints, ``int(base^U(a, b))``.

Why not ``tune.lograndint``: it draws ``floor(exp(U(ln lo, ln hi)))`` and needs an integer upper
end, so ``int(2^U(3, 5.5))`` (upper end 45.25) has no exact equivalent, and
``exp(ln 8) = 7.999...`` lets it return 7 on rare draws. This domain is a plain Ray ``Integer``
(bounds ``[low, high + 1)``, Tune's exclusive upper end) whose sampler subclasses Ray's
``LogUniform`` and draws ``floor(base ** U(a, b))`` exactly as DomainBed writes it. Because
domain and sampler types are Ray's own, ``OptunaSearch`` still converts it to
``IntDistribution(low, high, log=True)`` if someone hands a Tune space to it.
"""

from __future__ import annotations

import numpy as np
from ray.tune.search.sample import Integer, LogUniform


def _generator(random_state):
    """Whatever Ray passes as ``random_state`` (None, seed, RandomState, Generator or Ray's
    wrapper of them) as an object with ``uniform(low, high, size)``."""
    if random_state is None:
        return np.random
    if isinstance(random_state, (int, np.integer)):
        return np.random.default_rng(int(random_state))
    return random_state


class FloorPowSampler(LogUniform):
    """Samples ``floor(base ** U(a, b))``: DomainBed's ``int(base**r.uniform(a, b))``."""

    def __init__(self, base: int, a: float, b: float):
        super().__init__()
        self.base, self.a, self.b = base, a, b

    def sample(self, domain, config=None, size: int = 1, random_state=None):
        """Draw ``size`` values (a list of them, or one plain value when ``size`` is 1)."""
        exponents = _generator(random_state).uniform(self.a, self.b, size=size)
        items = np.floor(float(self.base) ** np.asarray(exponents)).astype(int)
        return items if len(items) > 1 else domain.cast(items[0])

    def __str__(self) -> str:
        return f"FloorPow({self.base}^U({self.a:g}, {self.b:g}))"


def floor_pow_domain(base: int, a: float, b: float, low: int, high: int) -> Integer:
    """Tune domain of ``int(base^U(a, b))`` whose values are ``low`` .. ``high`` (inclusive)."""
    domain = Integer(low, high + 1)
    domain.set_sampler(FloorPowSampler(base, a, b))
    return domain
