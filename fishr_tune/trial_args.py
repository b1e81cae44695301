"""A trial's arguments and identity: what the sweep driver needs of a trial without torch.

The sweep and chunk drivers plan, validate and resume trials from these (a trial id is a hash of
its arguments and hparams); ``fishr_tune.trial``, which imports torch, runs them. Keeping them
apart keeps torch out of the drivers' start-up (README: Sweep engine design).
"""

from __future__ import annotations

import dataclasses
import hashlib

from fishr_tune.datasets.registry import get_spec
from fishr_tune.errors import UserError
from fishr_tune.options import SHARED, TRIAL_ONLY, check_values, dataclass_fields
from fishr_tune.records import encode_json
from fishr_tune.seeding import seed_hash
from fishr_tune.version import code_version
from search_spaces import canonical_algorithm


class _TrialArgsMethods:
    """Behaviour of :class:`TrialArgs`; its fields come from ``fishr_tune.options``."""

    def resolved(self) -> TrialArgs:
        """Canonical names, defaults filled in from the dataset spec, values validated."""
        check_values(self, TRIAL_ONLY, SHARED)
        spec = get_spec(self.dataset)
        # Every registered algorithm has an implementation (fishr_tune.algorithms refuses to
        # import otherwise), so the registry's name check is enough here.
        algorithm = canonical_algorithm(self.algorithm)
        test_envs = check_test_envs(spec, self.test_envs)
        steps = spec.n_steps if self.steps is None else int(self.steps)
        freq = spec.checkpoint_freq if self.checkpoint_freq is None else int(self.checkpoint_freq)
        seed = self.seed
        if seed is None:
            seed = seed_hash(spec.name, algorithm, test_envs, self.hparams_seed, self.trial_seed)
        return dataclasses.replace(self, dataset=spec.name, algorithm=algorithm,
                                   test_envs=test_envs, steps=steps, checkpoint_freq=freq,
                                   seed=int(seed))

    def as_record(self) -> dict:
        """The ``args`` column: every argument, JSON-serialisable."""
        return dataclasses.asdict(self)


TrialArgs = dataclasses.make_dataclass("TrialArgs", dataclass_fields(TRIAL_ONLY, SHARED),
                                       bases=(_TrialArgsMethods,))
TrialArgs.__module__ = __name__
TrialArgs.__doc__ = """A trial's arguments (DomainBed's train-script flags; ``None`` means the
dataset default). Fields: ``fishr_tune.options.TRIAL_ONLY`` and ``SHARED``.

``seed`` None means DomainBed's sweep rule, seed_hash(dataset, algorithm, test_envs,
hparams_seed, trial_seed), so a single trial reproduces the same job of a sweep.
``weights``: a local ImageNet weights file, ``"none"`` for random init, None for torch's hub
cache (nothing is ever downloaded).
"""


def check_test_envs(spec, test_envs) -> list[int]:
    """Sorted test envs of ``spec``, refused when out of range or leaving nothing to train on."""
    n_envs = spec.num_environments
    test_envs = sorted({int(e) for e in test_envs})
    bad = [e for e in test_envs if not 0 <= e < n_envs]
    if bad:
        raise UserError(f"test env {bad[0]} is out of range for {spec.name}: valid envs are "
                        f"0..{n_envs - 1} ({', '.join(spec.environments)})")
    if len(test_envs) >= n_envs:
        raise UserError(f"--test-envs {test_envs} leaves no training environment for "
                        f"{spec.name}: hold out at most {n_envs - 1} of {n_envs}")
    return test_envs


def trial_identity(args: TrialArgs, hparams: dict) -> str:
    """Stable trial id: md5 of what determines the trial's results (not where its data lives)."""
    ident = {"dataset": args.dataset, "algorithm": args.algorithm, "test_envs": args.test_envs,
             "trial_seed": args.trial_seed, "seed": args.seed, "steps": args.steps,
             "checkpoint_freq": args.checkpoint_freq, "holdout_fraction": args.holdout_fraction,
             "hparams": hparams}
    return hashlib.md5(encode_json(ident).encode()).hexdigest()[:16]


def identity_record(args, hparams: dict, search: str, trial_index: int | None,
                    extra_columns: dict | None = None) -> dict:
    """The columns every record of a trial shares; needs no data, so a trial that cannot load
    its data still gets a record (``args`` resolved)."""
    return {"trial_id": trial_identity(args, hparams), "dataset": args.dataset,
            "algorithm": args.algorithm, "test_envs": list(args.test_envs),
            "hparams_seed": args.hparams_seed, "trial_seed": args.trial_seed,
            "seed": args.seed, "hparams": encode_json(hparams),
            "args": encode_json(args.as_record()), "search": search,
            "trial_index": trial_index, "status": "running", "error": None,
            "code_version": code_version(), **(extra_columns or {})}
