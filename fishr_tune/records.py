"""THE record schema and its Parquet IO.

One record per evaluated checkpoint of one trial. Column names and types are defined here and
nowhere else: the single-trial CLI, the sweep engine and ``analysis`` all use this module.

Columns (DomainBed's keys plus ours):

==================  ==============  ============================================================
column              type            meaning
==================  ==============  ============================================================
trial_id            string          stable id: md5 of the trial's identity (see ``trial_id``)
dataset             string          DomainBed class name (``ColoredMNIST``, ``OfficeHome``, ...)
algorithm           string          DomainBed algorithm name (``ERM``, ``Fishr``)
test_envs           list<int64>     held-out environment indices
hparams_seed        int64           DomainBed hparams seed (null for Bayesian proposals)
trial_seed          int64           DomainBed trial seed (data split, hparam draw)
seed                int64           job seed (model init, minibatches)
step                int64           training step of this checkpoint (null: failed before any)
epoch               float64         step / steps_per_epoch (DomainBed's definition)
step_time           float64         mean seconds per step since the previous checkpoint
mem_gb              float64         peak CUDA memory in GiB (0 on CPU)
elapsed_s           float64         the trial's own seconds so far (training + evaluation,
                                    summed over resumed attempts)
env{i}_in_acc       float64         accuracy on env i's in split, for every env i
env{i}_out_acc      float64         accuracy on env i's out (holdout) split
<update keys>       float64         every key ``update()`` returns (loss, nll, penalty, ...),
                                    averaged since the previous checkpoint
hparams             string          JSON (sorted keys) of the resolved hparams
args                string          JSON (sorted keys) of the trial's arguments
search              string          ``random`` | ``bayes`` | ``single``
trial_index         int64           proposal order within its study
status              string          ``ok`` | ``error`` | ``diverged``
error               string          error text for ``error`` / ``diverged`` (else null)
code_version        string          fishr_tune version + git commit when known
node_id             string          Ray node that ran the trial (null outside Ray)
==================  ==============  ============================================================
"""

from __future__ import annotations

import json
import os
import re
import uuid

import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.fs as pafs
import pyarrow.parquet as pq

CORE_FIELDS: dict[str, pa.DataType] = {
    "trial_id": pa.string(),
    "dataset": pa.string(),
    "algorithm": pa.string(),
    "test_envs": pa.list_(pa.int64()),
    "hparams_seed": pa.int64(),
    "trial_seed": pa.int64(),
    "seed": pa.int64(),
    "step": pa.int64(),
    "epoch": pa.float64(),
    "step_time": pa.float64(),
    "mem_gb": pa.float64(),
    "elapsed_s": pa.float64(),
    "hparams": pa.string(),
    "args": pa.string(),
    "search": pa.string(),
    "trial_index": pa.int64(),
    "status": pa.string(),
    "error": pa.string(),
    "code_version": pa.string(),
    "node_id": pa.string(),
}
STATUSES = ("ok", "error", "diverged", "running")
SEARCHES = ("random", "bayes", "single")
JSON_COLUMNS = ("hparams", "args")
ENV_ACC = re.compile(r"^env(\d+)_(in|out|uda)_acc$")
RECORDS_DIR = "records"


def env_acc_column(env: int, split: str) -> str:
    """Column name of env ``env``'s accuracy on ``split`` (``in``, ``out`` or ``uda``)."""
    return f"env{env}_{split}_acc"


def column_type(name: str) -> pa.DataType:
    """Arrow type of any record column: core fields by table, everything else is a float metric."""
    return CORE_FIELDS.get(name, pa.float64())


def record_schema(columns) -> pa.Schema:
    """Schema for a set of record columns: core fields first, then sorted metric columns."""
    extra = sorted(c for c in columns if c not in CORE_FIELDS)
    return pa.schema([(c, CORE_FIELDS[c]) for c in CORE_FIELDS]
                     + [(c, pa.float64()) for c in extra])


