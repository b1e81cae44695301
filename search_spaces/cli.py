"""Command line: show a search space, or the configuration a seed pair draws.

    python -m search_spaces --algorithm Fishr --dataset officehome
    python -m search_spaces --algorithm Fishr --dataset cmnist --hparams-seed 1 --trial-seed 0
    python -m search_spaces --algorithm Fishr --dataset VLCS --hparams-seed 3 \\
        --hparams '{"ema": 0.9}'

Bad input prints one line on stderr and exits with status 2.
"""

from __future__ import annotations

import argparse
import json

from fishr_tune.datasets.registry import get_spec
from fishr_tune.errors import CLIParser, exit_status
from search_spaces.api import canonical_algorithm, describe, parse_hparams_json, resolve_hparams


def _parser() -> argparse.ArgumentParser:
    parser = CLIParser(prog="python -m search_spaces",
                     description="Print DomainBed's hparam search space for an algorithm and "
                                 "dataset, or the configuration drawn for a seed pair (JSON).")
    parser.add_argument("--algorithm", required=True, help="e.g. Fishr, ERM, IRM (any case)")
    parser.add_argument("--dataset", required=True, help="e.g. ColoredMNIST, officehome")
    parser.add_argument("--hparams-seed", type=int, default=None,
                        help="DomainBed hparams_seed (0 = defaults); prints JSON")
    parser.add_argument("--trial-seed", type=int, default=None,
                        help="DomainBed trial_seed (default 0); prints JSON")
    parser.add_argument("--hparams", default=None,
                        help='JSON object of fixed hparams, e.g. \'{"lambda": 100}\'')
    return parser


def format_table(rows: list[tuple]) -> str:
    """Rows (name, default, distribution) as aligned text columns under a header."""
    lines = [("name", "default", "distribution")] + [(n, repr(d), t) for n, d, t in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(2)]
    return "\n".join(f"{n:<{widths[0]}}  {d:<{widths[1]}}  {t}" for n, d, t in lines)


def run_cli(argv: list[str] | None = None) -> int:
    """Print the space (or the drawn configuration); raises UserError on bad input."""
    args = _parser().parse_args(argv)
    overrides = parse_hparams_json(args.hparams) or None
    if args.hparams_seed is None and args.trial_seed is None:
        rows = describe(args.algorithm, args.dataset, overrides)  # validates before printing
        algorithm, spec = canonical_algorithm(args.algorithm), get_spec(args.dataset)
        print(f"# {algorithm} on {spec.name} (dataset group: {spec.hparams_group})")
        print(format_table(rows))
    else:
        hparams = resolve_hparams(args.algorithm, args.dataset, args.hparams_seed or 0,
                                  args.trial_seed or 0, overrides)
        print(json.dumps(hparams, indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (2 on bad input)."""
    return exit_status(run_cli, argv)
