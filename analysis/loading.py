"""Load one or more sweeps' Parquet records as one Arrow table, then pandas (read-only).

A path is a sweep folder (its ``records/`` subfolder is read, not ``interrupted/``) or any folder
of record files. Every bad path is a one-line UserError before any analysis: missing, empty, or
holding a corrupt or foreign Parquet file.
"""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from fishr_tune.errors import UserError
from fishr_tune.records import RECORDS_DIR, join, read_records_table, resolve_filesystem

# Columns without which a Parquet file is not one of our record files.
REQUIRED = ("trial_id", "dataset", "algorithm", "test_envs", "trial_seed", "step", "status")


def records_folder(path: str) -> str:
    """The folder holding a sweep's record files (``<path>/records`` when there is one)."""
    fs, local = resolve_filesystem(path)
    info = fs.get_file_info(local)
    if info.type == pafs.FileType.NotFound:
        raise UserError(f"results path {path} does not exist: pass a sweep folder "
                        "(<output>/<name>) or a folder of record files")
    if info.type != pafs.FileType.Directory:
        raise UserError(f"results path {path} is not a folder: pass a sweep folder "
                        "(<output>/<name>) or a folder of record files")
    sub = join(local, RECORDS_DIR)
    if fs.get_file_info(sub).type == pafs.FileType.Directory:
        return sub if "://" not in path else join(path, RECORDS_DIR)
    return path


def check_files(folder: str) -> None:
    """Name the first record file that is unreadable or lacks the record columns."""
    fs, local = resolve_filesystem(folder)
    selector = pafs.FileSelector(local, recursive=True, allow_not_found=True)
    for info in fs.get_file_info(selector):
        if info.type != pafs.FileType.File or not info.path.endswith(".parquet") \
                or info.base_name.startswith("."):
            continue
        try:
            names = pq.read_schema(info.path, filesystem=fs).names
        except (pa.ArrowException, OSError) as exc:
            raise UserError(f"{info.path} is not a readable Parquet file ({exc}): remove it or "
                            "move it out of the results folder") from None
        absent = [c for c in REQUIRED if c not in names]
        if absent:
            raise UserError(f"{info.path} is not a fishr_tune record file (no column "
                            f"{', '.join(absent)}): move it out of the results folder")


def load_sweep(path: str) -> pa.Table:
    """Every record of one sweep as an Arrow table, with a ``sweep`` column (the path given)."""
    folder = records_folder(path)
    check_files(folder)
    try:
        table = read_records_table(folder)
    except (pa.ArrowException, OSError) as exc:
        raise UserError(f"cannot read the records under {path} ({exc}): check that every "
                        "*.parquet file there is a fishr_tune record file") from None
    if table.num_rows == 0:
        raise UserError(f"no records under {path}: pass the folder of a sweep that has run "
                        "(python -m fishr_tune.run writes <output>/<name>/records/)")
    return table.add_column(0, "sweep", pa.array([path] * table.num_rows, pa.string()))


def _canonical(values, kind: str, present) -> list[str]:
    """Canonical names of a filter, each checked against the registry and the records."""
    from fishr_tune.datasets.registry import get_spec
    from search_spaces import canonical_algorithm

    names = []
    for value in values:
        if value in present:
            names.append(value)
            continue
        name = get_spec(value).name if kind == "dataset" else canonical_algorithm(value)
        if name not in present:
            raise UserError(f"no records of {kind} {name} in these results: choose one of "
                            f"{', '.join(sorted(present))}")
        names.append(name)
    return names


def load_records(paths, datasets=None, algorithms=None, searches=None) -> pd.DataFrame:
    """The records of every sweep in ``paths`` as one frame, optionally filtered.

    Raises:
        UserError: a path missing, empty or holding a bad file; a filter naming an unknown
            dataset/algorithm/search or one absent from the records.
    """
    if isinstance(paths, str):
        paths = [paths]
    # One Arrow table (schemas unified: another dataset's env columns read as null) -> pandas.
    tables = [load_sweep(p) for p in paths]
    records = pa.concat_tables(tables, promote_options="default").to_pandas()
    if datasets:
        keep = _canonical(datasets, "dataset", set(records["dataset"].dropna()))
        records = records[records["dataset"].isin(keep)]
    if algorithms:
        keep = _canonical(algorithms, "algorithm", set(records["algorithm"].dropna()))
        records = records[records["algorithm"].isin(keep)]
    if searches:
        present = set(records["search"].dropna())
        for s in searches:
            if s not in present:
                raise UserError(f"no records of search '{s}' in these results: choose one of "
                                f"{', '.join(sorted(present))}")
        records = records[records["search"].isin(searches)]
    return records.reset_index(drop=True)
