"""DomainBed's hparam search spaces: one definition per hparam, three views.

* ``default_hparams`` / ``random_hparams`` / ``resolve_hparams``: the values DomainBed's
  registry and train script give for the same (algorithm, dataset, hparams_seed, trial_seed),
  plus validated user overrides;
* ``tune_space``: a Ray Tune ``param_space`` with the same distributions;
* ``optuna_space``: an Optuna define-by-run function with the same bounds and scales.

``python -m search_spaces --algorithm Fishr --dataset officehome`` prints a space as a table.
"""

from search_spaces.api import (OptunaSpace, algorithm_names, canonical_algorithm, default_hparams,
                               definitions, describe, optuna_space, parse_hparams_json,
                               random_hparams, resolve_hparams, tune_space, validate_overrides)

__all__ = [
    "OptunaSpace", "algorithm_names", "canonical_algorithm", "default_hparams", "definitions",
    "describe", "optuna_space", "parse_hparams_json", "random_hparams", "resolve_hparams",
    "tune_space",
    "validate_overrides",
]
