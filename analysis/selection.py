"""Model selection over sweep records: DomainBed's three methods behind one interface.

DomainBed's semantics (``domainbed/model_selection.py`` and ``lib/reporting.py`` at the Fishr
era), restated in ``shared/reference/domainbed-facts.md`` section 5:

* A record joins one *group* (trial_seed, dataset, algorithm, test_env) per env of its
  ``test_envs``, so a pair job [i, j] is in the groups of i and of j.
* Within a group, a *run* is one configuration: DomainBed's hparams seed (per sweep), or the
  trial itself for a Bayesian proposal, which has no hparams seed.
* A method turns a run into (val_acc, test_acc) at one checkpoint, or None; the run with the
  highest val_acc gives the group's ``sweep_acc`` (its test_acc). Ties go to the LAST run in
  hparams-seed order: DomainBed sorts runs by hparams seed, stable-sorts by val_acc and takes the
  first of the reversed list. Within a run, IID and LOO take the FIRST checkpoint of maximal
  val_acc (Python's ``max``), Oracle the last checkpoint.

A new method is one subclass of :class:`SelectionMethod` plus one entry in :data:`METHODS`.
The Bayesian search's objective (``fishr_tune.sweep.trainable``) uses these same objects.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from fishr_tune.records import env_acc_column

GROUP_KEYS = ["trial_seed", "dataset", "algorithm", "test_env"]
# A study: one search problem (the unit random and Bayesian sweeps are compared on).
STUDY_KEYS = ["dataset", "algorithm", "test_env", "trial_seed"]
# Record statuses that take part in selection. DomainBed reads every results.jsonl line, done
# or not, so running (incomplete) and errored trials count; a diverged trial stopped at a NaN
# loss and its configuration is not a candidate.
COUNTED_STATUSES = ("ok", "running", "error")
PAIRS_FLAG = "--test-env-pairs"


@dataclass(frozen=True)
class RunChoice:
    """What a method makes of one run: the chosen checkpoint's values."""

    val_acc: float
    test_acc: float
    step: int
    trial_id: str


def _envs_of(record) -> tuple[int, ...]:
    return tuple(int(e) for e in record)


class SelectionMethod:
    """Interface of a selection method.

    ``key``: the CLI name (``--selection``); ``name``: DomainBed's title; ``short``: the column
    label DomainBed's papers use. ``objective`` is the Bayesian search's name for the method when
    it can score one trial on its own (None: it cannot, e.g. leave-one-domain-out).
    """

    key: str = ""
    name: str = ""
    short: str = ""
    objective: str | None = None

    # -- one checkpoint, one trial (also what the Bayesian search maximises) -----------------
    def validation_envs(self, test_envs, n_envs: int) -> list[int]:
        """Envs whose out-split accuracy is this method's validation value."""
        raise NotImplementedError

    def checkpoint_value(self, record, test_envs, n_envs: int) -> float | None:
        """Validation value of one checkpoint record (a mapping); None when an accuracy is
        missing."""
        accs = [record.get(env_acc_column(e, "out")) for e in self.validation_envs(test_envs,
                                                                                    n_envs)]
        if not accs or any(a is None or (isinstance(a, float) and math.isnan(a)) for a in accs):
            return None
        return float(np.mean(accs))

    def pick(self, values: list[float]) -> int:
        """Index of the chosen checkpoint among a run's values, in step order."""
        raise NotImplementedError

    def trial_value(self, records: list, test_envs, n_envs: int) -> float | None:
        """One trial's score from its checkpoint records so far (None before any)."""
        values = [self.checkpoint_value(r, test_envs, n_envs) for r in records]
        values = [v for v in values if v is not None]
        return values[self.pick(values)] if values else None

    # -- one run in one group (the tables) --------------------------------------------------
    def run_acc(self, run: pd.DataFrame, test_env: int, n_envs: int) -> RunChoice | None:
        """(val_acc, test_acc, step) of one run's records in one group, or None."""
        single = run[run["n_test_envs"] == 1].sort_values("step", kind="stable")
        if single.empty:
            return None
        cols = [env_acc_column(e, "out") for e in self.validation_envs([test_env], n_envs)]
        values = single[cols].to_numpy(dtype=float).mean(axis=1)
        index = self.pick(list(values))
        row = single.iloc[index]
        return RunChoice(float(values[index]), float(row[env_acc_column(test_env, "in")]),
                         int(row["step"]), row["trial_id"])

    def missing(self, group: pd.DataFrame, test_env: int, n_envs: int) -> tuple[str, str]:
        """Why a group has no sweep_acc (shown instead of a bare X): (reason, detail)."""
        return "no single-test-env trial with checkpoints", ""


