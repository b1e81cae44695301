"""DomainBed compatibility: import a DomainBed sweep folder, export ours in its layout.

    python -m analysis.domainbed import PATH/TO/DOMAINBED/SWEEP results/imported
    python -m analysis.domainbed export results/mysweep OUT_DIR

DomainBed's layout: one folder per job holding ``results.jsonl`` (one JSON record per
checkpoint: ``args``, ``hparams``, ``step``, ``env{i}_{in,out}_acc``, losses...) and an empty
``done`` file once the job finished. DomainBed's collect_results reads every job's records, done
or not; so does the import (a job without ``done`` becomes status ``running``, which selection
counts), and it says how many jobs were incomplete. The export writes our records one job
folder per trial (``done`` for status ``ok``) so that DomainBed's own collect_results reads it;
our extra columns ride along as extra keys, which DomainBed ignores, so a round trip keeps every
number. Neither command overwrites an existing folder.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys

import pandas as pd

from fishr_tune.errors import CLIParser, UserError, exit_status
import pyarrow as pa

from fishr_tune.records import CORE_FIELDS, records_path, write_records

RESULTS_FILE = "results.jsonl"
DONE_FILE = "done"
IMPORTED_VERSION = "domainbed-import"
# Core fields DomainBed keeps in ``args`` (the rest of our core fields ride as top-level keys).
ARGS_FIELDS = ("dataset", "algorithm", "test_envs", "hparams_seed", "trial_seed", "seed")
# Marks an exported Bayesian proposal: DomainBed needs an hparams seed to tell runs apart, so
# the export writes its trial_index there and the import restores the null.
SEARCH_KEY = "fishr_tune_search"


def _refuse_existing(path: str) -> None:
    if os.path.exists(path):
        raise UserError(f"{path} already exists: the output is never overwritten; pass a new "
                        "folder")


def job_dirs(path: str) -> list[str]:
    """The job folders of a DomainBed sweep (those holding results.jsonl), sorted."""
    if not os.path.isdir(path):
        raise UserError(f"{path} is not a folder: pass a DomainBed sweep folder (the "
                        "--output_dir of domainbed.scripts.sweep)")
    jobs = sorted(d for d in os.listdir(path)
                  if os.path.isfile(os.path.join(path, d, RESULTS_FILE)))
    if not jobs:
        raise UserError(f"{path} is not a DomainBed sweep: no <job>/{RESULTS_FILE} in it; pass "
                        "the folder that holds the job folders")
    return jobs


def read_job(folder: str) -> tuple[list[dict], int]:
    """The records of one job's results.jsonl, and how many lines could not be parsed (a job
    killed mid-write leaves a cut last line, which DomainBed's reader would choke on)."""
    records, bad = [], 0
    with open(os.path.join(folder, RESULTS_FILE)) as f:
        for line in f:
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                bad += 1
    return records, bad


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def to_record(line: dict, job: str, done: bool) -> dict:
    """One of our records from one DomainBed results.jsonl record."""
    args = dict(line.get("args") or {})
    search = line.get(SEARCH_KEY) or args.pop(SEARCH_KEY, None) or "random"
    record = {key: args.get(key) for key in ARGS_FIELDS}
    record["test_envs"] = [int(e) for e in record["test_envs"] or []]
    if search == "bayes":
        record["hparams_seed"] = None
    record.update(trial_id=job, args=args, hparams=line.get("hparams") or {}, search=search,
                  status="ok" if done else "running", code_version=IMPORTED_VERSION)
    for key, value in line.items():
        if key in ("args", "hparams", SEARCH_KEY):
            continue
        if key in CORE_FIELDS:
            if key not in ARGS_FIELDS:
                record[key] = value
        elif _number(value) or value is None:
            record[key] = None if value is None else float(value)
    record.setdefault("trial_index", args.get("hparams_seed"))
    return _ints(record)


def _ints(record: dict) -> dict:
    """Integer core fields as Python ints (pandas hands a nullable int column over as float)."""
    for key, kind in CORE_FIELDS.items():
        value = record.get(key)
        if kind == pa.int64() and value is not None and not _nan(value):
            record[key] = int(value)
        elif _nan(value):
            record[key] = None
    return record


def _nan(value) -> bool:
    return isinstance(value, float) and math.isnan(value)


