"""Valid ranges of hparam values, used to check user overrides (``--hparams`` JSON).

A valid range is wider than the search distribution: a user may fix ``resnet_dropout`` to 0.3
although DomainBed only draws 0, 0.1 or 0.5. It only refuses values that cannot work (a negative
learning rate, an EMA factor of 1, a batch of 0 images) or have the wrong type.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any

from fishr_tune.errors import UserError


def _num(x: float) -> str:
    """Short text of a bound: ``0``, ``1``, ``1e-06`` (``:g`` drops the useless ``.0``)."""
    return f"{x:g}"


@dataclass(frozen=True)
class Valid:
    """The values an hparam accepts as an override.

    Attributes:
        type: ``float``, ``int``, ``bool`` or ``str``.
        low: lower bound or None (unbounded).
        high: upper bound or None (unbounded).
        low_open: True if ``low`` itself is refused.
        high_open: True if ``high`` itself is refused.
        choices: for ``str``: the accepted values; for ``bool``: the accepted values if not all.
    """

    type: str
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple[str | bool, ...] = ()

    def describe(self) -> str:
        """Human text of the range, e.g. ``a float in [0, 1)`` or ``an int >= 1``."""
        if self.type == "bool":
            if self.choices:
                return " or ".join(str(c).lower() for c in self.choices)
            return "true or false"
        if self.type == "str":
            return "one of " + ", ".join(repr(c) for c in self.choices)
        article = "an" if self.type == "int" else "a"
        if self.low is not None and self.high is not None:
            left = "(" if self.low_open else "["
            right = ")" if self.high_open else "]"
            return f"{article} {self.type} in {left}{_num(self.low)}, {_num(self.high)}{right}"
        if self.low is not None:
            return f"{article} {self.type} {'>' if self.low_open else '>='} {_num(self.low)}"
        if self.high is not None:
            return f"{article} {self.type} {'<' if self.high_open else '<='} {_num(self.high)}"
        return f"{article} {self.type}"

    def check(self, name: str, value: Any) -> Any:
        """Return ``value`` coerced to this type (3.0 -> 3 for ints), or raise UserError.

        Raises:
            UserError: wrong type or out of range; the one-line message names the hparam and its
                valid range.
        """
        coerced = self._coerce(value)
        if coerced is None or not self._in_range(coerced):
            raise UserError(f"hparam '{name}' must be {self.describe()}, got {value!r}")
        return coerced

    def _coerce(self, value: Any) -> Any:
        # bool is an int subclass in Python: refuse it for numbers and accept only it for bools,
        # so that a JSON ``true`` never silently becomes a batch size of 1.
        if self.type == "bool":
            return value if isinstance(value, bool) else None
        if self.type == "str":
            return value if isinstance(value, str) else None
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            return None  # strings such as "abc" or "0.1" are refused, not parsed
        number = float(value)
        if not math.isfinite(number):
            return None
        if self.type == "int":
            if isinstance(value, numbers.Integral):
                return int(value)
            return int(number) if number.is_integer() else None
        return number

    def _in_range(self, value: Any) -> bool:
        if self.type == "bool":
            return not self.choices or value in self.choices
        if self.type == "str":
            return value in self.choices
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            return False
        if self.high is not None and (value > self.high or (self.high_open and value == self.high)):
            return False
        return True


# The ranges the registry uses; named for what they mean rather than their numbers.
BOOL = Valid("bool")
POSITIVE = Valid("float", low=0.0, low_open=True)  # learning rates, Beta(alpha, alpha), ...
NON_NEGATIVE = Valid("float", low=0.0)  # penalty weights, weight decays
UNIT = Valid("float", low=0.0, high=1.0)  # dropout rates, probabilities, thresholds
EMA = Valid("float", low=0.0, high=1.0, high_open=True)  # 1 would freeze the average forever
STEPS = Valid("int", low=0)  # anneal iterations
AT_LEAST_ONE = Valid("int", low=1)  # batch sizes, widths, step counts