def encode_json(value) -> str:
    """Serialise hparams/args the way DomainBed does (sorted keys), for the JSON columns."""
    return json.dumps(value, sort_keys=True, default=str)


def records_table(records: list[dict]) -> pa.Table:
    """Build an Arrow table from record dicts, with the schema above.

    ``hparams``/``args`` given as dicts are encoded to JSON; missing core fields become null.
    """
    rows = []
    columns: set[str] = set()
    for record in records:
        row = dict(record)
        for key in JSON_COLUMNS:
            if key in row and not isinstance(row[key], str) and row[key] is not None:
                row[key] = encode_json(row[key])
        columns.update(row)
        rows.append(row)
    schema = record_schema(columns)
    return pa.Table.from_pylist(rows, schema=schema)


def resolve_filesystem(uri: str) -> tuple[pafs.FileSystem, str]:
    """Filesystem and path of a local path or any URI that pyarrow's filesystems accept."""
    if "://" in uri:
        return pafs.FileSystem.from_uri(uri)
    return pafs.LocalFileSystem(), os.path.abspath(os.path.expanduser(uri))


def join(base: str, *parts: str) -> str:
    """Join path parts with ``/`` (valid for local paths and object-store paths alike)."""
    return "/".join([base.rstrip("/"), *parts])


def records_path(output: str, trial_id: str) -> str:
    """Where a trial's records live: ``<output>/records/<trial_id>.parquet``."""
    return join(output, RECORDS_DIR, f"{trial_id}.parquet")


def write_atomically(path: str, write) -> None:
    """Write a file atomically: ``write(stream)`` fills a temporary file beside ``path``, which
    is then renamed onto it, so a reader (or a killed writer) never sees a half-written file.

    ``path`` is a local path or any URI that pyarrow's filesystems accept.
    """
    fs, local = resolve_filesystem(path)
    folder = local.rsplit("/", 1)[0]
    fs.create_dir(folder, recursive=True)
    tmp = f"{folder}/.tmp-{uuid.uuid4().hex}"
    with fs.open_output_stream(tmp) as stream:
        write(stream)
    fs.move(tmp, local)


def write_records(records: list[dict], path: str) -> None:
    """Write records to ``path`` atomically, so a sweep's result folder is always readable as
    one dataset."""
    table = records_table(records)
    write_atomically(path, lambda stream: pq.write_table(table, stream))


def read_file_table(path: str, columns: list[str] | None = None) -> pa.Table:
    """One record file as an Arrow table, read through one open handle.

    Writers replace a live trial's file by rename (``write_atomically``). ``pq.read_table(path)``
    opens the path more than once (footer, then pages), so a rename in between mixes the old
    footer with the new file's pages ("Deserializing page header failed"). One handle pins one
    inode: the reader sees the old file whole or the new one whole. Raises FileNotFoundError
    when there is no file.
    """
    fs, local = resolve_filesystem(path)
    with fs.open_input_file(local) as handle:
        return pq.read_table(handle, columns=columns)


def read_records(path: str) -> "pandas.DataFrame":  # noqa: F821
    """Read every ``*.parquet`` record file under ``path`` (a sweep or trial output folder).

    Files of different datasets have different env/metric columns; their schemas are unified so
    missing columns read as null. Temporary files of interrupted writes are ignored.
    """
    table = read_records_table(path)
    return table.to_pandas()


def read_records_table(path: str) -> pa.Table:
    """Like :func:`read_records` but returns the Arrow table."""
    fs, local = resolve_filesystem(path)
    selector = pafs.FileSelector(local, recursive=True, allow_not_found=True)
    files = [info.path for info in fs.get_file_info(selector)
             if info.type == pafs.FileType.File and info.path.endswith(".parquet")
             and not info.base_name.startswith(".")]
    if not files:
        return record_schema([]).empty_table()
    schemas = [pq.read_schema(f, filesystem=fs) for f in files]
    schema = record_schema(set().union(*(s.names for s in schemas)))
    dataset = pads.dataset(files, schema=schema, filesystem=fs, format="parquet")
    return dataset.to_table()
