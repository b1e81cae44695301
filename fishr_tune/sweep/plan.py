"""The sweep plan: which studies and trials a sweep runs (DomainBed's enumeration).

A *study* is one (dataset, algorithm, test envs, trial seed) group: the unit of model selection
and, with Bayesian search, one Optuna TPE study. A *job* is one trial of a study.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass

from fishr_tune.datasets import get_spec


@dataclass(frozen=True)
class Study:
    """One (dataset, algorithm, test envs, trial seed) group."""

    dataset: str
    algorithm: str
    test_envs: tuple[int, ...]
    trial_seed: int

    @property
    def key(self) -> str:
        """A readable unique name (Optuna study name, logs)."""
        envs = "-".join(str(e) for e in self.test_envs)
        return f"{self.dataset}.{self.algorithm}.env{envs}.seed{self.trial_seed}"

    def as_dict(self) -> dict:
        """JSON-friendly form (lists, not tuples) carried in trial configs."""
        d = asdict(self)
        d["test_envs"] = list(self.test_envs)
        return d


def test_env_sets(n_envs: int, pairs: bool) -> list[tuple[int, ...]]:
    """DomainBed's test-env sets: every single env, then (with ``pairs``) [i, j] for j > i.

    The pair jobs are what leave-one-domain-out selection needs; DomainBed makes them only for
    datasets with at least 3 environments (with 2, a pair leaves nothing to train on).
    """
    sets = []
    for i in range(n_envs):
        sets.append((i,))
        if pairs and n_envs >= 3:
            sets.extend((i, j) for j in range(i + 1, n_envs))
    return sets


def plan_studies(datasets, algorithms, trial_seeds: int, test_envs=None,
                 pairs: bool = False) -> list[Study]:
    """Every study of the sweep, in DomainBed's loop order (trial seed, dataset, algorithm, envs).

    ``test_envs`` None means every single env of each dataset (plus pairs when asked); a list of
    env indices restricts the single envs (and pairs among them).
    """
    studies = []
    for seed, dataset, algorithm in itertools.product(range(trial_seeds), datasets, algorithms):
        n_envs = get_spec(dataset).num_environments
        sets = test_env_sets(n_envs, pairs)
        if test_envs is not None:
            allowed = set(test_envs)
            sets = [s for s in sets if set(s) <= allowed]
        studies.extend(Study(dataset, algorithm, s, seed) for s in sets)
    return studies


def random_jobs(studies: list[Study], num_samples: int, include_defaults: bool) -> list[dict]:
    """DomainBed's random search: hparams seeds 1..N per study (0 = defaults first if asked)."""
    seeds = range(num_samples) if include_defaults else range(1, num_samples + 1)
    return [{"study": study.as_dict(), "hparams_seed": hs, "trial_index": index}
            for study in studies for index, hs in enumerate(seeds)]
