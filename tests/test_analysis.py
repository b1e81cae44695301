"""Model selection and tables on hand-made records where each method's pick is known
(DomainBed's own test style): ties, missing checkpoints, incomplete trials, pair jobs, several
datasets. Values are exact fractions so every expected number is computed by hand below."""

import math

import pandas as pd
import pytest

from analysis.selection import (METHODS, LeaveOneDomainOut, OracleSelection,
                                TrainingDomainValidation, objective_method, select)
from analysis.tables import mean_and_error, method_tables
from fishr_tune.sweep.trainable import objective_value, trial_objective

IID, LOO, ORACLE = TrainingDomainValidation(), LeaveOneDomainOut(), OracleSelection()


def rows(test_envs, hparams_seed, per_step, trial_seed=0, algorithm="ERM",
         dataset="ColoredDigits", status="ok", search="random", trial_id=None):
    """Records of one trial; per_step: {step: (in accs, out accs)} over the dataset's envs."""
    trial_id = trial_id or f"{dataset}-{algorithm}-{test_envs}-{hparams_seed}-{trial_seed}"
    out = []
    for step, (ins, outs) in per_step.items():
        row = {"trial_id": trial_id, "dataset": dataset, "algorithm": algorithm,
               "test_envs": list(test_envs), "hparams_seed": hparams_seed,
               "trial_seed": trial_seed, "step": step, "status": status, "search": search,
               "trial_index": hparams_seed if hparams_seed is not None else 0,
               "hparams": f'{{"lr": {hparams_seed}}}'}
        row.update({f"env{i}_in_acc": a for i, a in enumerate(ins)})
        row.update({f"env{i}_out_acc": a for i, a in enumerate(outs)})
        out.append(row)
    return out


def frame(*groups):
    return pd.DataFrame([r for g in groups for r in g])


def one(selected, **where):
    mask = pd.Series(True, index=selected.index)
    for k, v in where.items():
        mask &= selected[k] == v
    assert mask.sum() == 1, selected
    return selected[mask].iloc[0]


def test_iid_best_checkpoint_of_best_run_first_checkpoint_wins_a_tie():
    records = frame(
        # seed 1: validation (envs 0, 1 out) 0.85 at steps 10 and 20: the FIRST (10) is chosen.
        rows([2], 1, {0: ([.5, .5, .2], [.5, .5, .1]), 10: ([.9, .9, .3], [.8, .9, .2]),
                      20: ([.9, .9, .6], [.9, .8, .5])}),
        # seed 2: lower validation everywhere, better test: not chosen.
        rows([2], 2, {0: ([.5, .5, .9], [.6, .6, .9]), 20: ([.7, .7, .8], [.6, .6, .7])}))
    row = one(select(records, IID), test_env=2)
    assert (row["hparams_seed"], row["step"]) == (1, 10)
    assert row["val_acc"] == pytest.approx(0.85) and row["test_acc"] == pytest.approx(0.3)


def test_ties_between_runs_go_to_the_later_hparams_seed_like_domainbed():
    same = {0: ([.5, .5, .2], [.5, .5, .1]), 10: ([.9, .9, .3], [.7, .7, .2])}
    later = {0: ([.5, .5, .2], [.5, .5, .1]), 10: ([.9, .9, .4], [.7, .7, .2])}
    records = frame(rows([2], 3, same), rows([2], 7, later), rows([2], 5, same))
    row = one(select(records, IID), test_env=2)
    assert row["hparams_seed"] == 7 and row["test_acc"] == pytest.approx(0.4)
    # Oracle: same val at the last step for all three: the later seed, 7, again.
    assert one(select(records, ORACLE), test_env=2)["hparams_seed"] == 7


def test_oracle_uses_the_last_checkpoint_only():
    records = frame(
        rows([2], 1, {0: ([.5, .5, .2], [.5, .5, .9]), 10: ([.9, .9, .3], [.8, .9, .2])}),
        rows([2], 2, {0: ([.5, .5, .4], [.5, .5, .3]), 20: ([.7, .7, .8], [.6, .6, .7])}))
    row = one(select(records, ORACLE), test_env=2)
    assert (row["hparams_seed"], row["step"]) == (2, 20)
    assert row["val_acc"] == pytest.approx(0.7) and row["test_acc"] == pytest.approx(0.8)


