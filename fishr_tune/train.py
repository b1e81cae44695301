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

import torch

from fishr_tune.errors import CLIParser, UserError, exit_status
from fishr_tune.records import (env_acc_column, join, records_path, resolve_filesystem,
                                write_atomically, write_records)
from fishr_tune.trial import Trial, TrialArgs, TrialDiverged

STATE_DIR = "state"


def weights_arg(weights: str | None, no_pretrained: bool) -> str | None:
    """``--no-pretrained`` wins; otherwise a path (checked later) or None for the hub cache."""
    return "none" if no_pretrained else weights


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
    p.add_argument("--dataset", default="colored_digits")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--algorithm", default="ERM")
    p.add_argument("--test-envs", type=int, nargs="+", default=[0])
    p.add_argument("--hparams", default=None, help="JSON object of fixed hparams")
    p.add_argument("--hparams-seed", type=int, default=0, help="0 = DomainBed's defaults")
    p.add_argument("--trial-seed", type=int, default=0)
    p.add_argument("--seed", type=int, default=None,
                   help="job seed (default: DomainBed's sweep rule, a hash of the job)")
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--checkpoint-freq", type=int, default=None)
    p.add_argument("--holdout-fraction", type=float, default=0.2)
    p.add_argument("--output", default="results/train")
    p.add_argument("--weights", default=None, help="local ImageNet weights file for ResNets")
    p.add_argument("--no-pretrained", action="store_true")
    p.add_argument("--device", default="auto")
    p.add_argument("--num-workers", type=int, default=0, help="image loader processes")
    p.add_argument("--save-state", action="store_true",
                   help="save the full trial state at every checkpoint")
    p.add_argument("--resume", action="store_true", help="continue from a saved state")
    p.add_argument("--quiet", action="store_true")
    return p


def run_trial_cli(argv=None) -> int:
    """Run one trial from command-line arguments; returns the exit status."""
    from search_spaces import parse_hparams_json, resolve_hparams

    opts = build_parser().parse_args(argv)
    args = TrialArgs(dataset=opts.dataset, algorithm=opts.algorithm, test_envs=opts.test_envs,
                     data_dir=opts.data_dir, hparams_seed=opts.hparams_seed,
                     trial_seed=opts.trial_seed, seed=opts.seed, steps=opts.steps,
                     checkpoint_freq=opts.checkpoint_freq,
                     holdout_fraction=opts.holdout_fraction,
                     hparams=parse_hparams_json(opts.hparams),
                     weights=weights_arg(opts.weights, opts.no_pretrained), device=opts.device,
                     num_workers=opts.num_workers).resolved()
    hparams = resolve_hparams(args.algorithm, args.dataset, args.hparams_seed, args.trial_seed,
                              args.hparams)
    trial = Trial(args, hparams, search="single", trial_index=args.hparams_seed)
    out_file = records_path(opts.output, trial.trial_id)
    state_file = join(opts.output, STATE_DIR, f"{trial.trial_id}.pt")
    if opts.resume:
        _load_state(trial, state_file)
    if not opts.quiet:
        print(f"trial {trial.trial_id}: {args.algorithm} on {args.dataset}, test envs "
              f"{args.test_envs}, hparams {json.dumps(hparams, sort_keys=True)}", flush=True)

    def on_checkpoint(trial_, record):
        if not opts.quiet:
            print(progress_line(record, len(trial_.splits)), flush=True)
        write_records(trial_.final_records("running"), out_file)
        if opts.save_state:
            _save_state(trial_, state_file)

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


def _save_state(trial: Trial, path: str) -> None:
    state = trial.state_dict()
    write_atomically(path, lambda stream: torch.save(state, stream))


def _load_state(trial: Trial, path: str) -> None:
    fs, local = resolve_filesystem(path)
    try:
        with fs.open_input_file(local) as f:
            state = torch.load(f, weights_only=False)
    except (FileNotFoundError, OSError):
        raise UserError(f"no saved state at {path}: run once with --save-state before "
                        "--resume") from None
    trial.load_state_dict(state)


def main(argv=None) -> int:
    """Entry point: bad input is one line on stderr and exit status 2."""
    return exit_status(run_trial_cli, argv)


if __name__ == "__main__":
    sys.exit(main())
