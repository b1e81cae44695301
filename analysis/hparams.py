"""The hyperparameters each selection method chose (DomainBed#93, alexrame/fishr#3).

    python -m analysis.hparams results/mysweep --dataset OfficeHome --algorithm Fishr --test-env 0
    python -m analysis.hparams results/mysweep --selection training --format csv

For each cell (dataset, algorithm, test env) and each method: per trial seed, the chosen
configuration, its checkpoint step, validation and test accuracy (percent).
"""

from __future__ import annotations

import argparse
import csv
import io
import sys

import pandas as pd

from analysis.report import add_filters
from analysis.selection import METHODS, get_method, num_envs, select
from fishr_tune.errors import CLIParser, UserError, exit_status

HPARAMS_FORMATS = ("text", "csv")
COLUMNS = ["selection", "dataset", "algorithm", "test_env", "trial_seed", "trial_id",
           "hparams_seed", "step", "val_acc", "test_acc", "hparams"]


def selected_hparams(records: pd.DataFrame, selections=None, test_env: int | None = None):
    """One row per (method, group) with a choice: the columns of :data:`COLUMNS`."""
    frames = []
    for key in selections or METHODS:
        chosen = select(records, get_method(key)).dropna(subset=["test_acc"])
        if test_env is not None:
            chosen = chosen[chosen["test_env"] == test_env]
        frames.append(chosen.assign(selection=key,
                                    val_acc=100 * chosen["val_acc"],
                                    test_acc=100 * chosen["test_acc"]))
    if not frames:
        return pd.DataFrame(columns=COLUMNS)
    table = pd.concat(frames, ignore_index=True)[COLUMNS]
    table["hparams_seed"] = table["hparams_seed"].astype("Int64")
    table["step"] = table["step"].astype("Int64")
    return table


def text(table: pd.DataFrame) -> str:
    """Per method and cell, one line per trial seed."""
    lines = []
    for (selection, dataset, algorithm, env), rows in table.groupby(
            ["selection", "dataset", "algorithm", "test_env"], sort=False):
        lines.append(f"\n{METHODS[selection].name} | {dataset} | {algorithm} | test env {env}")
        for _, r in rows.sort_values("trial_seed").iterrows():
            seed = "-" if pd.isna(r["hparams_seed"]) else int(r["hparams_seed"])
            lines.append(f"  trial_seed {r['trial_seed']}: hparams_seed {seed}, step "
                         f"{r['step']}, val {r['val_acc']:.1f}, test {r['test_acc']:.1f}, "
                         f"trial {r['trial_id']}\n    {r['hparams']}")
    return "\n".join(lines).lstrip("\n") if lines else "(no selected configuration)"


def to_csv(table: pd.DataFrame) -> str:
    """CSV with the columns of :data:`COLUMNS`."""
    out = io.StringIO()
    table.to_csv(out, index=False, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    return out.getvalue().rstrip("\n")


def build_parser() -> argparse.ArgumentParser:
    """The command's flags."""
    p = CLIParser(prog="python -m analysis.hparams", description=__doc__,
                  formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("results", nargs="+")
    p.add_argument("--test-env", type=int, default=None)
    p.add_argument("--selection", nargs="+", default=None,
                   help=f"methods: {', '.join(METHODS)} (default all)")
    p.add_argument("--format", default="text", help="text or csv")
    add_filters(p)
    return p


def hparams_cli(argv=None) -> int:
    """Check the names, load, print."""
    from analysis.loading import load_records

    opts = build_parser().parse_args(argv)
    if opts.format not in HPARAMS_FORMATS:
        raise UserError(f"unknown format '{opts.format}': choose text or csv")
    for key in opts.selection or ():
        get_method(key)
    if opts.test_env is not None and opts.test_env < 0:
        raise UserError(f"--test-env is {opts.test_env}: pass an environment index >= 0")
    records = load_records(opts.results, opts.dataset, opts.algorithm, opts.search)
    if opts.test_env is not None:
        most = max(num_envs(records, d) for d in records["dataset"].unique())
        if opts.test_env >= most:
            raise UserError(f"--test-env {opts.test_env} is out of range: these datasets have "
                            f"envs 0..{most - 1}")
    table = selected_hparams(records, opts.selection, opts.test_env)
    print(to_csv(table) if opts.format == "csv" else text(table))
    return 0


def main(argv=None) -> int:
    """Entry point: bad input is one line on stderr and exit status 2."""
    return exit_status(hparams_cli, argv)


if __name__ == "__main__":
    sys.exit(main())
