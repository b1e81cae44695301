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
from fishr_tune.sweep.config import (DEFAULT_ALGORITHMS, DEFAULT_NUM_SAMPLES,
                                     DEFAULT_TRIAL_SEEDS, OBJECTIVES, SEARCHES, SweepConfig)
from fishr_tune.train import weights_arg
from search_spaces import parse_hparams_json


def build_parser() -> argparse.ArgumentParser:
    """The flags (DomainBed's sweep names where it has them)."""
    p = CLIParser(prog="python -m fishr_tune.run", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", "--datasets", dest="datasets", nargs="+",
                   default=["colored_digits"])
    p.add_argument("--data-dir", default=None)
    p.add_argument("--algorithms", nargs="+", default=list(DEFAULT_ALGORITHMS))
    p.add_argument("--test-envs", type=int, nargs="+", default=None,
                   help="single test envs to run (default: every env)")
    p.add_argument("--test-env-pairs", action="store_true",
                   help="add the [i, j] pair jobs that leave-one-domain-out selection needs")
    p.add_argument("--search", choices=SEARCHES, default="random")
    p.add_argument("--num-samples", type=int, default=DEFAULT_NUM_SAMPLES,
                   help="hparam configurations per study")
    p.add_argument("--trial-seeds", type=int, default=DEFAULT_TRIAL_SEEDS)
    p.add_argument("--include-defaults", action="store_true",
                   help="random search: hparams seeds 0..N-1 (0 = defaults) instead of 1..N")
    p.add_argument("--startup-trials", type=int, default=None,
                   help="bayes: random proposals before TPE (default: a quarter of the budget)")
    p.add_argument("--objective", choices=OBJECTIVES, default="iid",
                   help="bayes: what TPE maximises (oracle peeks at the test env)")
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--checkpoint-freq", type=int, default=None)
    p.add_argument("--holdout-fraction", type=float, default=0.2)
    p.add_argument("--hparams", default=None, help="JSON object of fixed hparams")
    p.add_argument("--output", default="results", help="local path or pyarrow filesystem URI")
    p.add_argument("--name", default="", help="sweep name (default: dataset-search-timestamp)")
    p.add_argument("--resume", action="store_true", help="continue the sweep --name (it must exist)")
    p.add_argument("--resume-if-exists", action="store_true",
                   help="continue the sweep --name if it exists, else start it (what "
                        "fishr_tune.submit runs, so a resubmission resumes)")
    p.add_argument("--address", default=None, help="Ray cluster address (auto, host:port)")
    p.add_argument("--num-cpus", type=int, default=None, help="CPUs of a local Ray")
    p.add_argument("--cpus-per-trial", type=float, default=1.0)
    p.add_argument("--gpus-per-trial", type=float, default=0.0)
    p.add_argument("--max-concurrent", type=int, default=None)
    p.add_argument("--max-failures", type=int, default=1)
    p.add_argument("--seed", type=int, default=0, help="seed of the TPE samplers")
    p.add_argument("--weights", default=None)
    p.add_argument("--no-pretrained", action="store_true")
    p.add_argument("--num-workers", type=int, default=0)
    return p


def config_from_args(opts) -> SweepConfig:
    """Map parsed flags onto a SweepConfig."""
    return SweepConfig(
        datasets=opts.datasets, algorithms=opts.algorithms, test_envs=opts.test_envs,
        test_env_pairs=opts.test_env_pairs, search=opts.search, num_samples=opts.num_samples,
        trial_seeds=opts.trial_seeds, include_defaults=opts.include_defaults, steps=opts.steps,
        checkpoint_freq=opts.checkpoint_freq, holdout_fraction=opts.holdout_fraction,
        hparams=parse_hparams_json(opts.hparams) or None, objective=opts.objective,
        startup_trials=opts.startup_trials, data_dir=opts.data_dir,
        weights=weights_arg(opts.weights, opts.no_pretrained), num_workers=opts.num_workers,
        output=opts.output, name=opts.name, cpus_per_trial=opts.cpus_per_trial,
        gpus_per_trial=opts.gpus_per_trial, max_concurrent=opts.max_concurrent,
        max_failures=opts.max_failures, seed=opts.seed)


def print_summary(outcome) -> None:
    """Trials per status, wall time, where the results are, and the model-selection tables."""
    from analysis.report import selection_report

    c = outcome.counts
    print(f"\nsweep finished: {c['trials']} trials: {c['ok']} ok, {c['error']} error, "
          f"{c['diverged']} diverged in {outcome.wall_time_s:.0f} s")
    print(f"records: {outcome.records_dir}")
    print(selection_report(outcome.records))


def run_sweep_cli(argv=None) -> int:
    """Run a sweep from command-line arguments; 1 when any trial ended in error."""
    from fishr_tune.sweep.driver import run_sweep

    from fishr_tune.sweep.driver import sweep_exists

    opts = build_parser().parse_args(argv)
    resume = opts.resume
    if opts.resume_if_exists:
        if not opts.name:
            raise UserError("--resume-if-exists needs --name: the sweep to continue or start")
        resume = sweep_exists(opts.output, opts.name)
    outcome = run_sweep(config_from_args(opts), resume=resume, address=opts.address,
                        num_cpus=opts.num_cpus)
    print_summary(outcome)
    return 0 if outcome.counts["error"] == 0 else 1


def main(argv=None) -> int:
    """Entry point: bad input is one line on stderr and exit status 2."""
    return exit_status(run_sweep_cli, argv)


if __name__ == "__main__":
    sys.exit(main())
