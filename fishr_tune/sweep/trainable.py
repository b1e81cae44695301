"""The Ray Tune function trainable: one sweep trial around the training core.

At every checkpoint it writes the trial's records as Parquet under ``<sweep>/records/`` (status
``running``; ``ok``, ``error`` or ``diverged`` at the end) and its full training state to
``<sweep>/state/<trial_id>.pt``, then reports the objective to Tune. A retried or resumed trial
continues from that state file; a finished trial's state is deleted (its records are the
result), and ``keep_checkpoints`` keeps its final model weights under ``<sweep>/models/``.

The data is loaded where the trial runs, once per worker process (reused actors keep it): the
driver never reads it, and a node that lacks it fails the trial with a reason naming the node.

The chunk driver imports this module (to plan, resume and hand Tune the trainable) but never
trains: torch and the training core are imported inside the worker-side functions, so a chunk
driver starts without them (README: Sweep engine design).
"""

from __future__ import annotations

import sys
import traceback

import ray
from ray import tune

from fishr_tune.datasets import get_spec
from fishr_tune.errors import UserError, one_line
from fishr_tune.options import SHARED
from fishr_tune.records import (join, read_file_table, records_path, resolve_filesystem,
                                write_atomically, write_records)
from fishr_tune.sweep.plan import Job
from fishr_tune.trial_args import TrialArgs, identity_record, trial_identity

OBJECTIVE = "objective"
STATE_DIR = "state"
MODELS_DIR = "models"
FINAL_STATUSES = ("ok", "diverged")  # a resumed sweep reruns neither; errors are retried
_RAW_CACHE: dict = {}  # (dataset, data_dir) -> load_raw result, per worker process


class DataUnavailable(RuntimeError):
    """The node running a trial cannot read the trial's data (message names node and path)."""


def objective_value(record: dict, test_envs, n_envs: int, objective: str) -> float | None:
    """The value a searcher maximises, from one checkpoint record.

    ``iid`` (default): training-domain validation; ``oracle``: test-domain validation, only when
    asked for. Both are ``analysis.selection``'s method objects, the rules the tables use.
    """
    from analysis.selection import objective_method

    return objective_method(objective).checkpoint_value(record, test_envs, n_envs)


def trial_objective(records: list[dict], test_envs, n_envs: int, objective: str) -> float | None:
    """The objective of a trial so far (restored records included): the value at the
    checkpoint the method selects (``iid``: the best one, ``oracle``: the last one)."""
    from analysis.selection import objective_method

    return objective_method(objective).trial_value(records, test_envs, n_envs)


def trial_settings(config) -> dict:
    """What every trial of a sweep shares: the SHARED trial options and the engine's values."""
    return {**{o.name: getattr(config, o.name) for o in SHARED}, "search": config.search,
            "objective": config.objective, "sweep_dir": config.sweep_dir,
            "cpus_per_trial": config.cpus_per_trial,
            "keep_checkpoints": config.keep_checkpoints}


def job_trial_args(job: Job, settings: dict) -> TrialArgs:
    """The resolved TrialArgs of a job (no data is read)."""
    study = job.study
    shared = {o.name: settings[o.name] for o in SHARED}
    return TrialArgs(dataset=study.dataset, algorithm=study.algorithm,
                     test_envs=list(study.test_envs), hparams_seed=job.hparams_seed,
                     trial_seed=study.trial_seed, seed=job.seed, **shared).resolved()


def job_hparams(job: Job, settings: dict) -> dict:
    """The job's resolved hparams: DomainBed's draw, or the proposal merged with fixed values."""
    from search_spaces import resolve_hparams

    study = job.study
    if job.hparams is not None:
        return resolve_hparams(study.algorithm, study.dataset, 0, study.trial_seed,
                               {**job.hparams, **(settings["hparams"] or {})})
    return resolve_hparams(study.algorithm, study.dataset, job.hparams_seed, study.trial_seed,
                           settings["hparams"])


def job_trial_id(job: Job, settings: dict) -> str:
    """The trial id the job's records will carry (what resume looks up)."""
    return trial_identity(job_trial_args(job, settings), job_hparams(job, settings))


def state_path(sweep_dir: str, trial_id: str) -> str:
    """Where a running trial's training state lives."""
    return join(sweep_dir, STATE_DIR, f"{trial_id}.pt")


def model_path(sweep_dir: str, trial_id: str) -> str:
    """Where ``--keep-checkpoints`` keeps a finished trial's final model weights."""
    return join(sweep_dir, MODELS_DIR, f"{trial_id}.pt")


def node_label() -> str:
    """This node as a person finds it: IP address and the start of its Ray node id."""
    context = ray.get_runtime_context()
    return f"{ray.util.get_node_ip_address()} (node {context.get_node_id()[:12]})"


def worker_raw(dataset: str, data_dir: str | None):
    """The dataset's raw payload, loaded once per worker process (reused actors keep it).

    Raises:
        DataUnavailable: this node lacks the data (one line: the node, the path, the fix).
    """
    from fishr_tune.datasets import load_raw  # the loaders import torch: workers only

    key = (dataset, data_dir)
    if key not in _RAW_CACHE:
        try:
            _RAW_CACHE[key] = load_raw(get_spec(dataset), data_dir)
        except UserError as exc:
            raise DataUnavailable(f"node {node_label()} cannot read {dataset}: "
                                  f"{one_line(exc)}") from None
    return _RAW_CACHE[key]


