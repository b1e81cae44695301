"""Random vs Bayesian search (or any two sweeps) on the studies they share.

    python -m analysis.compare results/random_sweep results/bayes_sweep --plot compare.png

A study is (dataset, algorithm, test env, trial seed) with single-test-env trials. In each study
and sweep, trials are taken in proposal order (``trial_index``); after k trials the search has
selected the configuration training-domain validation picks among them (analysis.selection's
rule). Printed, per budget k (5, 10, 20 and each sweep's full budget): the median best-so-far
validation of each sweep, the paired difference (second minus first) with its standard error
over studies and a two-sided Wilcoxon signed-rank p-value (scipy), the same for the selected
configuration's test accuracy; then how many trials each sweep needs to reach the other's final
best, and the Spearman correlation of validation with test accuracy among a study's trials
(mean over studies). ``--plot``
draws best-so-far validation and selected test accuracy against k (median and interquartile
band over studies) as PNG and PDF.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np
import pandas as pd

from analysis.figures import pyplot, save_figure
from analysis.report import add_filters
from analysis.selection import STUDY_KEYS, best_run, trial_choices
from fishr_tune.errors import CLIParser, UserError, exit_status

DEFAULT_BUDGETS = (5, 10, 20)


def curves(trials: pd.DataFrame, budget: int) -> dict:
    """Per study: arrays (length ``budget``) of best-so-far val and selected test accuracy
    after k = 1..budget proposals (a proposal without a usable run adds nothing)."""
    out = {}
    for key, study in trials.groupby(STUDY_KEYS, sort=True):
        vals, tests = np.full(budget, np.nan), np.full(budget, np.nan)
        for k in range(1, budget + 1):
            seen = study[study["trial_index"] < k].sort_values("trial_index")
            best = best_run(list(seen["choice"]))
            if best is not None:
                vals[k - 1], tests[k - 1] = best.val_acc, best.test_acc
        out[key] = (vals, tests)
    return out


def paired(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float]:
    """Mean of b - a, its standard error (sample std / sqrt(n)), and Wilcoxon's p-value."""
    from scipy.stats import wilcoxon

    diff = b - a
    se = float(np.std(diff, ddof=1) / np.sqrt(len(diff))) if len(diff) > 1 else float("nan")
    p = 1.0 if np.allclose(diff, 0) else float(wilcoxon(a, b).pvalue)
    return float(np.mean(diff)), se, p


def trials_to_reach(mine: np.ndarray, target: float) -> int | None:
    """First k (1-based) at which a best-so-far curve reaches ``target``; None if never."""
    hit = np.nonzero(mine >= target)[0]
    return int(hit[0]) + 1 if len(hit) else None


def compare(first: pd.DataFrame, second: pd.DataFrame, budgets=DEFAULT_BUDGETS) -> dict:
    """Everything the table and the figure show (accuracies as fractions).

    Raises:
        UserError: the two sweeps have no study in common.
    """
    a_trials, b_trials = trial_choices(first), trial_choices(second)
    a_keys = set(map(tuple, a_trials[STUDY_KEYS].itertuples(index=False)))
    b_keys = set(map(tuple, b_trials[STUDY_KEYS].itertuples(index=False)))
    shared = sorted(a_keys & b_keys)
    if not shared:
        raise UserError("the two sweeps have no study (dataset, algorithm, test env, trial seed) "
                        "in common: compare sweeps of the same datasets, algorithms and seeds")
    a_trials = a_trials[[k in set(shared) for k in a_trials[STUDY_KEYS].itertuples(index=False)]]
    b_trials = b_trials[[k in set(shared) for k in b_trials[STUDY_KEYS].itertuples(index=False)]]
    full = int(min(a_trials.groupby(STUDY_KEYS)["trial_index"].max().min(),
                   b_trials.groupby(STUDY_KEYS)["trial_index"].max().min())) + 1
    a_curves, b_curves = curves(a_trials, full), curves(b_trials, full)
    rows = []
    for k in sorted({*(b for b in budgets if b <= full), full}):
        a_val = np.array([a_curves[s][0][k - 1] for s in shared])
        b_val = np.array([b_curves[s][0][k - 1] for s in shared])
        a_test = np.array([a_curves[s][1][k - 1] for s in shared])
        b_test = np.array([b_curves[s][1][k - 1] for s in shared])
        ok = ~(np.isnan(a_val) | np.isnan(b_val))
        rows.append({"budget": k, "studies": int(ok.sum()),
                     "val": (np.median(a_val[ok]), np.median(b_val[ok]),
                             *paired(a_val[ok], b_val[ok])),
                     "test": (np.mean(a_test[ok]), np.mean(b_test[ok]),
                              *paired(a_test[ok], b_test[ok]))})
    reach = {}
    for name, mine, other in (("first", a_curves, b_curves), ("second", b_curves, a_curves)):
        needed = [trials_to_reach(mine[s][0], other[s][0][-1]) for s in shared]
        reach[name] = needed
    spearman = {name: _spearman(t) for name, t in (("first", a_trials), ("second", b_trials))}
    return {"shared": shared, "full": full, "rows": rows, "reach": reach,
            "spearman": spearman, "curves": (a_curves, b_curves)}


