"""The public functions: the three views of the registry, overrides and a description."""

from __future__ import annotations

import json
import numbers
from typing import Any, Callable

import numpy as np

from fishr_tune.datasets.registry import get_spec, normalise_name
from fishr_tune.errors import UserError
from fishr_tune.seeding import seed_hash
from search_spaces.registry import ALGORITHMS, HParam, hparams_for

_CANONICAL = {normalise_name(name): name for name in ALGORITHMS}


def algorithm_names() -> list[str]:
    """DomainBed names of every algorithm with a registry block, in DomainBed's order."""
    return list(ALGORITHMS)


def canonical_algorithm(name: str) -> str:
    """DomainBed's spelling of an algorithm name (case, ``_`` and ``-`` ignored).

    Raises:
        UserError: unknown name; the message lists the valid ones.
    """
    found = _CANONICAL.get(normalise_name(name)) if isinstance(name, str) else None
    if found is None:
        raise UserError(f"unknown algorithm {name!r}: choose one of {', '.join(ALGORITHMS)}")
    return found


def definitions(algorithm: str, dataset: str) -> tuple[HParam, ...]:
    """The hparam definitions for an algorithm on a dataset, in DomainBed's order.

    Raises:
        UserError: unknown algorithm or dataset.
    """
    if not isinstance(dataset, str):
        raise UserError(f"dataset must be a name such as 'ColoredMNIST', got {dataset!r}")
    return hparams_for(canonical_algorithm(algorithm), get_spec(dataset).hparams_group)


def default_hparams(algorithm: str, dataset: str) -> dict:
    """DomainBed's default hparams (what ``hparams_seed`` 0 runs)."""
    return {h.name: h.default for h in definitions(algorithm, dataset)}


def _check_seed(label: str, seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise UserError(f"{label} must be an int >= 0, got {seed!r}")
    return int(seed)


def random_hparams(algorithm: str, dataset: str, hparams_seed: int, trial_seed: int) -> dict:
    """The hparams DomainBed's train script uses for these seeds, as plain Python values.

    ``hparams_seed`` 0 gives the defaults for every ``trial_seed``. Otherwise the inner seed is
    ``s = seed_hash(hparams_seed, trial_seed)`` and each hparam is one draw from its own
    ``RandomState(seed_hash(s, name))``, so a value depends on (s, name, distribution) only.

    Raises:
        UserError: unknown algorithm or dataset, or a seed that is not an int >= 0.
    """
    hparams_seed = _check_seed("hparams_seed", hparams_seed)
    trial_seed = _check_seed("trial_seed", trial_seed)
    defs = definitions(algorithm, dataset)
    if hparams_seed == 0:
        return {h.name: h.default for h in defs}
    inner = seed_hash(hparams_seed, trial_seed)
    # Constants need no RNG (their DomainBed draw, if any, feeds nothing else).
    return {h.name: h.dist.sample(np.random.RandomState(seed_hash(inner, h.name))
                                  if h.dist.searched else None) for h in defs}


def parse_hparams_json(text: str | None) -> dict:
    """Parse the ``--hparams`` JSON object (UserError with the parser's message otherwise)."""
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"--hparams is not valid JSON ({exc.msg} at char {exc.pos}): pass an "
                        "object such as '{\"lr\": 0.001}'") from None
    if not isinstance(value, dict):
        raise UserError("--hparams must be a JSON object such as '{\"lr\": 0.001}'")
    return value


def validate_overrides(algorithm: str, dataset: str, overrides: dict | None) -> dict:
    """Check user-fixed hparams (``--hparams`` JSON) and coerce them (an int given as 3.0 -> 3).

    Returns:
        A new dict with the coerced values, in the order given.

    Raises:
        UserError: not a dict, an unknown name (the message lists the valid ones), a wrong type
            or an impossible value (the message names the hparam and its valid range).
    """
    if overrides is None:
        return {}
    if not isinstance(overrides, dict):
        raise UserError(f"hparam overrides must be a JSON object such as {{\"lr\": 1e-4}}, "
                        f"got {overrides!r}")
    by_name = {h.name: h for h in definitions(algorithm, dataset)}
    checked = {}
    for name, value in overrides.items():
        if name not in by_name:
            raise UserError(f"unknown hparam {name!r} for {canonical_algorithm(algorithm)} on "
                            f"{get_spec(dataset).name}: valid names are {', '.join(by_name)}")
        checked[name] = by_name[name].valid.check(name, value)
    return checked


