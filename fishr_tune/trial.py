"""One DomainBed trial: data, algorithm, the training loop, evaluation, records, save/restore.

Used by the single-trial CLI (``python -m fishr_tune.train``) and by the sweep's Ray Tune
trainable, so one trial and a sweep produce the same records.
"""

from __future__ import annotations

import math
import random
import time

import numpy as np
import torch

from fishr_tune.algorithms import get_algorithm_class
from fishr_tune.datasets import build_environments, get_spec, load_raw, split_environments
from fishr_tune.errors import UserError
from fishr_tune.records import env_acc_column, resolve_filesystem, write_atomically
from fishr_tune.seeding import seed_hash
# Re-exported: the trial's arguments and identity live in the torch-free trial_args.
from fishr_tune.trial_args import (TrialArgs, check_test_envs, identity_record,  # noqa: F401
                                   trial_identity)

EVAL_BATCH_SIZE = 64  # DomainBed's; algorithms whose predict depends on its batch use it always
TENSOR_EVAL_BATCH_SIZE = 4096  # others have no batch-dependent layers at eval: exact and faster


class TrialDiverged(RuntimeError):
    """An update returned a NaN or infinite value: the trial cannot go on."""


def pick_device(name: str) -> torch.device:
    """``auto`` = CUDA when available (Ray sets CUDA_VISIBLE_DEVICES per trial), else CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"--device {name} requested but no CUDA GPU is visible: use --device cpu")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch, and ask cuDNN for deterministic kernels (DomainBed does)."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False


def step_indices(seed: int, env: int, step: int, size: int, batch_size: int) -> torch.Tensor:
    """Minibatch indices of training env ``env`` at ``step``: sampled with replacement.

    A pure function of (seed, env, step) so that a restored trial draws exactly the batches it
    would have drawn, with no sampler state to save. Unlike DomainBed's epoch-based sampler it
    also works when batch_size exceeds the split size (DomainBed would yield no batch).
    """
    generator = torch.Generator().manual_seed(seed_hash(seed, env, step))
    return torch.randint(size, (batch_size,), generator=generator)


class _StepSampler(torch.utils.data.Sampler):
    """Batch sampler for image datasets: the batches of ``step_indices`` from ``start`` on."""

    def __init__(self, seed, env, size, batch_size, start, stop):
        self.args = (seed, env, size, batch_size)
        self.start, self.stop = start, stop

    def __iter__(self):
        seed, env, size, batch_size = self.args
        for step in range(self.start, self.stop):
            yield step_indices(seed, env, step, size, batch_size).tolist()

    def __len__(self):
        return self.stop - self.start


def accuracy(algorithm, split, device, num_workers: int = 0) -> float | None:
    """Unweighted accuracy of ``algorithm`` on a split (None for an empty split).

    In-memory splits go in batches of ``TENSOR_EVAL_BATCH_SIZE``, unless the algorithm declares
    ``EVAL_BATCH_DEPENDENT`` (ARM, MTL): then, like image splits, in DomainBed's batches of 64.
    """
    if len(split) == 0:
        return None
    correct = 0
    if hasattr(split, "x"):
        size = (EVAL_BATCH_SIZE if getattr(algorithm, "EVAL_BATCH_DEPENDENT", False)
                else TENSOR_EVAL_BATCH_SIZE)
        batches = ((split.x[i:i + size], split.y[i:i + size]) for i in range(0, len(split), size))
    else:
        batches = torch.utils.data.DataLoader(split, batch_size=EVAL_BATCH_SIZE,
                                              num_workers=num_workers)
    for x, y in batches:
        logits = algorithm.predict(x.to(device))
        if logits.shape[1] == 1:  # a single logit: class 1 when positive (DomainBed)
            pred = (logits.squeeze(1) > 0).long()
        else:
            pred = logits.argmax(1)
        correct += (pred.cpu() == y).sum().item()
    return correct / len(split)


class Trial:
    """A DomainBed trial that can run, report checkpoints, and save/restore its full state.

    Args:
        args: the trial's arguments (resolved here).
        hparams: the fully resolved hparams (``search_spaces.resolve_hparams`` or a searcher).
        raw: the dataset's seed-independent payload (``load_raw``); loaded here when None, but
            a sweep passes the copy its worker process keeps (loaded once per worker).
        search: ``single``, ``random`` or ``bayes`` (a record column).
        trial_index: proposal order within its study (a record column).
    """

    def __init__(self, args: TrialArgs, hparams: dict, raw=None, search: str = "single",
                 trial_index: int | None = None):
        self.args = args.resolved()
        self.spec = get_spec(self.args.dataset)
        self.hparams = dict(hparams)
        self.search, self.trial_index = search, trial_index
        self.trial_id = trial_identity(self.args, self.hparams)
        self.device = pick_device(self.args.device)
        seed_everything(self.args.seed)
        if raw is None:
            raw = load_raw(self.spec, self.args.data_dir)
        envs = build_environments(self.spec, raw, self.args.seed, self.args.test_envs,
                                  self.hparams)
        self.splits = split_environments(envs, self.args.holdout_fraction, self.args.trial_seed)
        self.train_envs = [i for i in range(len(envs)) if i not in self.args.test_envs]
        algorithm_class = get_algorithm_class(self.args.algorithm)
        self.algorithm = algorithm_class(self.spec.input_shape, self.spec.num_classes,
                                         len(self.train_envs), self.hparams,
                                         weights=self.args.weights).to(self.device)
        batch_size = int(self.hparams["batch_size"])
        self.steps_per_epoch = min(len(split_in) / batch_size for split_in, _ in self.splits)
        self.next_step = 0
        self.records: list[dict] = []
        self.extra_columns: dict = {}  # e.g. the sweep's node_id
        self.elapsed_s = 0.0
        self._reset_averages()

    # ---- training -------------------------------------------------------------------------
    def _reset_averages(self):
        # Per key, as DomainBed's train loop: an algorithm may return different keys on
        # different steps (DANN alternates disc_loss and gen_loss).
        self._sums: dict[str, float] = {}
        self._counts: dict[str, int] = {}

    def _minibatch_streams(self):
        """One iterator per training env yielding (x, y) for steps next_step..steps-1."""
        batch_size = int(self.hparams["batch_size"])
        streams = []
        for env in self.train_envs:
            split = self.splits[env][0]
            if hasattr(split, "x"):
                streams.append(self._tensor_stream(env, split, batch_size))
            else:
                sampler = _StepSampler(self.args.seed, env, len(split), batch_size,
                                       self.next_step, self.args.steps)
                streams.append(iter(torch.utils.data.DataLoader(
                    split, batch_sampler=sampler, num_workers=self.args.num_workers,
                    pin_memory=self.device.type == "cuda")))
        return streams

    def _tensor_stream(self, env, split, batch_size):
        for step in range(self.next_step, self.args.steps):
            idx = step_indices(self.args.seed, env, step, len(split), batch_size)
            yield split.x[idx], split.y[idx]

    def run(self, on_checkpoint=None) -> list[dict]:
        """Train from ``next_step`` to the end; evaluate at every checkpoint.

        ``on_checkpoint(trial, record)`` is called after each checkpoint record is appended
        (the CLI prints and writes Parquet there; the sweep reports to Ray Tune).

        Raises:
            TrialDiverged: an update returned NaN or inf (the record of the failure is the
                caller's job, see :meth:`final_records`).
        """
        streams = self._minibatch_streams()
        resumed_at = time.perf_counter() - self.elapsed_s
        for step in range(self.next_step, self.args.steps):
            start = time.perf_counter()
            minibatches = [(x.to(self.device, non_blocking=True), y.to(self.device))
                           for x, y in (next(s) for s in streams)]
            values = self.algorithm.update(minibatches)
            values["step_time"] = time.perf_counter() - start
            for key, value in values.items():
                if not math.isfinite(value):
                    raise TrialDiverged(f"{key} became {value} at step {step}")
                self._sums[key] = self._sums.get(key, 0.0) + value
                self._counts[key] = self._counts.get(key, 0) + 1
            self.next_step = step + 1
            if step % self.args.checkpoint_freq == 0 or step == self.args.steps - 1:
                record = self.checkpoint_record(step)
                self.elapsed_s = record["elapsed_s"] = time.perf_counter() - resumed_at
                self.records.append(record)
                if on_checkpoint is not None:
                    on_checkpoint(self, record)
        return self.records

    # ---- records ----------------------------------------------------------------------------
    def base_record(self) -> dict:
        """The columns every record of this trial shares."""
        return identity_record(self.args, self.hparams, self.search, self.trial_index,
                               self.extra_columns)

    def checkpoint_record(self, step: int) -> dict:
        """Evaluate every env's in/out split and build the checkpoint's record."""
        record = self.base_record()
        record.update({key: total / self._counts[key] for key, total in self._sums.items()})
        record.update(step=step, epoch=step / self.steps_per_epoch, mem_gb=self._peak_mem_gb())
        self.algorithm.eval()
        with torch.no_grad():
            for env, (split_in, split_out) in enumerate(self.splits):
                for name, split in (("in", split_in), ("out", split_out)):
                    record[env_acc_column(env, name)] = accuracy(
                        self.algorithm, split, self.device, self.args.num_workers)
        self.algorithm.train()
        self._reset_averages()
        return record

    def _peak_mem_gb(self) -> float:
        if self.device.type != "cuda":
            return 0.0
        return torch.cuda.max_memory_allocated(self.device) / 2**30

    def final_records(self, status: str = "ok", error: str | None = None) -> list[dict]:
        """The trial's records with its final status; one record even if none was evaluated."""
        records = self.records or [self.base_record()]
        return [dict(r, status=status, error=error) for r in records]

    # ---- save / restore ---------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Everything needed to continue exactly: step, algorithm (optimizer, EMAs), averages,
        records so far, RNG states."""
        state = {"trial_id": self.trial_id, "next_step": self.next_step,
                 "algorithm": self.algorithm.state(), "sums": dict(self._sums),
                 "counts": dict(self._counts), "records": list(self.records),
                 "elapsed_s": self.elapsed_s,
                 "rng": {"torch": torch.get_rng_state(), "numpy": np.random.get_state(),
                         "python": random.getstate()}}
        if self.device.type == "cuda":
            state["rng"]["cuda"] = torch.cuda.get_rng_state(self.device)
        return state

    def load_state_dict(self, state: dict) -> None:
        """Restore a state from :meth:`state_dict` (of the same trial)."""
        if state["trial_id"] != self.trial_id:
            raise UserError(f"saved state belongs to trial {state['trial_id']}, not "
                            f"{self.trial_id}: use the same arguments and hparams to resume")
        self.algorithm.load_state(state["algorithm"])
        self.next_step = state["next_step"]
        self._sums, self._counts = dict(state["sums"]), dict(state["counts"])
        self.records = list(state["records"])
        self.elapsed_s = state["elapsed_s"]
        torch.set_rng_state(state["rng"]["torch"])
        np.random.set_state(state["rng"]["numpy"])
        random.setstate(state["rng"]["python"])
        if "cuda" in state["rng"] and self.device.type == "cuda":
            torch.cuda.set_rng_state(state["rng"]["cuda"], self.device)


def save_trial_state(trial: Trial, path: str) -> None:
    """Write the trial's full state to ``path`` (local or URI) atomically."""
    state = trial.state_dict()
    write_atomically(path, lambda stream: torch.save(state, stream))


def load_trial_state(trial: Trial, path: str) -> bool:
    """Restore the trial from ``path`` if there is a state file there; whether there was."""
    fs, local = resolve_filesystem(path)
    try:
        with fs.open_input_file(local) as f:
            state = torch.load(f, weights_only=False)
    except (FileNotFoundError, OSError):
        return False
    trial.load_state_dict(state)
    return True
