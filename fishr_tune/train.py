"""Single-trial CLI, DomainBed's train script with Parquet records.

    python -m fishr_tune.train --dataset colored_digits --algorithm Fishr --test-envs 2 \\
        --hparams-seed 0 --trial-seed 0 --output results/debug

Prints a progress line per checkpoint and writes ``<output>/records/<trial_id>.parquet``
(atomically, rewritten at every checkpoint, with the final status at the end). With
``--save-state`` the full trial state is saved at every checkpoint and ``--resume`` continues it.
"""

from __future__ import annotations

import argparse
import json
import sys

from fishr_tune.errors import CLIParser, UserError, exit_status
from fishr_tune.options import (SHARED, TRIAL_ONLY, add_flags, add_no_pretrained,
                                from_namespace, weights_arg)
from fishr_tune.records import env_acc_column, join, records_path, write_records
from fishr_tune.trial import (Trial, TrialArgs, TrialDiverged, load_trial_state,
                              save_trial_state)

STATE_DIR = "state"


def progress_line(record: dict, n_envs: int) -> str:
    """One human-readable line per checkpoint: step, losses, every env's in/out accuracy."""
    metrics = [f"{k} {record[k]:.4f}" for k in ("loss", "nll", "penalty") if k in record]
    envs = []
    for env in range(n_envs):
        accs = [record.get(env_acc_column(env, s)) for s in ("in", "out")]
        envs.append(f"env{env} " + "/".join("-" if a is None else f"{a:.3f}" for a in accs))
    return (f"step {record['step']:>5} | epoch {record['epoch']:.2f} | " + " ".join(metrics)
            + f" | {record['step_time'] * 1000:.1f} ms/step | " + " ".join(envs))


def build_parser() -> argparse.ArgumentParser:
    """The flags (DomainBed's train-script names where it has one)."""
    p = CLIParser(prog="python -m fishr_tune.train", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_flags(p, TRIAL_ONLY, SHARED)
    p.add_argument("--output", default="results/train")
    add_no_pretrained(p)
    p.add_argument("--save-state", action="store_true",
                   help="save the full trial state at every checkpoint")
    p.add_argument("--resume", action="store_true", help="continue from a saved state")
    p.add_argument("--quiet", action="store_true")
    return p


def run_trial_cli(argv=None) -> int:
    """Run one trial from command-line arguments; returns the exit status."""
    from search_spaces import parse_hparams_json, resolve_hparams

    opts = build_parser().parse_args(argv)
    args = from_namespace(TrialArgs, opts, hparams=parse_hparams_json(opts.hparams),
                          weights=weights_arg(opts.weights, opts.no_pretrained)).resolved()
    hparams = resolve_hparams(args.algorithm, args.dataset, args.hparams_seed, args.trial_seed,
                              args.hparams)
    trial = Trial(args, hparams, search="single", trial_index=args.hparams_seed)
    out_file = records_path(opts.output, trial.trial_id)
    state_file = join(opts.output, STATE_DIR, f"{trial.trial_id}.pt")
    if opts.resume:
        if not load_trial_state(trial, state_file):
            raise UserError(f"no saved state at {state_file}: run once with --save-state "
                            "before --resume")
    if not opts.quiet:
        print(f"trial {trial.trial_id}: {args.algorithm} on {args.dataset}, test envs "
              f"{args.test_envs}, hparams {json.dumps(hparams, sort_keys=True)}", flush=True)

    def on_checkpoint(trial_, record):
        if not opts.quiet:
            print(progress_line(record, len(trial_.splits)), flush=True)
        write_records(trial_.final_records("running"), out_file)
        if opts.save_state:
            save_trial_state(trial_, state_file)

    try:
        trial.run(on_checkpoint)
    except TrialDiverged as exc:
        write_records(trial.final_records("diverged", str(exc)), out_file)
        print(f"error: trial diverged: {exc}; records written to {out_file}", file=sys.stderr)
        return 1
    write_records(trial.final_records("ok"), out_file)
    if not opts.quiet:
        print(f"records: {out_file}")
    return 0


def main(argv=None) -> int:
    """Entry point: bad input is one line on stderr and exit status 2."""
    return exit_status(run_trial_cli, argv)


if __name__ == "__main__":
    sys.exit(main())