def _first_max(values: list[float]) -> int:
    """Python's ``max``: the first maximal element; NaN never wins (read as -inf)."""
    best, best_value = 0, -math.inf
    for i, v in enumerate(values):
        v = -math.inf if v is None or math.isnan(v) else v
        if v > best_value:
            best, best_value = i, v
    return best


class TrainingDomainValidation(SelectionMethod):
    """IID: mean out-split accuracy of the training envs; best checkpoint (early stopping)."""

    key, name, short, objective = "training", "training-domain validation set", "IID", "iid"

    def validation_envs(self, test_envs, n_envs):
        return [e for e in range(n_envs) if e not in set(test_envs)]

    def pick(self, values):
        return _first_max(values)


class LeaveOneDomainOut(SelectionMethod):
    """LOO: per step, the in-split accuracy of env j in the pair job [t, j], averaged over j.

    A step counts only with exactly one single-test-env record and every pair; the step of
    maximal validation is chosen. Needs ``--test-env-pairs`` and random search: the pair jobs of
    a configuration are found through its hparams seed, which Bayesian proposals don't have.
    """

    key, name, short, objective = "loo", "leave-one-domain-out cross-validation", "LOO", None

    def validation_envs(self, test_envs, n_envs):
        raise TypeError("leave-one-domain-out needs the pair jobs: it cannot score one trial")

    def checkpoint_value(self, record, test_envs, n_envs):
        raise TypeError("leave-one-domain-out needs the pair jobs: it cannot score one trial")

    def pick(self, values):
        return _first_max(values)

    def run_acc(self, run, test_env, n_envs):
        choices = []
        for step, at_step in run.groupby("step", sort=True):
            single = at_step[at_step["n_test_envs"] == 1]
            if len(single) != 1:
                continue
            val_accs = [None] * n_envs
            for _, pair in at_step[at_step["n_test_envs"] == 2].iterrows():
                other = (set(_envs_of(pair["test_envs"])) - {test_env}).pop()
                val_accs[other] = pair[env_acc_column(other, "in")]
            val_accs = val_accs[:test_env] + val_accs[test_env + 1:]
            if any(v is None or math.isnan(v) for v in val_accs):
                continue
            # DomainBed: np.sum of the n-1 accuracies divided by (n_envs - 1).
            choices.append(RunChoice(float(np.sum(val_accs) / (n_envs - 1)),
                                     float(single.iloc[0][env_acc_column(test_env, "in")]),
                                     int(step), single.iloc[0]["trial_id"]))
        if not choices:
            return None
        return choices[self.pick([c.val_acc for c in choices])]

    def missing(self, group, test_env, n_envs):
        if (group["search"] == "bayes").all():
            return ("not applicable to a Bayesian sweep: its proposals differ per test-env set, "
                    "so no configuration has pair jobs", "")
        if (group["n_test_envs"] == 1).all():
            return f"no pair jobs: leave-one-domain-out needs them (run the sweep with " \
                f"{PAIRS_FLAG})", ""
        have = {_envs_of(e) for e in group["test_envs"]}
        needed = [tuple(sorted((test_env, j))) for j in range(n_envs) if j != test_env]
        absent = [list(p) for p in needed if p not in have]
        if absent:
            pairs = ", ".join(str(p) for p in absent)
            return f"missing pair jobs (run the sweep with {PAIRS_FLAG})", f"needs {pairs}"
        return ("no step has the single-test-env record and every pair job of one "
                "configuration", "")


class OracleSelection(SelectionMethod):
    """Oracle: test-domain validation (the test env's out split) at the LAST checkpoint only
    (DomainBed#24: selection is over hparams alone, no early stopping)."""

    key, name, short, objective = "oracle", "test-domain validation set (oracle)", "Oracle", \
        "oracle"

    def validation_envs(self, test_envs, n_envs):
        return list(test_envs)

    def pick(self, values):
        return len(values) - 1


# DomainBed's order of methods (collect_results: IID, LOO, Oracle).
METHODS: dict[str, SelectionMethod] = {m.key: m for m in (
    TrainingDomainValidation(), LeaveOneDomainOut(), OracleSelection())}


def get_method(key: str) -> SelectionMethod:
    """The method of a CLI name (``training``, ``loo``, ``oracle``); UserError otherwise."""
    from fishr_tune.errors import UserError

    if key not in METHODS:
        raise UserError(f"unknown selection '{key}': choose one of {', '.join(METHODS)}")
    return METHODS[key]


def objective_method(objective: str) -> SelectionMethod:
    """The method behind a Bayesian objective name (``iid``, ``oracle``)."""
    for method in METHODS.values():
        if method.objective == objective:
            return method
    raise KeyError(objective)


