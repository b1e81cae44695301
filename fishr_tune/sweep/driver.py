"""Run (or resume) a sweep on Ray Tune and summarise it.

Ray Tune does the scheduling, retries (FailureConfig), checkpoint restore and progress display;
this module only wires the training core and search spaces into it.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

# Snapshot the experiment state every second (default >= 10 s): after a killed driver, restore
# only knows trials that were in the last snapshot (ray-2.60-notes, section 2).
os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", "1")
# Those frequent snapshots are deliberate: don't warn about them at every checkpoint.
os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
# The legacy output engine honours a CLIReporter: one compact table instead of a box per trial.
os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")

from fishr_tune.datasets import get_spec, load_raw  # noqa: E402
from fishr_tune.errors import UserError  # noqa: E402
from fishr_tune.records import (RECORDS_DIR, join, read_records, records_path,  # noqa: E402
                                resolve_filesystem, write_records)
from fishr_tune.sweep.cluster import check_resources, connect, trial_resources  # noqa: E402
from fishr_tune.sweep.config import SweepConfig  # noqa: E402
from fishr_tune.sweep.plan import plan_studies, random_jobs  # noqa: E402

OPTUNA_DB = "optuna.db"
INTERRUPTED_DIR = "interrupted"


@dataclass
class SweepOutcome:
    """What a finished sweep reports: counts per status, wall time, where the records are."""

    sweep_dir: str
    counts: dict
    wall_time_s: float
    records: "object"  # pandas.DataFrame of every record

    @property
    def records_dir(self) -> str:
        """Folder of the sweep's Parquet records."""
        return join(self.sweep_dir, RECORDS_DIR)


def sweep_exists(output: str, name: str) -> bool:
    """Whether the sweep folder ``<output>/<name>`` exists (a local path or a URI)."""
    from pyarrow.fs import FileType

    if "://" not in output:
        output = os.path.abspath(os.path.expanduser(output))
    fs, folder = resolve_filesystem(join(output, name))
    return fs.get_file_info(folder).type != FileType.NotFound


def prepare(config: SweepConfig, resume: bool) -> SweepConfig:
    """Validate a new sweep (never reusing an existing name) or load a resumed one's settings."""
    if resume:
        if not config.name:
            raise UserError("--resume needs --name of the sweep to continue")
        return SweepConfig.load(config.output, config.name)
    config = config.resolved()
    if sweep_exists(config.output, config.name):
        raise UserError(f"sweep '{config.name}' already exists under {config.output}: pass "
                        "--resume to continue it, or choose another --name")
    return config


def _settings(config: SweepConfig) -> dict:
    """What every trial needs besides its own job (bound once with tune.with_parameters)."""
    return {"data_dir": config.data_dir, "steps": config.steps,
            "checkpoint_freq": config.checkpoint_freq,
            "holdout_fraction": config.holdout_fraction, "hparams": config.hparams,
            "weights": config.weights, "num_workers": config.num_workers,
            "search": config.search, "objective": config.objective, "sweep_dir": config.sweep_dir,
            "cpus_per_trial": config.cpus_per_trial}


def build_trainable(config: SweepConfig):
    """The Tune trainable with the datasets in the object store and per-trial resources."""
    from ray import tune

    from fishr_tune.sweep.trainable import sweep_trainable

    raw = {name: load_raw(get_spec(name), config.data_dir) for name in config.datasets}
    trainable = tune.with_parameters(sweep_trainable, settings=_settings(config),
                                     raw_by_dataset=raw)
    return tune.with_resources(trainable,
                               trial_resources(config.cpus_per_trial, config.gpus_per_trial))


def progress_reporter():
    """A compact progress table: the job's study and seed, its step and objective."""
    from ray.tune import CLIReporter

    return CLIReporter(
        parameter_columns={"job/study/algorithm": "algorithm", "job/study/test_envs": "test_envs",
                           "job/study/trial_seed": "trial_seed", "job/hparams_seed": "hparams_seed",
                           "job/trial_index": "index"},
        metric_columns={"step": "step", "objective": "objective"},
        max_report_frequency=15, max_progress_rows=12)