def import_sweep(source: str, dest: str) -> dict:
    """Convert a DomainBed sweep into our Parquet layout under ``dest`` (a new folder).

    Returns counts: jobs, records, incomplete (no ``done``), bad_lines.
    """
    jobs = job_dirs(source)
    _refuse_existing(dest)
    counts = {"jobs": len(jobs), "records": 0, "incomplete": 0, "bad_lines": 0}
    for job in jobs:
        folder = os.path.join(source, job)
        lines, bad = read_job(folder)
        done = os.path.exists(os.path.join(folder, DONE_FILE))
        counts["bad_lines"] += bad
        counts["incomplete"] += not done
        if not lines:
            continue
        counts["records"] += len(lines)
        write_records([to_record(line, job, done) for line in lines], records_path(dest, job))
    return counts


def _plain(value):
    """A JSON-ready Python value of one record cell (NaN/None dropped by the caller)."""
    if hasattr(value, "tolist"):
        return value.tolist()
    return value


def to_line(row: dict) -> dict:
    """One DomainBed results.jsonl record from one of our records."""
    args = json.loads(row["args"]) if isinstance(row.get("args"), str) else {}
    row = _ints({k: _plain(v) for k, v in row.items()})
    for key in ARGS_FIELDS:
        args[key] = row.get(key)
    args["test_envs"] = [int(e) for e in args["test_envs"]]
    line = {"args": args,
            "hparams": json.loads(row["hparams"]) if isinstance(row.get("hparams"), str) else {}}
    if row.get("search") == "bayes":
        args["hparams_seed"] = int(row["trial_index"])
        line[SEARCH_KEY] = "bayes"
    for key, value in row.items():
        if key in ("args", "hparams", "sweep", *ARGS_FIELDS) or value is None or _nan(value):
            continue
        line[key] = value
    return line


def export_sweep(records: pd.DataFrame, dest: str) -> dict:
    """Write ``records`` in DomainBed's layout under ``dest`` (a new folder): one job folder per
    trial (named by trial_id) with results.jsonl in step order and ``done`` when status ok."""
    _refuse_existing(dest)
    os.makedirs(dest)
    counts = {"jobs": 0, "records": 0, "done": 0}
    for trial_id, trial in records.groupby("trial_id", sort=True):
        folder = os.path.join(dest, str(trial_id))
        os.makedirs(folder)
        rows = trial.sort_values("step", kind="stable").to_dict("records")
        with open(os.path.join(folder, RESULTS_FILE), "w") as f:
            for row in rows:
                f.write(json.dumps(to_line(row), sort_keys=True) + "\n")
        if (trial["status"] == "ok").all():
            open(os.path.join(folder, DONE_FILE), "w").close()
            counts["done"] += 1
        counts["jobs"] += 1
        counts["records"] += len(rows)
    return counts


def build_parser() -> argparse.ArgumentParser:
    """``import SOURCE DEST`` and ``export SWEEP OUT_DIR``."""
    p = CLIParser(prog="python -m analysis.domainbed", description=__doc__,
                  formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", parser_class=CLIParser, required=True)
    imp = sub.add_parser("import", help="DomainBed sweep folder -> our Parquet records")
    imp.add_argument("source")
    imp.add_argument("dest")
    exp = sub.add_parser("export", help="our sweep -> DomainBed's job folders")
    exp.add_argument("sweep")
    exp.add_argument("dest")
    return p


def domainbed_cli(argv=None) -> int:
    """Run one subcommand and say what it did."""
    from analysis.loading import load_records

    opts = build_parser().parse_args(argv)
    if opts.command == "import":
        c = import_sweep(opts.source, opts.dest)
        print(f"imported {c['jobs']} jobs ({c['records']} records) from {opts.source} into "
              f"{opts.dest}: {c['incomplete']} incomplete (no done file; their records count, "
              "as in DomainBed's collect_results)"
              + (f", {c['bad_lines']} unreadable line(s) skipped" if c["bad_lines"] else ""))
    else:
        _refuse_existing(opts.dest)
        records = load_records([opts.sweep])
        c = export_sweep(records, opts.dest)
        print(f"exported {c['jobs']} trials ({c['records']} records, {c['done']} done) to "
              f"{opts.dest}: python -m domainbed.scripts.collect_results --input_dir "
              f"{opts.dest}")
    return 0


def main(argv=None) -> int:
    """Entry point: bad input is one line on stderr and exit status 2."""
    return exit_status(domainbed_cli, argv)


if __name__ == "__main__":
    sys.exit(main())
