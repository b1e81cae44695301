"""Model selection over sweep records (DomainBed's rules), one interface per method.

A *group* is (trial_seed, dataset, algorithm, test_env) over single-test-env records; within a
group each trial (one hparams configuration) is a *run*. A method picks, per run, a checkpoint and
its (val_acc, test_acc); the run with the best val_acc gives the group's test accuracy.
"""

from __future__ import annotations

import pandas as pd

from fishr_tune.datasets.registry import get_spec
from fishr_tune.records import env_acc_column

GROUP_KEYS = ["trial_seed", "dataset", "algorithm", "test_env"]


def _single_test_env(records: pd.DataFrame) -> pd.DataFrame:
    """Records of finished single-test-env trials, with a scalar ``test_env`` column."""
    ok = records[(records["status"] == "ok") & records["step"].notna()]
    single = ok[ok["test_envs"].map(len) == 1].copy()
    single["test_env"] = single["test_envs"].map(lambda envs: int(envs[0]))
    return single


class TrainingDomainValidation:
    """"IID": validate on the training envs' out splits; best checkpoint (early stopping)."""

    name = "training-domain validation"
    short = "IID"

    def run_acc(self, run: pd.DataFrame, test_env: int, n_envs: int):
        """(val_acc, test_acc, step) of one run."""
        envs = [e for e in range(n_envs) if e != test_env]
        val = run[[env_acc_column(e, "out") for e in envs]].mean(axis=1)
        best = val.idxmax()
        return float(val[best]), float(run.loc[best, env_acc_column(test_env, "in")]), \
            int(run.loc[best, "step"])


class OracleSelection:
    """"Oracle": test-domain validation at the LAST checkpoint only (DomainBed#24)."""

    name = "test-domain validation (oracle)"
    short = "Oracle"

    def run_acc(self, run: pd.DataFrame, test_env: int, n_envs: int):
        """(val_acc, test_acc, step) of one run at its last checkpoint."""
        last = run.loc[run["step"].idxmax()]
        val, test = last[env_acc_column(test_env, "out")], last[env_acc_column(test_env, "in")]
        return float(val), float(test), int(last["step"])


METHODS = {"IID": TrainingDomainValidation(), "Oracle": OracleSelection()}


def select(records: pd.DataFrame, method) -> pd.DataFrame:
    """One row per group: the chosen run (trial_id, hparams), its step, val_acc, test_acc."""
    rows = []
    single = _single_test_env(records)
    for key, group in single.groupby(GROUP_KEYS, sort=True):
        best = None
        for trial_id, run in group.groupby("trial_id"):
            val, test, step = method.run_acc(run.reset_index(drop=True), key[3],
                                             get_spec(key[1]).num_environments)
            if best is None or val > best["val_acc"]:
                best = {"trial_id": trial_id, "hparams": run["hparams"].iloc[0],
                        "step": step, "val_acc": val, "test_acc": test}
        rows.append(dict(zip(GROUP_KEYS, key), **best))
    return pd.DataFrame(rows, columns=[*GROUP_KEYS, "trial_id", "hparams", "step", "val_acc",
                                       "test_acc"])
