"""The sweep CLI: DomainBed's sweep on Ray Tune.

    python -m fishr_tune.run                      # embedded default: a complete small sweep
    python -m fishr_tune.run --dataset officehome --data-dir ~/data --algorithms ERM Fishr \\
        --search bayes --num-samples 20 --trial-seeds 3 --gpus-per-trial 0.5
    python -m fishr_tune.run --address auto ...   # inside an existing Ray cluster
    python -m fishr_tune.run --name mysweep --resume

Records: ``<output>/<name>/records/<trial_id>.parquet`` (see fishr_tune.records for columns).
"""

from __future__ import annotations

import argparse
import sys

from fishr_tune.errors import CLIParser, UserError, exit_status
from fishr_tune.options import (SHARED, SWEEP_ONLY, add_flags, add_no_pretrained,
                                from_namespace, weights_arg)
from fishr_tune.sweep.config import SweepConfig
from search_spaces import parse_hparams_json


def build_parser() -> argparse.ArgumentParser:
    """The flags: every sweep option of fishr_tune.options, plus how to run it."""
    p = CLIParser(prog="python -m fishr_tune.run", description=__doc__,
                  formatter_class=argparse.RawDescriptionHelpFormatter)
    add_flags(p, SWEEP_ONLY, SHARED)
    add_no_pretrained(p)
    p.add_argument("--resume", action="store_true",
                   help="continue the sweep --name (it must exist)")
    p.add_argument("--resume-if-exists", action="store_true",
                   help="continue the sweep --name if it exists, else start it (what "
                        "fishr_tune.submit runs, so a resubmission resumes)")
    p.add_argument("--address", default=None, help="Ray cluster address (auto, host:port)")
    p.add_argument("--num-cpus", type=int, default=None, help="CPUs of a local Ray")
    p.add_argument("--dashboard", action="store_true",
                   help="start the local Ray with its dashboard and print its URL")
    return p


def config_from_args(opts) -> SweepConfig:
    """Map parsed flags onto a SweepConfig."""
    return from_namespace(SweepConfig, opts, hparams=parse_hparams_json(opts.hparams) or None,
                          weights=weights_arg(opts.weights, opts.no_pretrained))


def print_summary(outcome) -> None:
    """Trials per status, wall time, where the results are, and the model-selection tables."""
    from analysis.report import selection_report

    c = outcome.counts
    print(f"\nsweep finished: {c['trials']} trials: {c['ok']} ok, {c['error']} error, "
          f"{c['diverged']} diverged in {outcome.wall_time_s:.0f} s")
    print(f"records: {outcome.records_dir}")
    if c.get("running"):
        print(f"{c['running']} trials unfinished (a chunk was stopped): continue with "
              f"{outcome.resume_command}")
    print(selection_report(outcome.records))


def run_sweep_cli(argv=None) -> int:
    """Run a sweep from command-line arguments; 1 when any trial ended in error, 130 when the
    sweep was interrupted (one line on stderr says how to continue it)."""
    from fishr_tune.sweep.driver import (INTERRUPTED_EXIT, SweepInterrupted, run_sweep,
                                         sweep_exists)

    opts = build_parser().parse_args(argv)
    resume = opts.resume
    if opts.resume_if_exists:
        if not opts.name:
            raise UserError("--resume-if-exists needs --name: the sweep to continue or start")
        resume = sweep_exists(opts.output, opts.name)
    if opts.num_cpus is not None and opts.num_cpus < 1:
        raise UserError(f"--num-cpus is {opts.num_cpus}: it must be at least 1")
    try:
        outcome = run_sweep(config_from_args(opts), resume=resume, address=opts.address,
                            num_cpus=opts.num_cpus, dashboard=opts.dashboard)
    except SweepInterrupted as exc:
        print(str(exc), file=sys.stderr, flush=True)
        return INTERRUPTED_EXIT
    print_summary(outcome)
    return 0 if outcome.counts["error"] == 0 and not outcome.counts["failed_chunks"] else 1


def main(argv=None) -> int:
    """Entry point: bad input is one line on stderr and exit status 2."""
    return exit_status(run_sweep_cli, argv)


if __name__ == "__main__":
    sys.exit(main())
