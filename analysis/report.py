"""Model-selection report of one or more sweeps: DomainBed's tables, in four formats.

    python -m analysis.report results/mysweep                  # all three methods, text
    python -m analysis.report results/mysweep --selection training --format latex > table.tex
    python -m analysis.report results/mysweep results/other --format csv
    python -m analysis.report results/mysweep --format markdown --dataset ColoredDigits

Per selection method (training-domain validation, leave-one-domain-out, oracle; DomainBed's
order): one table per dataset (algorithms x test envs + Avg), then the averages table
(algorithms x datasets + Avg). Cells are test accuracy in percent, mean +/- standard error over
trial seeds. Records are only read.
"""

from __future__ import annotations

import argparse
import sys

import pandas as pd

from analysis.formats import FORMATS, RENDERERS, csv_rows, write_csv
from analysis.selection import METHODS, get_method, select
from analysis.tables import method_tables
from fishr_tune.errors import CLIParser, UserError, exit_status

LATEX_HEAD = ["\\documentclass{article}", "\\usepackage{booktabs}", "\\usepackage{adjustbox}",
              "\\begin{document}", "\\section{Full DomainBed results}"]


def check_format(fmt: str) -> str:
    """The format name, or a one-line UserError listing the valid ones."""
    if fmt not in FORMATS:
        raise UserError(f"unknown format '{fmt}': choose one of {', '.join(FORMATS)}")
    return fmt


def selection_report(records: pd.DataFrame, selections=None, fmt: str = "text") -> str:
    """The report of ``records`` for the methods ``selections`` (CLI keys; default all)."""
    check_format(fmt)
    methods = [get_method(k) for k in (selections or METHODS)]
    n = len(records)
    if fmt == "csv":
        rows = []
        for method in methods:
            for table in method_tables(select(records, method), records, method):
                rows += csv_rows(table, method.key)
        return write_csv(rows).rstrip("\n")
    lines = LATEX_HEAD + [f"% Total records: {n}"] if fmt == "latex" else \
        [f"Total records: {n}"]
    if n == 0:
        return "\n".join(lines + ["(no records to select from)"])
    for method in methods:
        if fmt == "latex":
            lines += ["", f"\\subsection{{Model selection: {method.name}}}"]
        elif fmt == "markdown":
            lines += ["", f"### Model selection: {method.name}"]
        for table in method_tables(select(records, method), records, method):
            lines.append(RENDERERS[fmt](table))
    if fmt == "latex":
        lines.append("\\end{document}")
    return "\n".join(lines)


def add_filters(p: argparse.ArgumentParser, algorithm: bool = True) -> None:
    """``--dataset``, ``--algorithm``, ``--search`` (shared by the analysis CLIs);
    ``algorithm=False`` for a command with its own ``--algorithm``."""
    p.add_argument("--dataset", nargs="+", default=None, help="keep these datasets")
    if algorithm:
        p.add_argument("--algorithm", nargs="+", default=None, help="keep these algorithms")
    p.add_argument("--search", nargs="+", default=None, help="keep random / bayes / single")


def build_parser() -> argparse.ArgumentParser:
    """The report's flags."""
    p = CLIParser(prog="python -m analysis.report", description=__doc__,
                  formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("results", nargs="+", help="sweep folders (<output>/<name>)")
    p.add_argument("--selection", nargs="+", default=None,
                   help=f"methods to report: {', '.join(METHODS)} (default all)")
    p.add_argument("--format", default="text", help=f"one of {', '.join(FORMATS)}")
    add_filters(p)
    return p


def report_cli(argv=None) -> int:
    """Parse, check every name before reading anything, load, print."""
    from analysis.loading import load_records

    opts = build_parser().parse_args(argv)
    check_format(opts.format)
    for key in opts.selection or ():
        get_method(key)
    records = load_records(opts.results, opts.dataset, opts.algorithm, opts.search)
    print(selection_report(records, opts.selection, opts.format))
    return 0


def main(argv=None) -> int:
    """Entry point: bad input is one line on stderr and exit status 2."""
    return exit_status(report_cli, argv)


if __name__ == "__main__":
    sys.exit(main())