def _loo_records(missing_pair_step=False):
    """Test env 0 of 3 envs; configuration 1 and 2, each with pairs [0, 1] and [0, 2]."""
    s = {0: ([.1, .1, .1], [.1, .1, .1]), 10: ([.6, .1, .1], [.1, .1, .1])}  # single [0]
    recs = [rows([0], 1, s)]
    # seed 1: val at step 0 = (0.5 + 0.7) / 2 = 0.6; at step 10 = (0.9 + 0.9) / 2 = 0.9.
    recs.append(rows([0, 1], 1, {0: ([0, .5, 0], [0, 0, 0]), 10: ([0, .9, 0], [0, 0, 0])}))
    pair = {0: ([0, 0, .7], [0, 0, 0]), 10: ([0, 0, .9], [0, 0, 0])}
    if missing_pair_step:
        del pair[10]
    recs.append(rows([0, 2], 1, pair))
    # seed 2: val 0.8 at step 10, single's test there 0.2.
    recs.append(rows([0], 2, {0: ([.3, .1, .1], [.1, .1, .1]), 10: ([.2, .1, .1], [0, 0, 0])}))
    recs.append(rows([0, 1], 2, {0: ([0, .1, 0], [0, 0, 0]), 10: ([0, .8, 0], [0, 0, 0])}))
    recs.append(rows([0, 2], 2, {0: ([0, 0, .1], [0, 0, 0]), 10: ([0, 0, .8], [0, 0, 0])}))
    return frame(*recs)


def test_leave_one_domain_out_uses_the_pair_jobs_per_step():
    row = one(select(_loo_records(), LOO), test_env=0)
    assert (row["hparams_seed"], row["step"]) == (1, 10)
    assert row["val_acc"] == pytest.approx(0.9) and row["test_acc"] == pytest.approx(0.6)


def test_leave_one_domain_out_skips_a_step_a_pair_job_lacks():
    # Seed 1 has no pair [0, 2] record at step 10: only its step 0 (val 0.6) counts, so seed 2
    # (val 0.8 at step 10) wins.
    row = one(select(_loo_records(missing_pair_step=True), LOO), test_env=0)
    assert (row["hparams_seed"], row["step"]) == (2, 10)
    assert row["val_acc"] == pytest.approx(0.8) and row["test_acc"] == pytest.approx(0.2)


def test_leave_one_domain_out_names_the_missing_pair_jobs():
    records = frame(rows([0], 1, {0: ([.5] * 3, [.5] * 3)}), rows([0, 1], 1, {0: ([.5] * 3,
                                                                                    [.5] * 3)}))
    row = one(select(records, LOO), test_env=0)
    assert math.isnan(row["test_acc"])
    assert row["note"] == ("missing pair jobs (run the sweep with --test-env-pairs)",
                           "needs [0, 2]")
    # Pair records enter the groups of both their envs (DomainBed's grouping).
    assert set(select(records, LOO)["test_env"]) == {0, 1}


def test_leave_one_domain_out_says_it_does_not_apply_to_a_bayesian_sweep():
    records = frame(rows([0], None, {0: ([.5] * 3, [.5] * 3)}, search="bayes", trial_id="b1"),
                    rows([0, 1], None, {0: ([.5] * 3, [.5] * 3)}, search="bayes", trial_id="b2"))
    note = one(select(records, LOO), test_env=0)["note"]
    assert note[0].startswith("not applicable to a Bayesian sweep")
    # IID still works: each proposal is its own run.
    assert one(select(records, IID), test_env=0)["trial_id"] == "b1"


def test_incomplete_trials_count_diverged_ones_do_not():
    records = frame(
        rows([2], 1, {0: ([.5, .5, .2], [.5, .5, .1])}),
        # Still running / killed (DomainBed: a job without done): its records count.
        rows([2], 2, {0: ([.5, .5, .7], [.6, .6, .1])}, status="running"),
        # Diverged: its configuration is not a candidate even with the best validation.
        rows([2], 3, {0: ([.5, .5, .9], [1, 1, .1])}, status="diverged"))
    row = one(select(records, IID), test_env=2)
    assert row["hparams_seed"] == 2 and row["n_runs"] == 2


