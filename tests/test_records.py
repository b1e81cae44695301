"""The record schema and its atomic Parquet IO."""

import json
import os

import pyarrow.parquet as pq

from fishr_tune.records import (CORE_FIELDS, read_records, records_path, records_table,
                                write_records)


def _record(trial_id, step, n_envs, **extra):
    record = {"trial_id": trial_id, "dataset": "ColoredDigits", "algorithm": "Fishr",
              "test_envs": [2], "hparams_seed": 1, "trial_seed": 0, "seed": 7, "step": step,
              "epoch": step / 10, "step_time": 0.01, "loss": 0.5, "nll": 0.4, "penalty": 0.1,
              "hparams": {"lr": 0.001, "batch_size": 64}, "args": {"steps": 5},
              "search": "random", "trial_index": 0, "status": "ok", "error": None}
    for env in range(n_envs):
        record[f"env{env}_in_acc"] = 0.5 + env / 100
        record[f"env{env}_out_acc"] = 0.4 + env / 100
    record.update(extra)
    return record


def test_schema_has_core_fields_then_sorted_metrics():
    table = records_table([_record("a", 0, 3)])
    names = table.schema.names
    assert names[:len(CORE_FIELDS)] == list(CORE_FIELDS)
    assert names[len(CORE_FIELDS):] == sorted(names[len(CORE_FIELDS):])
    assert "env2_out_acc" in names and "penalty" in names
    assert json.loads(table.column("hparams")[0].as_py()) == {"batch_size": 64, "lr": 0.001}


def test_atomic_write_leaves_no_temporary_file_and_overwrites(tmp_path):
    path = records_path(str(tmp_path), "abc")
    write_records([_record("abc", 0, 3)], path)
    write_records([_record("abc", 0, 3), _record("abc", 10, 3)], path)
    assert os.listdir(tmp_path / "records") == ["abc.parquet"]
    assert pq.read_table(path).column("step").to_pylist() == [0, 10]


def test_read_unifies_files_with_different_env_counts(tmp_path):
    write_records([_record("three", 0, 3)], records_path(str(tmp_path), "three"))
    write_records([_record("six", 0, 6, extra_metric=1.5)], records_path(str(tmp_path), "six"))
    # A stray temporary file of an interrupted write must be ignored.
    (tmp_path / "records" / ".tmp-dead.parquet").write_bytes(b"partial")
    df = read_records(str(tmp_path)).sort_values("trial_id")
    assert list(df["trial_id"]) == ["six", "three"]
    assert df.set_index("trial_id").loc["six", "env5_in_acc"] == 0.55
    assert df.set_index("trial_id")["env5_in_acc"].isna().tolist() == [False, True]
    assert list(df.set_index("trial_id").loc["three", "test_envs"]) == [2]


def test_read_of_missing_folder_is_empty(tmp_path):
    assert len(read_records(str(tmp_path / "nothing"))) == 0
