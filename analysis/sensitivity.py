"""How accuracy depends on each numeric hparam of an algorithm, over every trial of a sweep.

    python -m analysis.sensitivity results/mysweep --algorithm Fishr --plot fishr_hparams.png

For every single-test-env trial of the algorithm: the validation and test accuracy at the
checkpoint training-domain validation selects in that trial, against each numeric hparam the
search space varies (one panel per hparam; log axis where the space is log-uniform, e.g. Fishr's
lambda). Prints, per hparam, its range over the trials and the Spearman correlation of the
hparam with validation and with test accuracy.
"""

from __future__ import annotations

import argparse
import json
import math
import sys

import pandas as pd

from analysis.figures import pyplot, save_figure
from analysis.report import add_filters
from analysis.selection import trial_choices
from fishr_tune.errors import CLIParser, UserError, exit_status


def numeric_hparams(algorithm: str, dataset: str) -> list[tuple[str, bool]]:
    """(name, log scale) of every numeric hparam the space of (algorithm, dataset) searches."""
    from search_spaces import definitions

    out = []
    for h in definitions(algorithm, dataset):
        if not h.dist.searched:
            continue
        bounds = h.dist.bounds()
        numeric = bounds.kind in ("float", "int") or (
            bounds.kind == "categorical" and all(isinstance(c, (int, float))
                                                 and not isinstance(c, bool)
                                                 for c in bounds.choices))
        if numeric:
            out.append((h.name, bool(bounds.log)))
    return out


def sensitivity_table(records: pd.DataFrame, algorithm: str) -> tuple[pd.DataFrame, list]:
    """Per-trial frame (study, val_acc, test_acc, one column per numeric hparam) and the
    (name, log) list of those hparams."""
    trials = trial_choices(records[records["algorithm"] == algorithm])
    if trials.empty:
        raise UserError(f"no finished single-test-env trial of {algorithm} in these results")
    names = {}
    for dataset in trials["dataset"].unique():
        for name, log in numeric_hparams(algorithm, dataset):
            names[name] = names.get(name, False) or log
    values = trials["hparams"].map(json.loads)
    for name in names:
        trials[name] = values.map(lambda h, n=name: h.get(n)).astype(float)
    return trials, list(names.items())


def summary_text(trials: pd.DataFrame, hparams: list) -> str:
    """One line per hparam: range and Spearman correlations with val and test accuracy."""
    from scipy.stats import spearmanr

    lines = [f"{len(trials)} trials; Spearman correlation of each hparam with the selected "
             "checkpoint's accuracy", "",
             "| hparam | scale | min | max | rho(val) | rho(test) |", "|---|---|---|---|---|---|"]
    for name, log in hparams:
        x = trials[name]
        rho = [spearmanr(x, trials[c]).statistic if x.nunique() > 1 else math.nan
               for c in ("val_acc", "test_acc")]
        lines.append(f"| {name} | {'log' if log else 'linear'} | {x.min():.4g} | "
                     f"{x.max():.4g} | {rho[0]:.2f} | {rho[1]:.2f} |")
    return "\n".join(lines)


def plot(trials: pd.DataFrame, hparams: list, algorithm: str, path: str) -> list[str]:
    """One panel per hparam: val and test accuracy (%) of every trial; PNG and PDF."""
    plt = pyplot()

    cols = min(3, len(hparams))
    rows = math.ceil(len(hparams) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.4 * rows), squeeze=False)
    for ax, (name, log) in zip(axes.flat, hparams):
        ax.scatter(trials[name], 100 * trials["val_acc"], s=14, alpha=0.7,
                   label="training-domain validation")
        ax.scatter(trials[name], 100 * trials["test_acc"], s=14, alpha=0.7, marker="x",
                   label="test env")
        if log:
            ax.set_xscale("log")
        ax.set_xlabel(name + (" (log scale)" if log else ""))
        ax.set_ylabel("accuracy (%)")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(hparams):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=8)
    fig.suptitle(f"{algorithm}: accuracy at the selected checkpoint of {len(trials)} trials")
    fig.tight_layout()
    return save_figure(fig, path)


def build_parser() -> argparse.ArgumentParser:
    """The command's flags."""
    p = CLIParser(prog="python -m analysis.sensitivity", description=__doc__,
                  formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("results", nargs="+")
    p.add_argument("--algorithm", required=True)
    add_filters(p, algorithm=False)
    p.add_argument("--plot", default=None, help="PNG path (a PDF is written beside it)")
    return p


def sensitivity_cli(argv=None) -> int:
    """Check, load, print the summary, draw the panels."""
    from analysis.loading import load_records

    opts = build_parser().parse_args(argv)
    if opts.plot and not opts.plot.lower().endswith(".png"):
        raise UserError(f"--plot {opts.plot}: give a .png path (the PDF goes beside it)")
    records = load_records(opts.results, opts.dataset, [opts.algorithm], opts.search)
    algorithm = records["algorithm"].iloc[0]
    trials, hparams = sensitivity_table(records, algorithm)
    if not hparams:
        raise UserError(f"{algorithm} has no numeric hparam in its search space here")
    print(summary_text(trials, hparams))
    if opts.plot:
        print("figure: " + ", ".join(plot(trials, hparams, algorithm, opts.plot)))
    return 0


def main(argv=None) -> int:
    """Entry point: bad input is one line on stderr and exit status 2."""
    return exit_status(sensitivity_cli, argv)


if __name__ == "__main__":
    sys.exit(main())
