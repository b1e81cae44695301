"""THE definition of every trial and sweep option: one table of :class:`Option` specs.

``TrialArgs`` (fishr_tune.trial_args), ``SweepConfig`` (fishr_tune.sweep.config), both command
lines (``fishr_tune.train``, ``fishr_tune.run``) and the settings a sweep hands its trials all
derive from the tables below, so an option's name, flag, type, default, help and valid range are
written once. Scopes:

* ``TRIAL_ONLY``: what identifies one trial (the train script's flags; a sweep plans these).
* ``SHARED``: the trial options a sweep sets once for all its trials.
* ``SWEEP_ONLY``: what only a sweep has (plan, search, resources, output).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Callable

from fishr_tune.errors import UserError

_NO_DEFAULT = object()


@dataclass(frozen=True)
class Option:
    """One option: a dataclass field and its command-line flag.

    Attributes:
        name: the field name (``TrialArgs``/``SweepConfig``) and, dashed, the flag.
        type: the Python type of a value (annotation), ``bool`` for a switch.
        default: the default (a list is copied per instance).
        help: the flag's help text.
        flags: extra flag spellings (``--datasets`` for ``--dataset``).
        nargs: argparse's nargs (``+`` for lists).
        parse: argparse ``type`` of one token (default: ``type``; str for JSON options).
        choices: the allowed values.
        minimum: the smallest allowed value (inclusive), or None.
        open_unit: the value must lie strictly between 0 and 1.
        cli: False for an option that has no flag (set through the Python API only).
        const: the value of the bare flag, which then takes an optional value.
    """

    name: str
    type: Any
    default: Any = None
    help: str = ""
    flags: tuple[str, ...] = ()
    nargs: str | None = None
    parse: Callable | None = None
    choices: tuple | None = None
    minimum: float | None = None
    open_unit: bool = False
    cli: bool = True
    const: Any = None

    @property
    def flag(self) -> str:
        """The main command-line spelling, ``--test-envs`` for ``test_envs``."""
        return "--" + self.name.replace("_", "-")

    def dataclass_field(self) -> tuple:
        """``(name, annotation, field)`` for ``dataclasses.make_dataclass``."""
        annotation = self.type if self.nargs is None else list
        if isinstance(self.default, (list, dict)):
            value = self.default
            return self.name, annotation, field(default_factory=lambda: type(value)(value))
        return self.name, annotation, field(default=self.default)

    def add_to(self, parser: argparse.ArgumentParser) -> None:
        """Add the flag to an argparse parser (defaults are the table's)."""
        if not self.cli:
            return
        default = list(self.default) if isinstance(self.default, list) else self.default
        if self.type is bool:
            parser.add_argument(self.flag, *self.flags, dest=self.name, action="store_true",
                                help=self.help)
            return
        extra = {"nargs": "?", "const": self.const} if self.const is not None else \
            {"nargs": self.nargs}
        parser.add_argument(self.flag, *self.flags, dest=self.name, type=self.parse or self.type,
                            default=default, choices=self.choices, help=self.help, **extra)

    def check(self, value) -> None:
        """Refuse a value outside the option's range (UserError naming the flag)."""
        if value is None or self.type is bool:
            return
        values = value if isinstance(value, (list, tuple)) else [value]
        for v in values:
            if self.choices is not None and v not in self.choices:
                raise UserError(f"{self.flag} {v}: choose one of "
                                f"{', '.join(map(str, self.choices))}")
            if self.type in (int, float) and isinstance(v, (int, float)):
                if not math.isfinite(v):
                    raise UserError(f"{self.flag} is {v}: it must be a finite number")
                if self.minimum is not None and v < self.minimum:
                    raise UserError(f"{self.flag} is {v}: it must be at least {self.minimum:g}")
                if self.open_unit and not 0.0 < v < 1.0:
                    raise UserError(f"{self.flag} is {v}: it must be strictly between 0 and 1")


TRIAL_ONLY = (
    Option("dataset", str, "colored_digits", "dataset name (see README: Datasets)"),
    Option("algorithm", str, "ERM",
           "algorithm name (README: Algorithms; python -m fishr_tune.algorithms)"),
    Option("test_envs", int, [0], "held-out environment indices", nargs="+", minimum=0),
    Option("hparams_seed", int, 0, "0 = DomainBed's defaults", minimum=0),
    Option("trial_seed", int, 0, "DomainBed's trial seed (data split, hparam draw)",
           minimum=0),
    Option("seed", int, None, "job seed (default: DomainBed's sweep rule, a hash of the job)",
           minimum=0),
    Option("device", str, "auto", "auto, cpu or cuda[:i]"),
)

SHARED = (
    Option("data_dir", str, None, "the data root (datasets that read files)"),
    Option("steps", int, None, "training steps (default: the dataset's)", minimum=1),
    Option("checkpoint_freq", int, None, "steps between evaluations (default: the dataset's)",
           minimum=1),
    Option("holdout_fraction", float, 0.2, "share of each env held out for validation",
           open_unit=True),
    Option("hparams", dict, None, "JSON object of fixed hparams", parse=str),
    Option("weights", str, None, "local ImageNet weights file for ResNets"),
    Option("num_workers", int, 0, "image loader processes", minimum=0),
)

SWEEP_ONLY = (
    Option("datasets", str, ["colored_digits"], "one or more datasets", flags=("--dataset",),
           nargs="+"),
    Option("algorithms", str, ["ERM", "Fishr"],
           "one or more algorithm names, or all (every algorithm)", nargs="+"),
    Option("test_envs", int, None, "single test envs to run (default: every env)", nargs="+",
           minimum=0),
    Option("test_env_pairs", bool, False,
           "add the [i, j] pair jobs that leave-one-domain-out selection needs"),
    Option("search", str, "random", "random (DomainBed's draws) or bayes (Optuna TPE)",
           choices=("random", "bayes")),
    Option("num_samples", int, 4, "hparam configurations per study", minimum=1),
    Option("trial_seeds", int, 2, "trial seeds 0..N-1 per study", minimum=1),
    Option("include_defaults", bool, False,
           "random search: hparams seeds 0..N-1 (0 = defaults) instead of 1..N"),
    Option("startup_trials", int, None,
           "bayes: random proposals before TPE (default: a quarter of the budget)", minimum=1),
    Option("objective", str, "iid", "bayes: what TPE maximises (oracle peeks at the test env)",
           choices=("iid", "oracle")),
    Option("optuna_storage", str, None,
           "bayes: an Optuna RDB URL (default: a journal file in the sweep folder)"),
    Option("output", str, "results", "local path or pyarrow filesystem URI"),
    Option("name", str, "", "sweep name (default: dataset-search-timestamp)"),
    Option("cpus_per_trial", float, 1.0, "CPUs of one trial", minimum=0.01),
    Option("gpus_per_trial", float, 0.0, "GPUs of one trial (fractions share a GPU)",
           minimum=0),
    Option("max_concurrent", int, None, "most trials running at once (default: the cluster)",
           minimum=1),
    Option("max_failures", int, 1, "retries of a trial that raised", minimum=0),
    Option("seed", int, 0, "seed of the TPE samplers", minimum=0),
    Option("keep_checkpoints", str, None,
           "keep the final model weights of every trial (all) or of each study's selected "
           "trial (selected); the bare flag means all; default: none",
           choices=("all", "selected"), const="all"),
    Option("chunk_trials", int, 1000, "most trials per chunk (one Tuner, whole studies)",
           minimum=1),
    Option("chunks_in_flight", int, 2, "chunks running at once (covers a chunk's tail)",
           minimum=1),
    Option("jobs", list, None, "explicit jobs (Python API): override the plan", cli=False),
)


def dataclass_fields(*tables) -> list[tuple]:
    """Fields of a dataclass holding the options of ``tables`` (later tables win on a name)."""
    by_name = {}
    for table in tables:
        for option in table:
            by_name[option.name] = option
    return [option.dataclass_field() for option in by_name.values()]


def add_flags(parser: argparse.ArgumentParser, *tables, skip: tuple[str, ...] = ()) -> None:
    """Add the flags of every option of ``tables`` to ``parser``."""
    for table in tables:
        for option in table:
            if option.name not in skip:
                option.add_to(parser)


def add_no_pretrained(parser: argparse.ArgumentParser) -> None:
    """``--no-pretrained``, which both CLIs map onto ``weights`` with :func:`weights_arg`."""
    parser.add_argument("--no-pretrained", action="store_true", help="ResNets: random init")


def weights_arg(weights: str | None, no_pretrained: bool) -> str | None:
    """``--no-pretrained`` wins; otherwise a path (checked later) or None for the hub cache."""
    return "none" if no_pretrained else weights


def check_values(obj, *tables) -> None:
    """Check every option value of a dataclass instance against its table (UserError)."""
    for table in tables:
        for option in table:
            option.check(getattr(obj, option.name))


def values(obj, table) -> dict:
    """``{name: value}`` of the options of ``table`` held by a dataclass instance."""
    return {option.name: getattr(obj, option.name) for option in table}


def from_namespace(cls, opts: argparse.Namespace, **overrides):
    """Build dataclass ``cls`` from parsed flags (fields without a flag keep their default)."""
    names = {f.name for f in dataclasses.fields(cls)}
    kwargs = {k: v for k, v in vars(opts).items() if k in names}
    kwargs.update(overrides)
    return cls(**kwargs)