def make_trial(job: Job, settings: dict):
    """Build the training-core trial (``fishr_tune.trial.Trial``) of one job, its data loaded
    on this worker."""
    from fishr_tune.trial import Trial

    args = job_trial_args(job, settings)
    raw = worker_raw(args.dataset, args.data_dir)
    return Trial(args, job_hparams(job, settings), raw=raw, search=settings["search"],
                 trial_index=job.trial_index)


def read_file_records(path: str) -> list[dict] | None:
    """The records of one trial file as dicts, None when there is none."""
    try:
        return read_file_table(path).to_pylist()
    except (FileNotFoundError, OSError):
        return None


def final_status(path: str) -> str | None:
    """The status of a trial's records file (None when it does not exist)."""
    try:
        statuses = read_file_table(path, columns=["status"]).column("status")
    except (FileNotFoundError, OSError):
        return None
    return statuses[0].as_py() if len(statuses) else None


def _delete(path: str) -> None:
    fs, local = resolve_filesystem(path)
    try:
        fs.delete_file(local)
    except (FileNotFoundError, OSError):
        pass


def _fresh_gpu_memory() -> None:
    """Per-trial peak memory, and no cache left by the previous trial of a reused actor (with
    fractional GPUs, other trials share the device)."""
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def quiet_exit_in_callbacks() -> None:
    """In a trial's worker: print no traceback for a SystemExit that Python cannot raise.

    When a chunk driver ends (a Ctrl-C included), the raylet ends that job's workers with
    SIGTERM, and Ray's worker handler raises SystemExit wherever the main thread is. When that
    is inside a weakref or ``__del__`` callback, Python discards the exception but prints
    "Exception ignored in ..." with its traceback, and the sweep's stderr shows it. The
    exception is discarded either way; only its print is dropped. Every other unraisable
    exception is still printed by the previous hook.
    """
    previous = sys.unraisablehook
    if getattr(previous, "quiet_exit", False):  # reused actors call this once per trial
        return

    def hook(unraisable):
        if not isinstance(unraisable.exc_value, SystemExit):
            previous(unraisable)

    hook.quiet_exit = True
    sys.unraisablehook = hook


def _record_data_failure(job: Job, settings: dict, reason: str, node_id: str) -> None:
    args, hparams = job_trial_args(job, settings), job_hparams(job, settings)
    record = identity_record(args, hparams, settings["search"], job.trial_index,
                             {"node_id": node_id})
    write_records([dict(record, status="error", error=reason)],
                  records_path(settings["sweep_dir"], record["trial_id"]))


def sweep_trainable(config: dict, settings: dict) -> None:
    """Tune function trainable (bound with ``tune.with_parameters``)."""
    import torch

    from fishr_tune.trial import TrialDiverged, load_trial_state, save_trial_state

    quiet_exit_in_callbacks()
    torch.set_num_threads(max(1, int(settings.get("cpus_per_trial") or 1)))
    _fresh_gpu_memory()
    job = Job.from_dict(config["job"])
    node_id = ray.get_runtime_context().get_node_id()
    try:
        trial = make_trial(job, settings)
    except DataUnavailable as exc:
        _record_data_failure(job, settings, str(exc), node_id)
        raise
    trial.extra_columns["node_id"] = node_id
    sweep_dir = settings["sweep_dir"]
    out_file = records_path(sweep_dir, trial.trial_id)
    n_envs = len(trial.splits)

    def objective(trial_):
        return trial_objective(trial_.records, trial_.args.test_envs, n_envs,
                               settings["objective"])

    existing = read_file_records(out_file)
    if existing and existing[0]["status"] in FINAL_STATUSES:  # finished before: never rerun
        trial.records = [r for r in existing if r.get("step") is not None]
        tune.report({"step": trial.args.steps - 1, OBJECTIVE: objective(trial),
                     "trial_key": trial.trial_id})
        return
    state_file = state_path(sweep_dir, trial.trial_id)
    load_trial_state(trial, state_file)

    reported = []

    def report(trial_, record):
        write_records(trial_.final_records("running"), out_file)
        save_trial_state(trial_, state_file)
        tune.report({"step": record["step"], OBJECTIVE: objective(trial_),
                     "trial_key": trial_.trial_id})
        reported.append(record["step"])

    try:
        trial.run(report)
        if not reported:
            # Resumed from a state saved after its last step (killed before its final record):
            # nothing was left to train, but Tune and the searcher still need its objective.
            tune.report({"step": trial.next_step - 1, OBJECTIVE: objective(trial),
                         "trial_key": trial.trial_id})
    except TrialDiverged as exc:
        write_records(trial.final_records("diverged", str(exc)), out_file)
        _delete(state_file)
        # No objective: the searcher records the proposal as failed, not as a good score.
        tune.report({"step": trial.next_step - 1, OBJECTIVE: None, "trial_key": trial.trial_id})
        return
    except Exception as exc:  # recorded, then re-raised so FailureConfig can retry the trial
        text = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        write_records(trial.final_records("error", text), out_file)
        raise
    write_records(trial.final_records("ok"), out_file)
    if settings.get("keep_checkpoints"):
        weights = trial.algorithm.state_dict()
        write_atomically(model_path(sweep_dir, trial.trial_id),
                         lambda stream: torch.save(weights, stream))
    _delete(state_file)