def num_envs(records: pd.DataFrame, dataset: str) -> int:
    """Number of envs of a dataset: the registry's, else (an imported dataset we don't know)
    the env columns its records fill, as DomainBed reads them from the record keys."""
    from fishr_tune.datasets.registry import DATASETS

    if dataset in DATASETS:
        return DATASETS[dataset].num_environments
    rows = records[records["dataset"] == dataset]
    n = 0
    while env_acc_column(n, "out") in rows and rows[env_acc_column(n, "out")].notna().any():
        n += 1
    return n


def counted(records: pd.DataFrame) -> pd.DataFrame:
    """The checkpoint records selection uses (see COUNTED_STATUSES), one row per group they
    join (``test_env``), with ``n_test_envs`` and the run key ``run``."""
    rows = records[records["status"].isin(COUNTED_STATUSES) & records["step"].notna()].copy()
    rows["n_test_envs"] = rows["test_envs"].map(len)
    sweep = rows["sweep"] if "sweep" in rows else pd.Series("", index=rows.index)
    seeded = rows["hparams_seed"].notna()
    # A run: (sweep, hparams seed) where there is one, else the trial; the sort key
    # reproduces DomainBed's hparams-seed order (trial_index orders Bayesian proposals).
    rows["run_order"] = list(zip(sweep, ~seeded,
                                 rows["hparams_seed"].fillna(rows["trial_index"]).fillna(-1),
                                 rows["trial_id"].where(~seeded, "")))
    rows["test_env"] = rows["test_envs"].map(_envs_of)
    return rows.explode("test_env").astype({"test_env": int})


def best_run(choices: list[RunChoice]) -> RunChoice | None:
    """The group's chosen run among runs in hparams-seed order: highest val_acc, ties to the
    LATER run (DomainBed stable-sorts by val_acc and takes the first of the reversed list)."""
    best, best_val = None, -math.inf
    for choice in choices:
        val = -math.inf if math.isnan(choice.val_acc) else choice.val_acc
        if best is None or val >= best_val:
            best, best_val = choice, val
    return best


def select(records: pd.DataFrame, method: SelectionMethod) -> pd.DataFrame:
    """One row per group: sweep_acc (= test_acc), val_acc, step, trial_id, hparams of the
    chosen run, n_runs; groups the method cannot select from have NaN and a ``note``."""
    columns = [*GROUP_KEYS, "trial_id", "hparams_seed", "hparams", "step", "val_acc",
               "test_acc", "n_runs", "note"]
    rows = []
    if len(records) == 0:
        return pd.DataFrame(rows, columns=columns)
    table = counted(records)
    envs_by_dataset = {d: num_envs(records, d) for d in table["dataset"].unique()}
    for key, group in table.groupby(GROUP_KEYS, sort=True):
        n_envs = envs_by_dataset[key[1]]
        runs = sorted(group.groupby("run_order", sort=False), key=lambda kv: kv[0])
        choices = [c for c in (method.run_acc(run, key[3], n_envs) for _, run in runs)
                   if c is not None]
        best = best_run(choices)
        row = dict(zip(GROUP_KEYS, key), n_runs=len(choices))
        if best is None:
            row.update(trial_id=None, hparams_seed=None, hparams=None, step=None,
                       val_acc=math.nan, test_acc=math.nan,
                       note=method.missing(group, key[3], n_envs))
        else:
            chosen = group[group["trial_id"] == best.trial_id].iloc[0]
            row.update(trial_id=best.trial_id, hparams_seed=chosen["hparams_seed"],
                       hparams=chosen["hparams"], step=best.step, val_acc=best.val_acc,
                       test_acc=best.test_acc, note=None)
        rows.append(row)
    return pd.DataFrame(rows, columns=columns)


def trial_choices(records: pd.DataFrame, method: SelectionMethod | None = None) -> pd.DataFrame:
    """One row per single-test-env trial: its study, trial_index, hparams and the method's
    choice for it alone (``choice``, ``val_acc``, ``test_acc``, ``step``); default method:
    training-domain validation."""
    method = method or METHODS["training"]
    table = counted(records)
    table = table[table["n_test_envs"] == 1]
    envs = {d: num_envs(records, d) for d in table["dataset"].unique()}
    rows = []
    for key, trial in table.groupby([*STUDY_KEYS, "trial_id"], sort=False):
        choice = method.run_acc(trial, key[2], envs[key[0]])
        if choice is not None:
            rows.append(dict(zip(STUDY_KEYS, key), trial_id=key[4],
                             trial_index=int(trial["trial_index"].iloc[0]),
                             hparams=trial["hparams"].iloc[0], choice=choice,
                             val_acc=choice.val_acc, test_acc=choice.test_acc,
                             step=choice.step))
    return pd.DataFrame(rows, columns=[*STUDY_KEYS, "trial_id", "trial_index", "hparams",
                                       "choice", "val_acc", "test_acc", "step"])