def resolve_hparams(algorithm: str, dataset: str, hparams_seed: int, trial_seed: int,
                    overrides: dict | None = None) -> dict:
    """``random_hparams`` with the validated overrides merged on top (DomainBed's train script).

    Raises:
        UserError: as ``random_hparams`` and ``validate_overrides``.
    """
    checked = validate_overrides(algorithm, dataset, overrides)
    return {**random_hparams(algorithm, dataset, hparams_seed, trial_seed), **checked}


def tune_space(algorithm: str, dataset: str, overrides: dict | None = None) -> dict:
    """A Ray Tune ``param_space``: a domain per searched hparam, plain constants for the rest.

    Domains: ``tune.loguniform(10^a, 10^b)`` for 10^U(a, b), ``tune.uniform`` for U(a, b),
    ``tune.randint(a, b)`` for int(U(a, b)) (Tune's upper end is exclusive, like the
    truncation), ``tune.choice`` for choices. The truncated log-uniforms int(2^U(a, b)) and
    int(10^U(a, b)) are a Ray ``Integer`` domain on ``[lo, hi + 1)`` with a log-uniform sampler
    that draws ``floor(base ** U(a, b))`` exactly (``search_spaces._tune``); OptunaSearch reads
    it as ``IntDistribution(lo, hi, log=True)``. Every Tune distribution is DomainBed's law
    exactly; Tune only uses its own random stream. Fixed hparams and overrides are constants.

    Raises:
        UserError: as ``validate_overrides``.
    """
    checked = validate_overrides(algorithm, dataset, overrides)
    return {h.name: checked[h.name] if h.name in checked else h.dist.tune_domain()
            for h in definitions(algorithm, dataset)}


class OptunaSpace:
    """Define-by-run search space for Ray's ``OptunaSearch(space=...)`` or a plain study.

    Calling it on an ``optuna.Trial`` suggests every searched hparam (same bounds and scales as
    the registry) and returns the constants (fixed hparams and overrides), which OptunaSearch
    merges into the trial's config. It is a class, not a closure, so that OptunaSearch can
    pickle it when Tune checkpoints the searcher.

    Where Optuna only approximates DomainBed's law:

    * truncated ints int(2^U(a, b)) and int(10^U(a, b)) become ``suggest_int(lo, hi, log=True)``
      over the same ints (e.g. batch size 8..511 for int(2^U(3, 9))). Optuna's random draw
      rounds a log-uniform on [lo - 0.5, hi + 0.5] where DomainBed truncates one on
      [lo, hi + 1), so weights differ slightly (most at the smallest values);
    * int(U(0, 5000)) becomes ``suggest_int(0, 4999)``, which is exact;
    * 10^U(a, b), U(a, b) and choices are exact.

    TPE then moves away from these priors by design; only the support and scale matter there.
    """

    def __init__(self, searched: tuple[HParam, ...], constants: dict):
        self.searched = searched
        self.constants = constants

    def __call__(self, trial) -> dict:
        """Suggest each searched hparam on ``trial``; return the constants."""
        for h in self.searched:
            h.dist.suggest(trial, h.name)
        return dict(self.constants)


def optuna_space(algorithm: str, dataset: str,
                 overrides: dict | None = None) -> Callable[[Any], dict]:
    """The define-by-run function (an ``OptunaSpace``) for an algorithm on a dataset.

    Raises:
        UserError: as ``validate_overrides``.
    """
    checked = validate_overrides(algorithm, dataset, overrides)
    searched, constants = [], {}
    for h in definitions(algorithm, dataset):
        if h.name in checked:
            constants[h.name] = checked[h.name]
        elif h.dist.searched:
            searched.append(h)
        else:
            constants[h.name] = h.dist.sample(None)
    return OptunaSpace(tuple(searched), constants)


def describe(algorithm: str, dataset: str, overrides: dict | None = None) -> list[tuple]:
    """Rows (name, default, distribution text) for a table; overrides show as ``fixed = v``.

    Raises:
        UserError: as ``validate_overrides``.
    """
    checked = validate_overrides(algorithm, dataset, overrides)
    return [(h.name, h.default,
             f"fixed = {checked[h.name]!r} (override)" if h.name in checked else h.dist.text())
            for h in definitions(algorithm, dataset)]