def _spearman(trials: pd.DataFrame) -> float:
    """Mean over studies of the Spearman correlation of val with test accuracy among the
    study's trials (pooling studies would mix test envs of very different accuracy)."""
    from scipy.stats import spearmanr

    rhos = [spearmanr(s["val_acc"], s["test_acc"]).statistic
            for _, s in trials.groupby(STUDY_KEYS) if len(s) >= 3
            and s["val_acc"].nunique() > 1 and s["test_acc"].nunique() > 1]
    return float(np.mean(rhos)) if rhos else float("nan")


def _reach_text(needed: list, full: int) -> str:
    got = [n for n in needed if n is not None]
    median = f"median {np.median(got):.0f}" if got else "never"
    return f"{len(got)}/{len(needed)} studies within {full} trials ({median})"


def table_text(result: dict, labels: tuple[str, str]) -> str:
    """The comparison as a markdown table (percent) plus the reach and Spearman lines."""
    a, b = labels
    lines = [f"{len(result['shared'])} shared studies, {result['full']} trials each; "
             f"difference = {b} - {a} (paired over studies, mean +/- SE, Wilcoxon p)", "",
             f"| budget | best val {a} (median) | best val {b} (median) | val gain | p | "
             f"selected test {a} (mean) | selected test {b} (mean) | test gain | p |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        v, t = r["val"], r["test"]
        lines.append(f"| {r['budget']} | {100 * v[0]:.2f} | {100 * v[1]:.2f} | "
                     f"{100 * v[2]:+.2f} +/- {100 * v[3]:.2f} | {v[4]:.3g} | {100 * t[0]:.2f} | "
                     f"{100 * t[1]:.2f} | {100 * t[2]:+.2f} +/- {100 * t[3]:.2f} | {t[4]:.3g} |")
    lines += ["", f"trials {b} needs to reach {a}'s best: "
              f"{_reach_text(result['reach']['second'], result['full'])}",
              f"trials {a} needs to reach {b}'s best: "
              f"{_reach_text(result['reach']['first'], result['full'])}",
              f"Spearman(val, test) among a study's trials, mean over studies: "
              f"{a} {result['spearman']['first']:.2f}, "
              f"{b} {result['spearman']['second']:.2f}"]
    return "\n".join(lines)


def plot(result: dict, labels: tuple[str, str], path: str) -> list[str]:
    """Best-so-far validation and selected test accuracy vs trials: median line and
    interquartile band over studies, per sweep; written as ``path`` (PNG) and its PDF."""
    plt = pyplot()

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    ks = np.arange(1, result["full"] + 1)
    for curves_, label, color in zip(result["curves"], labels, ("tab:blue", "tab:orange")):
        for panel, ax in enumerate(axes):
            data = 100 * np.array([curves_[s][panel] for s in result["shared"]])
            q1, med, q3 = np.nanpercentile(data, [25, 50, 75], axis=0)
            ax.plot(ks, med, color=color, label=f"{label} (median)")
            ax.fill_between(ks, q1, q3, color=color, alpha=0.25,
                            label=f"{label} (interquartile)")
    axes[0].set_ylabel("best-so-far training-domain validation accuracy (%)")
    axes[1].set_ylabel("test-env accuracy of the selected configuration (%)")
    for ax in axes:
        ax.set_xlabel("number of trials per study")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"{labels[0]} vs {labels[1]}: {len(result['shared'])} studies")
    fig.tight_layout()
    return save_figure(fig, path)


def build_parser() -> argparse.ArgumentParser:
    """The command's flags."""
    p = CLIParser(prog="python -m analysis.compare", description=__doc__,
                  formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("first", help="sweep folder (e.g. the random search)")
    p.add_argument("second", help="sweep folder (e.g. the Bayesian search)")
    p.add_argument("--budgets", type=int, nargs="+", default=list(DEFAULT_BUDGETS))
    p.add_argument("--labels", nargs=2, default=None, help="names of the two sweeps")
    p.add_argument("--plot", default=None, help="PNG path (a PDF is written beside it)")
    add_filters(p)
    return p


def compare_cli(argv=None) -> int:
    """Check, load both sweeps, print the table, draw the figure."""
    from analysis.loading import load_records

    opts = build_parser().parse_args(argv)
    if any(b < 1 for b in opts.budgets):
        raise UserError(f"--budgets {opts.budgets}: every budget must be at least 1")
    if opts.plot and not opts.plot.lower().endswith(".png"):
        raise UserError(f"--plot {opts.plot}: give a .png path (the PDF goes beside it)")
    first = load_records([opts.first], opts.dataset, opts.algorithm, opts.search)
    second = load_records([opts.second], opts.dataset, opts.algorithm, opts.search)
    labels = tuple(opts.labels or (_label(first, opts.first), _label(second, opts.second)))
    result = compare(first, second, opts.budgets)
    print(table_text(result, labels))
    if opts.plot:
        print("figure: " + ", ".join(plot(result, labels, opts.plot)))
    return 0


def _label(records: pd.DataFrame, path: str) -> str:
    searches = sorted(records["search"].dropna().unique())
    name = os.path.basename(os.path.normpath(path))
    return searches[0] if len(searches) == 1 and searches[0] not in name else name


def compare_main(argv=None) -> int:
    """Entry point: bad input is one line on stderr and exit status 2."""
    return exit_status(compare_cli, argv)


main = compare_main

if __name__ == "__main__":
    sys.exit(compare_main())
