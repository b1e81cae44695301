"""Bayesian search: one seeded Optuna TPE study per sweep study, behind ONE Ray Tune searcher.

Ray Tune runs one searcher per experiment; a chunk has many studies (dataset x algorithm x test
envs x trial seed) that must not share a TPE model. :class:`StudyMultiplexer` asks each study's
Optuna study for proposals (ask/tell), round-robin, so every study keeps learning from its own
finished trials while the cluster stays busy (the constant liar keeps parallel proposals apart),
and tells each result back to its study.

The studies live in Optuna's storage: a journal file ``<sweep>/optuna.journal`` by default
(append-only with a file lock, safe for several processes, optuna-dashboard and NFS), an RDB URL
with ``--optuna-storage``, or, for an object-store ``--output``, one append-only journal per
chunk written as objects. Resume needs no searcher snapshot: a study's asked trials are its
history; a proposal left RUNNING by a killed driver is told from its records when its trial had
finished, and otherwise dispatched again (same hparams, index and seed) to continue from its
training state.
"""

from __future__ import annotations

import json
import os
import uuid
import warnings

import optuna
from ray.tune.search import Searcher

from fishr_tune.records import join, records_path, resolve_filesystem
from fishr_tune.seeding import seed_hash
from fishr_tune.sweep.plan import Job, Study
from fishr_tune.sweep.trainable import (FINAL_STATUSES, OBJECTIVE, job_trial_id,
                                        read_file_records, trial_objective)

JOURNAL_FILE = "optuna.journal"
JOURNAL_OBJECTS_DIR = "optuna"
TrialState = optuna.trial.TrialState


class ObjectJournal(optuna.storages.journal.BaseJournalBackend):
    """An Optuna journal on any pyarrow filesystem (S3, GCS, ...): one object per append.

    Object stores have no append and no lock, so each chunk (one writer) has its own folder;
    objects are named by their first log number, which orders them.
    """

    def __init__(self, folder: str):
        self.fs, self.folder = resolve_filesystem(folder)
        self.fs.create_dir(self.folder, recursive=True)
        self._next = sum(len(batch) for batch in self._batches())

    def _batches(self):
        from pyarrow.fs import FileSelector

        infos = self.fs.get_file_info(FileSelector(self.folder, allow_not_found=True))
        for info in sorted(i.path for i in infos if i.path.endswith(".json")):
            with self.fs.open_input_stream(info) as f:
                yield json.loads(f.read())

    def read_logs(self, log_number_from: int):
        """Every log from ``log_number_from`` on."""
        logs = [log for batch in self._batches() for log in batch]
        return logs[log_number_from:]

    def append_logs(self, logs: list) -> None:
        """One object per call, written under a temporary name then moved."""
        name = f"{self.folder}/{self._next:012d}.json"
        tmp = f"{self.folder}/.tmp-{uuid.uuid4().hex}"
        with self.fs.open_output_stream(tmp) as f:
            f.write(json.dumps(logs).encode())
        self.fs.move(tmp, name)
        self._next += len(logs)


def open_storage(sweep_dir: str, chunk_name: str, url: str | None):
    """The Optuna storage of a sweep (see the module docstring for the three kinds)."""
    if url:
        return optuna.storages.RDBStorage(url)
    journal = optuna.storages.journal
    if "://" in sweep_dir:
        return journal.JournalStorage(ObjectJournal(join(sweep_dir, JOURNAL_OBJECTS_DIR,
                                                         chunk_name)))
    path = join(sweep_dir, JOURNAL_FILE)
    os.makedirs(sweep_dir, exist_ok=True)
    # The open() lock works on NFS, where the default symlink lock may not.
    return journal.JournalStorage(journal.JournalFileBackend(
        path, lock_obj=journal.JournalFileOpenLock(path)))


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

    Optuna 4.9 deprecated ``consider_endpoints`` (removal planned for 6.0; pyproject pins 5.0):
    its FutureWarning is silenced here, since dropping the flag would change every proposal.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*consider_endpoints.*",
                                category=FutureWarning)
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=n_startup_trials,
                                          multivariate=True, consider_endpoints=True,
                                          n_ei_candidates=64, constant_liar=True)


