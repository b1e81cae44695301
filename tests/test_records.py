"""The record schema and its atomic Parquet IO."""

import json
import os
import subprocess
import sys
import textwrap

import pyarrow.parquet as pq

from fishr_tune.records import (CORE_FIELDS, read_file_table, read_records, records_path,
                                records_table, write_records)


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


# Rewrites one trial's record file, as a live trial does at every checkpoint, until told to stop.
REWRITER = textwrap.dedent("""
    import os, sys
    from fishr_tune.records import write_records
    sys.path.insert(0, os.path.dirname(sys.argv[3]))
    from test_records import _record
    path, stop, n = sys.argv[1], sys.argv[2], 0
    while not os.path.exists(stop):
        n += 1
        write_records([_record("live", step, 3) for step in range(n % 40 + 1)], path)
        if n == 1:
            print("writing", flush=True)
    print(n)
""")


def test_file_read_is_whole_while_a_writer_replaces_the_file(tmp_path):
    """Every read of a file being replaced sees one whole version (plain ``pq.read_table`` of
    the path mixed two versions in most reads here)."""
    path = records_path(str(tmp_path), "live")
    write_records([_record("live", 0, 3)], path)
    stop = tmp_path / "stop"
    writer = subprocess.Popen([sys.executable, "-c", REWRITER, path, str(stop), __file__],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline() == "writing\n"
        for _ in range(400):
            table = read_file_table(path, columns=["status", "step", "env1_in_acc"]).to_pydict()
            assert table["step"] == list(range(len(table["step"])))
            assert table["env1_in_acc"] == [0.51] * len(table["step"])
    finally:
        stop.touch()
        rewrites = int(writer.communicate(timeout=60)[0])
    assert rewrites > 50  # the file really was replaced under the reads


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
