"""A sweep's settings: one dataclass, validated once, stored as ``<sweep>/sweep.json``.

A resumed sweep reloads its settings from that file, so ``--resume --name N`` needs no other flag.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from dataclasses import dataclass, field

from fishr_tune.datasets.registry import DEFAULT_DATASET, get_spec
from fishr_tune.errors import UserError
from fishr_tune.records import join, resolve_filesystem, write_atomically

SWEEP_FILE = "sweep.json"
SEARCHES = ("random", "bayes")
OBJECTIVES = ("iid", "oracle")

# The embedded default: 2 algorithms x 3 test envs x 2 trial seeds x 4 hparams = 48 trials of
# 300 steps: 2.5 minutes on a quiet 2-core machine, within 10 under load (README has the figure).
DEFAULT_ALGORITHMS = ["ERM", "Fishr"]
DEFAULT_NUM_SAMPLES = 4
DEFAULT_TRIAL_SEEDS = 2
DEFAULT_EMBEDDED_STEPS = 300


@dataclass
class SweepConfig:
    """Everything that defines a sweep (CLI flags map one to one)."""

    datasets: list[str] = field(default_factory=lambda: [DEFAULT_DATASET])
    algorithms: list[str] = field(default_factory=lambda: list(DEFAULT_ALGORITHMS))
    test_envs: list[int] | None = None
    test_env_pairs: bool = False
    search: str = "random"
    num_samples: int = DEFAULT_NUM_SAMPLES
    trial_seeds: int = DEFAULT_TRIAL_SEEDS
    include_defaults: bool = False
    steps: int | None = None
    checkpoint_freq: int | None = None
    holdout_fraction: float = 0.2
    hparams: dict | None = None
    objective: str = "iid"
    startup_trials: int | None = None
    data_dir: str | None = None
    weights: str | None = None
    num_workers: int = 0
    output: str = "results"
    name: str = ""
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    max_concurrent: int | None = None
    max_failures: int = 1
    seed: int = 0
    jobs: list[dict] | None = None  # explicit jobs (Python API): overrides the plan

    @property
    def sweep_dir(self) -> str:
        """``<output>/<name>``: Tune's experiment folder, our records and Optuna's storage."""
        return join(self.output, self.name)

    def resolved(self) -> "SweepConfig":
        """Canonical names, a default name, and every value checked (UserError otherwise)."""
        from search_spaces import canonical_algorithm, validate_overrides

        from fishr_tune.algorithms import get_algorithm_class

        datasets = [get_spec(d).name for d in self.datasets]
        algorithms = [canonical_algorithm(a) for a in self.algorithms]
        for algorithm in algorithms:
            get_algorithm_class(algorithm)
            for dataset in datasets:
                validate_overrides(algorithm, dataset, self.hparams or {})
        for flag, value in (("--num-samples", self.num_samples),
                            ("--trial-seeds", self.trial_seeds)):
            if value < 1:
                raise UserError(f"{flag} is {value}: it must be at least 1")
        for flag, value in (("--steps", self.steps), ("--checkpoint-freq", self.checkpoint_freq)):
            if value is not None and value < 1:
                raise UserError(f"{flag} is {value}: it must be at least 1")
        if self.search not in SEARCHES:
            raise UserError(f"--search {self.search}: choose one of {', '.join(SEARCHES)}")
        if self.objective not in OBJECTIVES:
            raise UserError(f"--objective {self.objective}: choose one of {', '.join(OBJECTIVES)}")
        if self.cpus_per_trial <= 0 or self.gpus_per_trial < 0:
            raise UserError("--cpus-per-trial must be > 0 and --gpus-per-trial >= 0")
        if self.max_concurrent is not None and self.max_concurrent < 1:
            raise UserError(f"--max-concurrent is {self.max_concurrent}: it must be at least 1")
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