def build_tuner(config: SweepConfig, trainable):
    """A new Tuner: grid over DomainBed draws (random) or the per-study TPE multiplexer."""
    from ray import tune

    studies = plan_studies(config.datasets, config.algorithms, config.trial_seeds,
                           config.test_envs, config.test_env_pairs)
    run_config = tune.RunConfig(
        name=config.name, storage_path=config.output, verbose=1,
        progress_reporter=progress_reporter(),
        failure_config=tune.FailureConfig(max_failures=config.max_failures),
        checkpoint_config=tune.CheckpointConfig(num_to_keep=1))
    if config.search == "random" or config.jobs:
        jobs = config.jobs or random_jobs(studies, config.num_samples, config.include_defaults)
        tune_config = tune.TuneConfig(num_samples=1, reuse_actors=True,
                                      max_concurrent_trials=config.max_concurrent)
        return tune.Tuner(trainable, param_space={"job": tune.grid_search(jobs)},
                          tune_config=tune_config, run_config=run_config)
    from fishr_tune.sweep.bayes import StudyMultiplexer, default_startup_trials

    fs, folder = resolve_filesystem(config.sweep_dir)
    if "://" in config.output:
        raise UserError("--search bayes keeps its Optuna studies in a local sqlite file: use a "
                        "local or shared-filesystem --output path")
    startup = config.startup_trials or default_startup_trials(config.num_samples)
    searcher = StudyMultiplexer(studies, config.num_samples, config.hparams,
                                f"sqlite:///{folder}/{OPTUNA_DB}", config.seed, startup)
    tune_config = tune.TuneConfig(search_alg=searcher, num_samples=len(studies) *
                                  config.num_samples, reuse_actors=True,
                                  max_concurrent_trials=config.max_concurrent)
    return tune.Tuner(trainable, tune_config=tune_config, run_config=run_config)


def run_sweep(config: SweepConfig, resume: bool = False, address: str | None = None,
              num_cpus: int | None = None) -> SweepOutcome:
    """Run a sweep to completion (or resume one) and return its outcome.

    Raises:
        UserError: bad settings, missing data, an existing sweep without ``resume``, a missing
            one with it, an unreachable cluster, or a resource request no node can satisfy.
    """
    from ray import tune

    config = prepare(config, resume)
    start = time.time()
    trainable = build_trainable(config)  # loads data first: a missing folder fails before Ray
    connect(address, num_cpus)
    check_resources(config.cpus_per_trial, config.gpus_per_trial)
    if resume:
        if not tune.Tuner.can_restore(config.sweep_dir):
            raise UserError(f"sweep '{config.name}' has no Ray Tune state to restore under "
                            f"{config.output}: start it again under a new --name")
        tuner = tune.Tuner.restore(config.sweep_dir, trainable, resume_unfinished=True,
                                   resume_errored=True)
    else:
        config.save()
        tuner = build_tuner(config, trainable)
    results = tuner.fit()
    return summarise(config, results, time.time() - start)


def settle_unfinished(config: SweepConfig, results, records):
    """Give every record file still marked ``running`` after ``fit()`` its real fate.

    Its trial is either part of this experiment but its process died without a word (status
    ``error``), or an orphan of a killed driver whose trial Tune did not know at restore, because
    it started after the last experiment snapshot (a Bayesian proposal then gets replaced by a new
    one). Orphans move to ``<sweep>/interrupted/``: kept, but not counted as a trial twice.
    Returns the sweep's records as they are afterwards.
    """
    running = records.loc[records["status"] == "running", "trial_id"].unique() \
        if len(records) else []
    if not len(running):
        return records
    import pyarrow.parquet as pq

    keys = {r.metrics.get("trial_key") for r in results if r.metrics}
    fs, root = resolve_filesystem(config.sweep_dir)
    for trial_id in running:
        path = records_path(config.sweep_dir, trial_id)
        if trial_id in keys:
            # Read the file itself: the sweep-wide frame has other datasets' columns as nulls.
            rows = pq.read_table(resolve_filesystem(path)[1], filesystem=fs).to_pylist()
            write_records([dict(r, status="error", error="trial process ended before finishing")
                           for r in rows], path)
        else:
            fs.create_dir(f"{root}/{INTERRUPTED_DIR}", recursive=True)
            fs.move(resolve_filesystem(path)[1], f"{root}/{INTERRUPTED_DIR}/{trial_id}.parquet")
    return read_records(join(config.sweep_dir, RECORDS_DIR))


def summarise(config: SweepConfig, results, wall_time_s: float) -> SweepOutcome:
    """Count trials per final status from the records (plus Tune errors without records)."""
    records = settle_unfinished(config, results, read_records(join(config.sweep_dir,
                                                                    RECORDS_DIR)))
    status = records.groupby("trial_id")["status"].first() if len(records) else None
    counts = {s: 0 for s in ("ok", "error", "diverged")}
    if status is not None:
        for value, n in status.value_counts().items():
            counts[value] = counts.get(value, 0) + int(n)
    # A trial that failed before it could build its records is only known to Tune.
    tune_errors = sum(1 for r in results if r.error)
    counts["error"] = max(counts["error"], tune_errors)
    counts["trials"] = len(results)
    return SweepOutcome(config.sweep_dir, counts, wall_time_s, records)