def default_startup_trials(num_samples: int) -> int:
    """Random start-up proposals before TPE: Optuna's 10 would spend a small budget at random.

    A quarter of the budget, at least 2 and at most 10 (5 of a 20-trial budget).
    """
    return max(2, min(10, num_samples // 4))


class StudyMultiplexer(Searcher):
    """One Optuna study per sweep study; each study gets ``num_samples`` proposals.

    Each suggested config is ``{"job": Job.as_dict()}`` with ``hparams`` the TPE proposal
    merged with the fixed values, ``trial_index`` its order in the study and its own job seed.
    """

    def __init__(self, studies: list[Study], num_samples: int, settings: dict, storage,
                 seed: int, n_startup_trials: int):
        super().__init__(metric=OBJECTIVE, mode="max")
        from search_spaces import optuna_space

        self.num_samples, self.settings = num_samples, settings
        self.studies, self.spaces, self.optuna, self.asked = {}, {}, {}, {}
        self.resend: list[tuple[str, int, Job]] = []  # (study key, trial number, job)
        self.live: dict[str, tuple[str, int]] = {}  # Tune trial id -> (study key, number)
        for study in studies:
            key = study.key
            self.studies[key] = study
            self.spaces[key] = optuna_space(study.algorithm, study.dataset, settings["hparams"])
            self.optuna[key] = optuna.create_study(
                study_name=key, storage=storage, direction="maximize", load_if_exists=True,
                sampler=tpe_sampler(seed_hash(seed, key), n_startup_trials))
            self._adopt_history(key)
        self._cursor = 0

    def _adopt_history(self, key: str) -> None:
        """Count the study's asked trials; settle or re-send those a killed driver left."""
        trials = self.optuna[key].get_trials(deepcopy=False)
        self.asked[key] = 0
        for t in trials:
            if "trial_index" not in t.user_attrs:
                # Asked but killed before it was handed out: never a job, not in the budget.
                if t.state == TrialState.RUNNING:
                    self.optuna[key].tell(t.number, state=TrialState.FAIL)
                continue
            self.asked[key] += 1
            if t.state != TrialState.RUNNING:
                continue
            job = Job(self.studies[key], t.user_attrs["trial_index"], None,
                      dict(t.user_attrs["hparams"]), t.user_attrs["seed"])
            path = records_path(self.settings["sweep_dir"], job_trial_id(job, self.settings))
            records = read_file_records(path)
            if records and records[0]["status"] in FINAL_STATUSES:
                self._tell(key, t.number, self._records_objective(job, records))
            else:
                self.resend.append((key, t.number, job))

    def _records_objective(self, job: Job, records: list[dict]) -> float | None:
        from fishr_tune.datasets import get_spec

        if records[0]["status"] != "ok":
            return None
        n_envs = get_spec(job.study.dataset).num_environments
        return trial_objective(records, list(job.study.test_envs), n_envs,
                               self.settings["objective"])

    def set_search_properties(self, metric, mode, config, **spec) -> bool:
        """The spaces are ours; Tune's metric/mode must match the objective we optimise."""
        return (metric in (None, OBJECTIVE)) and (mode in (None, "max"))

    def suggest(self, trial_id: str):
        """Re-sent proposals first, then round-robin over studies with budget left."""
        if self.resend:
            key, number, job = self.resend.pop(0)
            self.live[trial_id] = (key, number)
            return {"job": job.as_dict()}
        keys = list(self.studies)
        for offset in range(len(keys)):
            key = keys[(self._cursor + offset) % len(keys)]
            if self.asked[key] >= self.num_samples:
                continue
            self._cursor = (self._cursor + offset + 1) % len(keys)
            trial = self.optuna[key].ask()
            constants = self.spaces[key](trial)
            index = self.asked[key]
            self.asked[key] += 1
            # Each proposal gets its own job seed (model init, minibatches), as DomainBed's
            # hparams seeds do; a pure function of the study and proposal index.
            job = Job(self.studies[key], index, None, {**trial.params, **constants},
                      seed_hash(key, index))
            # trial_index last: a proposal that has it has the others (what a resume reads).
            for name, value in (("hparams", job.hparams), ("seed", job.seed),
                                ("trial_index", index)):
                trial.set_user_attr(name, value)
            self.live[trial_id] = (key, trial.number)
            return {"job": job.as_dict()}
        return Searcher.FINISHED

    @property
    def exhausted(self) -> bool:
        """Whether every study asked its whole budget and nothing is left to re-send."""
        return not self.resend and all(n >= self.num_samples for n in self.asked.values())

    def on_trial_complete(self, trial_id: str, result=None, error: bool = False) -> None:
        """Tell the study its trial's final objective (or that it failed or diverged)."""
        if trial_id not in self.live:
            return
        key, number = self.live.pop(trial_id)
        value = None if error or result is None else result.get(OBJECTIVE)
        self._tell(key, number, value)

    def _tell(self, key: str, number: int, value: float | None) -> None:
        if value is None:  # diverged or failed: a failed proposal, not a score
            self.optuna[key].tell(number, state=TrialState.FAIL)
        else:
            self.optuna[key].tell(number, value)

    def save(self, checkpoint_path: str):
        """Nothing: the Optuna storage and the records are the state (see the module doc)."""

    def restore(self, checkpoint_path: str):
        """Nothing to restore (see :meth:`save`)."""