def test_statistics_are_domainbeds_format_mean():
    mean, err = mean_and_error([0.1, 0.2, 0.3])
    assert f"{mean:.1f} +/- {err:.1f}" == "20.0 +/- 4.7"
    # 100 * population std / sqrt(n): std of (0.4, 0.6) is 0.1, / sqrt(2).
    assert mean_and_error([0.4, 0.6]) == pytest.approx((50.0, 10 / math.sqrt(2)))


def test_tables_over_two_datasets_and_trial_seeds_by_hand():
    # ColoredDigits (3 envs): IID test accs per (trial seed, env): seed 0: .3 .6 .9, seed 1:
    # .5 .6 (env 2 missing). RotatedDigits (6 envs): only env 0, seed 0: .8.
    def single(env, seed, test, dataset="ColoredDigits", n=3):
        ins = [.5] * n
        ins[env] = test
        return rows([env], 1, {0: (ins, [.5] * n)}, trial_seed=seed, dataset=dataset)

    records = frame(single(0, 0, .3), single(1, 0, .6), single(2, 0, .9), single(0, 1, .5),
                    single(1, 1, .6), single(0, 0, .8, "RotatedDigits", 6))
    tables = method_tables(select(records, IID), records, IID)
    cd, rd, avg = tables
    assert cd.col_labels == ["+90%", "+80%", "-90%", "Avg"]
    env0 = cd.cells[0][0]
    assert env0.values == [.3, .5] and env0.mean == pytest.approx(40.0)
    assert env0.se == pytest.approx(100 * 0.1 / math.sqrt(2))
    assert cd.cells[0][2].mean == pytest.approx(90.0) and cd.cells[0][2].se == 0
    assert cd.cells[0][3].mean == pytest.approx((40 + 60 + 90) / 3)  # Avg of env means
    assert rd.cells[0][1].mean is None and rd.cells[0][-1].mean is None  # X
    # Averages: per trial seed the mean over the envs it has: seed 0 .6, seed 1 .55.
    cell = avg.cells[0][0]
    assert cell.values == pytest.approx([0.6, 0.55]) and cell.mean == pytest.approx(57.5)
    assert avg.cells[0][1].mean == pytest.approx(80.0)
    assert avg.cells[0][2].mean == pytest.approx((57.5 + 80) / 2)
    assert avg.col_labels == ["ColoredDigits", "RotatedDigits", "Avg"]


def test_methods_come_in_domainbeds_order_with_one_interface():
    assert list(METHODS) == ["training", "loo", "oracle"]
    for method in METHODS.values():
        assert method.name and method.short and callable(method.run_acc)


def test_bayesian_objective_is_the_selection_methods_rule():
    recs = [{"env0_out_acc": .2, "env1_out_acc": .6, "env2_out_acc": .9, "step": 0},
            {"env0_out_acc": .4, "env1_out_acc": .8, "env2_out_acc": .1, "step": 10},
            {"env0_out_acc": .1, "env1_out_acc": .3, "env2_out_acc": .7, "step": 20}]
    assert objective_value(recs[0], [2], 3, "iid") == pytest.approx(0.4)
    assert objective_value(recs[0], [2], 3, "oracle") == pytest.approx(0.9)
    assert trial_objective(recs, [2], 3, "iid") == pytest.approx(0.6)  # best checkpoint
    assert trial_objective(recs, [2], 3, "oracle") == pytest.approx(0.7)  # last checkpoint
    assert trial_objective([], [2], 3, "iid") is None
    assert objective_method("iid") is METHODS["training"]
    # The tables pick the same checkpoint of the same trial.
    table = pd.DataFrame([dict(r, trial_id="t", n_test_envs=1, env2_in_acc=r["step"] / 100)
                          for r in recs])
    choice = IID.run_acc(table, 2, 3)
    assert choice.val_acc == pytest.approx(0.6) and choice.step == 10
