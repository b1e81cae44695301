"""Model selection and tables on hand-made records (DomainBed's rules, exact values)."""

import pandas as pd
import pytest

from analysis.selection import OracleSelection, TrainingDomainValidation, select
from analysis.tables import dataset_table, format_cell


def test_table_cell_matches_domainbed():
    assert format_cell([0.1, 0.2, 0.3]) == "20.0 +/- 4.7"
    assert format_cell([]) == "X"


def _rows(trial_id, test_env, trial_seed, per_step, algorithm="ERM"):
    """per_step: list of (step, [in accs of 3 envs], [out accs of 3 envs])."""
    rows = []
    for step, ins, outs in per_step:
        row = {"trial_id": trial_id, "dataset": "ColoredDigits", "algorithm": algorithm,
               "test_envs": [test_env], "trial_seed": trial_seed, "step": step,
               "status": "ok", "hparams": "{}"}
        row.update({f"env{i}_in_acc": a for i, a in enumerate(ins)})
        row.update({f"env{i}_out_acc": a for i, a in enumerate(outs)})
        rows.append(row)
    return rows


def _records():
    rows = []
    # Run a: best validation (envs 0, 1 out) at step 10, where the test env 2 in-acc is 0.30;
    # its last checkpoint has test out 0.5 / in 0.6.
    rows += _rows("a", 2, 0, [(0, [.5, .5, .2], [.5, .5, .1]), (10, [.9, .9, .3], [.8, .9, .2]),
                              (20, [.9, .9, .6], [.7, .7, .5])])
    # Run b: lower validation everywhere, but a better oracle value at its last step.
    rows += _rows("b", 2, 0, [(0, [.5, .5, .4], [.5, .5, .3]), (20, [.7, .7, .8], [.6, .6, .7])])
    # A diverged run is ignored even though its validation looks best.
    diverged = _rows("c", 2, 0, [(0, [1, 1, 1], [1, 1, 1])])
    diverged[0]["status"] = "diverged"
    rows += diverged
    # A pair job never enters single-test-env selection.
    rows += [dict(r, test_envs=[1, 2], trial_id="p") for r in _rows("p", 2, 0, [(0, [1] * 3,
                                                                                   [1] * 3)])]
    return pd.DataFrame(rows)


def test_training_domain_validation_picks_best_checkpoint_of_best_run():
    chosen = select(_records(), TrainingDomainValidation())
    assert len(chosen) == 1
    row = chosen.iloc[0]
    assert row["trial_id"] == "a" and row["step"] == 10
    assert row["val_acc"] == pytest.approx(0.85) and row["test_acc"] == pytest.approx(0.3)


def test_oracle_uses_last_checkpoint_only():
    row = select(_records(), OracleSelection()).iloc[0]
    assert row["trial_id"] == "b" and row["step"] == 20
    assert row["val_acc"] == pytest.approx(0.7) and row["test_acc"] == pytest.approx(0.8)


def test_dataset_table_has_env_columns_and_avg():
    records = pd.concat([_records(), _records().assign(trial_seed=1, trial_id=lambda d:
                                                       d["trial_id"] + "1")])
    table = dataset_table(select(records, OracleSelection()), "colored_digits")
    assert list(table.columns) == ["+90%", "+80%", "-90%", "Avg"]
    assert table.loc["ERM", "-90%"] == "80.0 +/- 0.0"
    assert table.loc["ERM", "+90%"] == "X" and table.loc["ERM", "Avg"] == "X"
