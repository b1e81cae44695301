"""A sweep's settings: one dataclass, validated once, stored as ``<sweep>/sweep.json``.

A resumed sweep reloads its settings from that file, so ``--resume --name N`` needs no other flag.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import time

from fishr_tune.datasets.registry import get_spec
from fishr_tune.errors import UserError
from fishr_tune.options import SHARED, SWEEP_ONLY, check_values, dataclass_fields
from fishr_tune.records import join, resolve_filesystem, write_atomically


def _option(name: str):
    return next(o for o in SWEEP_ONLY if o.name == name)


SWEEP_FILE = "sweep.json"
SEARCHES = _option("search").choices
OBJECTIVES = _option("objective").choices

# The embedded default: 2 algorithms x 3 test envs x 2 trial seeds x 4 hparams = 48 trials of
# 300 steps: about 5 minutes on the quiet 2-core machine (README has the figure).
DEFAULT_ALGORITHMS = _option("algorithms").default
ALL_ALGORITHMS = "all"


def expand_algorithms(names) -> list[str]:
    """Canonical algorithm names; ``all`` stands for every registered algorithm (DomainBed's
    order), as DomainBed's sweep does when no algorithm is named."""
    from search_spaces import algorithm_names, canonical_algorithm

    expanded = []
    for name in names:
        batch = algorithm_names() if str(name).lower() == ALL_ALGORITHMS else \
            [canonical_algorithm(name)]
        expanded.extend(a for a in batch if a not in expanded)
    return expanded
DEFAULT_NUM_SAMPLES = _option("num_samples").default
DEFAULT_TRIAL_SEEDS = _option("trial_seeds").default
DEFAULT_EMBEDDED_STEPS = 300
# Characters a sweep name may hold: it is one folder under --output, never a path.
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._=-]*$")


def check_name(name: str) -> None:
    """Refuse a sweep name that is not one plain folder (``../x`` would leave --output)."""
    if not NAME_PATTERN.match(name) or name in (".", ".."):
        raise UserError(f"--name {name!r} is not a plain folder name: use letters, digits, "
                        "'.', '_', '-' or '=' (the sweep is created under --output)")


class _SweepConfigMethods:
    """Behaviour of :class:`SweepConfig`; its fields come from ``fishr_tune.options``."""

    @property
    def sweep_dir(self) -> str:
        """``<output>/<name>``: Tune's experiment folder, our records and Optuna's storage."""
        return join(self.output, self.name)

    def resolved(self) -> "SweepConfig":
        """Canonical names, a default name, and every value checked (UserError otherwise)."""
        from search_spaces import validate_overrides

        from fishr_tune.trial_args import check_test_envs

        check_values(self, SHARED, SWEEP_ONLY)
        datasets = [get_spec(d).name for d in self.datasets]
        # Canonical registry names (unknown ones refused); every registered algorithm has an
        # implementation, and checking it here would import torch into the driver.
        algorithms = expand_algorithms(self.algorithms)
        for algorithm in algorithms:
            for dataset in datasets:
                validate_overrides(algorithm, dataset, self.hparams or {})
        if self.test_envs is not None:
            for dataset in datasets:  # every listed env must exist in every dataset
                for env in self.test_envs:
                    check_test_envs(get_spec(dataset), [env])
        if self.name:
            check_name(self.name)
        if self.search == "bayes" and self.optuna_storage and "://" not in self.optuna_storage:
            raise UserError(f"--optuna-storage {self.optuna_storage} is not a database URL: pass "
                            "e.g. postgresql://host/db or sqlite:///path.db, or leave it out")
        steps = self.steps
        if steps is None and all(get_spec(d).kind == "embedded" for d in datasets):
            steps = DEFAULT_EMBEDDED_STEPS
        name = self.name or f"{datasets[0]}-{self.search}-{time.strftime('%Y%m%d-%H%M%S')}"
        output = self.output if "://" in self.output else \
            os.path.abspath(os.path.expanduser(self.output))
        return dataclasses.replace(self, datasets=datasets, algorithms=algorithms, steps=steps,
                                   name=name, output=output)

    def save(self) -> None:
        """Write ``sweep.json`` (atomically) into the sweep folder."""
        text = json.dumps(dataclasses.asdict(self), indent=1, sort_keys=True).encode()
        write_atomically(join(self.sweep_dir, SWEEP_FILE), lambda stream: stream.write(text))

    @classmethod
    def load(cls, output: str, name: str) -> "SweepConfig":
        """Settings of an existing sweep (UserError when there is none)."""
        fs, folder = resolve_filesystem(join(output, name))
        try:
            with fs.open_input_stream(folder + "/" + SWEEP_FILE) as f:
                data = json.loads(f.read())
        except (FileNotFoundError, OSError):
            raise UserError(f"no sweep named '{name}' under {output}: check --name and --output, "
                            "or start it without --resume") from None
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


SweepConfig = dataclasses.make_dataclass("SweepConfig", dataclass_fields(SHARED, SWEEP_ONLY),
                                         bases=(_SweepConfigMethods,))
SweepConfig.__module__ = __name__
SweepConfig.__doc__ = """Everything that defines a sweep: the options of
``fishr_tune.options.SHARED`` and ``SWEEP_ONLY`` (CLI flags map one to one)."""
