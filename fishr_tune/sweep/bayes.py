"""Bayesian search: one seeded Optuna TPE study per sweep study, behind ONE Ray Tune searcher.

Ray Tune runs one searcher per experiment; a sweep has many studies (dataset x algorithm x test
envs x trial seed) that must not share a TPE model. :class:`StudyMultiplexer` owns one
``OptunaSearch`` per study, hands out proposals round-robin (so every study keeps learning from
its own finished trials while the cluster stays busy) and routes results back to the right study.
The studies live in Optuna's own storage (sqlite under the sweep folder), so optuna-dashboard can
open them and a resumed sweep's TPE continues from its history.
"""

from __future__ import annotations

import pickle

import optuna
from ray.tune.search import Searcher
from ray.tune.search.optuna import OptunaSearch

from fishr_tune.seeding import seed_hash
from fishr_tune.sweep.plan import Study

OBJECTIVE = "objective"


class StudySpace:
    """Picklable define-by-run space of one study (OptunaSearch pickles its space on save)."""

    def __init__(self, algorithm: str, dataset: str, overrides: dict | None):
        self.algorithm, self.dataset, self.overrides = algorithm, dataset, overrides or {}

    def __call__(self, trial):
        from search_spaces import optuna_space

        return optuna_space(self.algorithm, self.dataset, self.overrides)(trial)


def tpe_sampler(seed: int, n_startup_trials: int) -> optuna.samplers.TPESampler:
    """Seeded multivariate TPE configured for DomainBed-sized budgets (tens of trials per study).

    * ``n_startup_trials``: few random proposals (see :func:`default_startup_trials`), so that
      most of a 20-trial budget is model-guided (Optuna's default 10 leaves half of it random).
    * ``multivariate``: one joint density over all hparams: lr and batch size interact.
    * ``consider_endpoints``: a Parzen kernel at the edge of a range keeps its full width, so
      an optimum at a bound (lambda at 10^4, anneal at 0) is not under-sampled.
    * ``n_ei_candidates=64``: more candidates per proposal (cheap next to a trial) sharpen the
      expected-improvement argmax once the "good" density has only a few points.
    * ``constant_liar``: parallel proposals of one study don't collide.
    """
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=n_startup_trials,
                                      multivariate=True, consider_endpoints=True,
                                      n_ei_candidates=64, constant_liar=True)


def default_startup_trials(num_samples: int) -> int:
    """Random start-up proposals before TPE: Optuna's 10 would spend a small budget at random.

    A quarter of the budget, at least 2 and at most 10 (5 of a 20-trial budget).
    """
    return max(2, min(10, num_samples // 4))


class StudyMultiplexer(Searcher):
    """One OptunaSearch per study; each study gets ``num_samples`` proposals.

    Each suggested config is ``{"job": {"study", "hparams_seed": None, "trial_index",
    "hparams", "seed"}}`` where ``hparams`` holds the TPE proposal merged with the fixed values.
    """

    def __init__(self, studies: list[Study], num_samples: int, overrides: dict | None,
                 storage_url: str, seed: int, n_startup_trials: int):
        super().__init__(metric=OBJECTIVE, mode="max")
        self.studies = {s.key: s for s in studies}
        self.num_samples = num_samples
        self.searchers = {}
        for study in studies:
            storage = optuna.storages.RDBStorage(storage_url)
            self.searchers[study.key] = OptunaSearch(
                space=StudySpace(study.algorithm, study.dataset, overrides), metric=OBJECTIVE,
                mode="max", storage=storage, study_name=study.key,
                sampler=tpe_sampler(seed_hash(seed, study.key), n_startup_trials))
        self.proposed = {key: 0 for key in self.studies}
        self.trial_study: dict[str, str] = {}
        self._cursor = 0

    def set_search_properties(self, metric, mode, config, **spec) -> bool:
        """The spaces are ours; Tune's metric/mode must match the objective we optimise."""
        return (metric in (None, OBJECTIVE)) and (mode in (None, "max"))

    def suggest(self, trial_id: str):
        """Next proposal, round-robin over studies with budget left; FINISHED when all spent."""
        keys = list(self.studies)
        for offset in range(len(keys)):
            key = keys[(self._cursor + offset) % len(keys)]
            if self.proposed[key] >= self.num_samples:
                continue
            self._cursor = (self._cursor + offset + 1) % len(keys)
            hparams = self.searchers[key].suggest(trial_id)
            index = self.proposed[key]
            self.proposed[key] += 1
            self.trial_study[trial_id] = key
            # Each proposal gets its own job seed (model init, minibatches), as DomainBed's
            # hparams seeds do; a pure function of the study and proposal index.
            return {"job": {"study": self.studies[key].as_dict(), "hparams_seed": None,
                            "trial_index": index, "hparams": hparams,
                            "seed": seed_hash(key, index)}}
        return Searcher.FINISHED

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        """Forward intermediate objectives (Optuna stores them per step)."""
        key = self.trial_study.get(trial_id)
        if key is not None and result.get(OBJECTIVE) is not None:
            self.searchers[key].on_trial_result(trial_id, result)

    def on_trial_complete(self, trial_id: str, result=None, error: bool = False) -> None:
        """Tell the study its trial's final objective (or that it failed)."""
        key = self.trial_study.get(trial_id)
        if key is not None:
            if result is not None and result.get(OBJECTIVE) is None:
                result, error = None, True  # diverged: a failed proposal, not a score
            self.searchers[key].on_trial_complete(trial_id, result=result, error=error)

    def save(self, checkpoint_path: str):
        """Pickle the whole state (sub-searchers include their Optuna trials in flight)."""
        with open(checkpoint_path, "wb") as f:
            pickle.dump(self.__dict__, f)

    def restore(self, checkpoint_path: str):
        """Inverse of :meth:`save`."""
        with open(checkpoint_path, "rb") as f:
            self.__dict__.update(pickle.load(f))
