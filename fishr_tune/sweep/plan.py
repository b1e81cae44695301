"""The sweep plan: which studies and trials a sweep runs (DomainBed's enumeration).

A *study* is one (dataset, algorithm, test envs, trial seed) group: the unit of model selection
and, with Bayesian search, one Optuna TPE study. A *job* is one trial of a study. A *chunk* is a
run of whole studies that one Ray Tune experiment runs (see README: Sweep engine design).

Everything here is lazy or proportional to the number of studies, never to all jobs at once.
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


@dataclass(frozen=True)
class Job:
    """One trial of a study, as the searchers hand it to the trainable (the Tune config).

    ``hparams_seed``: DomainBed's draw (random search); ``hparams``: a searcher's proposal or
    explicit values (then ``hparams_seed`` is None); ``seed``: the job seed, None for
    DomainBed's rule (a hash of the job).
    """

    study: Study
    trial_index: int
    hparams_seed: int | None = None
    hparams: dict | None = None
    seed: int | None = None

    def as_dict(self) -> dict:
        """The JSON-friendly Tune config entry (``{"job": job.as_dict()}``)."""
        return {"study": self.study.as_dict(), "trial_index": self.trial_index,
                "hparams_seed": self.hparams_seed, "hparams": self.hparams, "seed": self.seed}

    @classmethod
    def from_dict(cls, data: dict) -> "Job":
        """Inverse of :meth:`as_dict` (also reads explicit jobs of the Python API)."""
        s = data["study"]
        study = Study(s["dataset"], s["algorithm"], tuple(s["test_envs"]), s["trial_seed"])
        return cls(study, data["trial_index"], data.get("hparams_seed"), data.get("hparams"),
                   data.get("seed"))


@dataclass(frozen=True)
class Chunk:
    """Whole studies run by one Ray Tune experiment; ``jobs`` only for explicit jobs."""

    index: int
    studies: tuple[Study, ...]
    jobs: tuple[Job, ...] | None = None

    @property
    def name(self) -> str:
        """Folder and log name, ``chunk-00003``."""
        return f"chunk-{self.index:05d}"


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


class RandomJobs:
    """DomainBed's random search as a lazy sequence: hparams seeds 1..N per study (0..N-1 with
    ``include_defaults``). Job ``i`` is computed on access; memory is the study list only, and
    it pickles small (Tune pickles its searcher)."""

    def __init__(self, studies, num_samples: int, include_defaults: bool):
        self.studies, self.num_samples = tuple(studies), num_samples
        self.first_seed = 0 if include_defaults else 1

    def __len__(self) -> int:
        return len(self.studies) * self.num_samples

    def __getitem__(self, i: int) -> Job:
        if not 0 <= i < len(self):
            raise IndexError(i)
        study, index = divmod(i, self.num_samples)
        return Job(self.studies[study], index, hparams_seed=self.first_seed + index)


def random_jobs(studies, num_samples: int, include_defaults: bool) -> RandomJobs:
    """Every random-search job of ``studies``, in plan order (a lazy sequence)."""
    return RandomJobs(studies, num_samples, include_defaults)


def plan_chunks(studies: list[Study], trials_per_study: int, chunk_trials: int) -> list[Chunk]:
    """Pack consecutive whole studies into chunks of at most ``chunk_trials`` trials.

    A study is never split (its TPE and its model selection stay in one experiment); a study
    larger than ``chunk_trials`` is a chunk of its own.
    """
    per_chunk = max(1, chunk_trials // max(1, trials_per_study))
    return [Chunk(i, tuple(studies[start:start + per_chunk]))
            for i, start in enumerate(range(0, len(studies), per_chunk))]
