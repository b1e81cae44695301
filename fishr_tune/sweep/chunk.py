"""One chunk of a sweep: a Ray Tune experiment over whole studies, in its own driver process.

    python -m fishr_tune.sweep.chunk --output O --name N --chunk I --address HOST:PORT

The sweep driver (fishr_tune.sweep.driver) starts several of these at once on the same Ray
cluster. Each reads the sweep's settings from ``sweep.json``, rebuilds its chunk from the plan,
and runs one Tuner whose searcher hands out the chunk's unfinished jobs lazily. When the
experiment ends it settles its trials, writes ``<sweep>/chunks/<chunk>.json`` (its counts) and
deletes its Tune folder: records, Optuna storage and (optionally) model weights are the result.
"""

from __future__ import annotations

import json
import os
import sys

# No per-trial CSV/JSON/TensorBoard files: the Parquet records are the results.
os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
# Tune's snapshot is never restored (resume reads records and Optuna): keep it rare.
os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", "600")
# The legacy output engine honours a CLIReporter: one compact table instead of a box per trial.
os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")

from ray.tune import Callback  # noqa: E402

from fishr_tune.errors import CLIParser, exit_status  # noqa: E402
from fishr_tune.records import (join, records_path, resolve_filesystem,  # noqa: E402
                                write_atomically)
from fishr_tune.sweep.cluster import connect, trial_resources  # noqa: E402
from fishr_tune.sweep.config import SweepConfig  # noqa: E402
from fishr_tune.sweep.plan import (Chunk, Job, Study, plan_chunks,  # noqa: E402
                                   plan_studies, random_jobs)

CHUNKS_DIR = "chunks"
TUNE_DIR = "tune"
STOPPED_EXIT = 3  # the chunk driver's status when its experiment was stopped before its end


def sweep_chunks(config: SweepConfig) -> list[Chunk]:
    """The chunks of a sweep, in plan order (explicit jobs are one chunk)."""
    if config.jobs:
        return [Chunk(0, (), tuple(Job.from_dict(j) for j in config.jobs))]
    studies = plan_studies(config.datasets, config.algorithms, config.trial_seeds,
                           config.test_envs, config.test_env_pairs)
    return plan_chunks(studies, config.num_samples, config.chunk_trials)


def chunk_trials(config: SweepConfig, chunk: Chunk) -> int:
    """How many trials the chunk plans."""
    return len(chunk.jobs) if chunk.jobs is not None else \
        len(chunk.studies) * config.num_samples


def marker_path(config: SweepConfig, chunk: Chunk) -> str:
    """``<sweep>/chunks/<chunk>.json``: written when the chunk's experiment ended."""
    return join(config.sweep_dir, CHUNKS_DIR, f"{chunk.name}.json")


def read_marker(config: SweepConfig, chunk: Chunk) -> dict | None:
    """The counts a finished chunk wrote, None when it has not finished."""
    fs, local = resolve_filesystem(marker_path(config, chunk))
    try:
        with fs.open_input_stream(local) as f:
            return json.loads(f.read())
    except (FileNotFoundError, OSError):
        return None


def make_searcher(config: SweepConfig, chunk: Chunk, settings: dict):
    """The chunk's lazy searcher: its jobs (random, explicit) or its studies' TPE (bayes)."""
    from fishr_tune.sweep.trainable import FINAL_STATUSES, final_status, job_trial_id

    if config.search == "random" or chunk.jobs is not None:
        from fishr_tune.sweep.job_queue import JobQueue

        jobs = chunk.jobs if chunk.jobs is not None else \
            random_jobs(chunk.studies, config.num_samples, config.include_defaults)

        def finished(job: Job) -> bool:
            path = records_path(config.sweep_dir, job_trial_id(job, settings))
            return final_status(path) in FINAL_STATUSES

        return JobQueue(jobs, finished)
    from fishr_tune.sweep.bayes import StudyMultiplexer, default_startup_trials, open_storage

    storage = open_storage(config.sweep_dir, chunk.name, config.optuna_storage)
    startup = config.startup_trials or default_startup_trials(config.num_samples)
    return StudyMultiplexer(list(chunk.studies), config.num_samples, settings, storage,
                            config.seed, startup)


def cluster_slots(config: SweepConfig) -> int:
    """How many trials the cluster runs at once (what Tune may keep pending)."""
    import ray

    slots = 0
    for node in ray.nodes():
        if not node.get("Alive"):
            continue
        res = node["Resources"]
        fits = int(res.get("CPU", 0) // config.cpus_per_trial)
        if config.gpus_per_trial:
            fits = min(fits, int(res.get("GPU", 0) // config.gpus_per_trial))
        slots += fits
    if config.max_concurrent:
        slots = min(slots, config.max_concurrent)
    return max(1, slots)


def progress_reporter():
    """A compact progress table: the job's study and index, its step and objective."""
    from ray.tune import CLIReporter

    return CLIReporter(
        parameter_columns={"job/study/algorithm": "algorithm", "job/study/test_envs": "test_envs",
                           "job/study/trial_seed": "trial_seed", "job/hparams_seed": "hparams_seed",
                           "job/trial_index": "index"},
        metric_columns={"step": "step", "objective": "objective"},
        max_report_frequency=30, max_progress_rows=8)


class Ledger(Callback):
    """A Tune callback counting the chunk's trials and keeping the jobs that ended in error.

    It also says once when Tune has handed the chunk's first trials to Ray (their actors
    requested): the moment the engine's own start-up cost ends (benchmarks/sweep_scale.py
    times that line).
    """

    DISPATCHED = "first trials handed to Ray"

    def __init__(self, chunk_name: str = ""):
        self.trials = self.ended = 0
        self.errored: list[dict] = []
        self.chunk_name, self.dispatched = chunk_name, False

    def on_step_end(self, iteration, trials, **info):
        """After Tune's loop step that created the first trials and requested their actors."""
        if trials and not self.dispatched:
            self.dispatched = True
            print(f"chunk {self.chunk_name}: {self.DISPATCHED} ({len(trials)})", flush=True)

    def on_trial_start(self, iteration, trials, trial, **info):
        """Count a trial (restarts after a failure are the same Tune trial)."""
        self.trials += 1 if trial.num_failures == 0 else 0

    def on_trial_complete(self, iteration, trials, trial, **info):
        """Count a trial that ended."""
        self.ended += 1

    def on_trial_error(self, iteration, trials, trial, **info):
        """Keep the job of a trial that ended in error (after its retries)."""
        self.ended += 1
        self.errored.append(trial.config["job"])


def settle_errored(config: SweepConfig, ledger: Ledger, settings: dict) -> int:
    """Mark the records of trials Tune saw fail, still ``running``, as errors; return how many
    errored trials left no records at all."""
    from fishr_tune.records import write_records
    from fishr_tune.sweep.trainable import job_trial_id, read_file_records

    without_records = 0
    for job in ledger.errored:
        path = records_path(config.sweep_dir, job_trial_id(Job.from_dict(job), settings))
        rows = read_file_records(path)
        if not rows:
            without_records += 1
        elif rows[0]["status"] == "running":
            write_records([dict(r, status="error", error="trial process ended before finishing")
                           for r in rows], path)
    return without_records


def prune_models(config: SweepConfig, chunk: Chunk, settings: dict) -> None:
    """``--keep-checkpoints selected``: of the chunk's trials, keep the weights of each study's
    selected trial only (the best objective, the value its search maximised).

    Reads the records of kept models only: after earlier chunks pruned theirs, that is about
    one trial per study so far plus this chunk's trials.
    """
    import pyarrow.fs as pafs

    from fishr_tune.datasets import get_spec
    from fishr_tune.sweep.trainable import (MODELS_DIR, model_path, read_file_records,
                                            trial_objective)

    fs, folder = resolve_filesystem(join(config.sweep_dir, MODELS_DIR))
    infos = fs.get_file_info(pafs.FileSelector(folder, allow_not_found=True))
    mine = {s.key for s in chunk.studies}
    best: dict[str, tuple[float, str]] = {}
    for trial_id in sorted(i.base_name[:-3] for i in infos if i.base_name.endswith(".pt")):
        rows = read_file_records(records_path(config.sweep_dir, trial_id)) or []
        if not rows:
            continue
        first = rows[0]
        envs = [int(e) for e in first["test_envs"]]
        key = Study(first["dataset"], first["algorithm"], tuple(envs), first["trial_seed"]).key
        if chunk.jobs is None and key not in mine:
            continue  # another chunk's trial (that chunk prunes its own)
        value = trial_objective(rows, envs, get_spec(first["dataset"]).num_environments,
                                settings["objective"])
        value = float("-inf") if value is None else value
        loser = trial_id
        if key not in best or value > best[key][0]:
            loser = best[key][1] if key in best else None
            best[key] = (value, trial_id)
        if loser is not None:
            fs.delete_file(resolve_filesystem(model_path(config.sweep_dir, loser))[1])


def _trial_dirname(trial) -> str:
    return trial.trial_id  # Tune's default spells the whole config into the folder name


def run_chunk(config: SweepConfig, chunk: Chunk) -> dict | None:
    """Run the chunk's unfinished jobs as one Tune experiment; return and store its counts
    (None, and nothing stored, when it was stopped before its end)."""
    from ray import tune

    from fishr_tune.sweep.trainable import sweep_trainable, trial_settings

    settings = trial_settings(config)
    # Without this Tune keeps ONE trial pending for a custom searcher: a large cluster would
    # fill one trial at a time (ray-scale-notes, section 1).
    os.environ.setdefault("TUNE_MAX_PENDING_TRIALS_PG", str(cluster_slots(config)))
    searcher = make_searcher(config, chunk, settings)
    trainable = tune.with_resources(
        tune.with_parameters(sweep_trainable, settings=settings),
        trial_resources(config.cpus_per_trial, config.gpus_per_trial))
    ledger = Ledger(chunk.name)
    run_config = tune.RunConfig(
        name=chunk.name, storage_path=join(config.sweep_dir, TUNE_DIR), verbose=1,
        progress_reporter=progress_reporter(), callbacks=[ledger],
        failure_config=tune.FailureConfig(max_failures=config.max_failures))
    tune_config = tune.TuneConfig(search_alg=searcher, num_samples=chunk_trials(config, chunk),
                                  reuse_actors=True, max_concurrent_trials=config.max_concurrent,
                                  trial_dirname_creator=_trial_dirname)
    tune.Tuner(trainable, tune_config=tune_config, run_config=run_config).fit()
    if not searcher.exhausted or ledger.ended < ledger.trials:
        # Stopped early (Ctrl-C, a stop request): no marker, a resume runs the rest.
        print(f"chunk {chunk.name}: stopped before its end", file=sys.stderr, flush=True)
        return None
    without_records = settle_errored(config, ledger, settings)
    counts = {"trials": ledger.trials, "errors": len(ledger.errored),
              "without_records": without_records}
    if config.keep_checkpoints == "selected":
        prune_models(config, chunk, settings)
    text = json.dumps(counts).encode()
    write_atomically(marker_path(config, chunk), lambda stream: stream.write(text))
    fs, tune_folder = resolve_filesystem(join(config.sweep_dir, TUNE_DIR, chunk.name))
    try:  # recursive: the chunk's Tune experiment only
        fs.delete_dir(tune_folder)
    except (FileNotFoundError, OSError):
        pass
    return counts


def main(argv=None) -> int:
    """Entry point of one chunk driver (started by the sweep driver)."""
    import logging

    # fit() looks for the per-trial result files we do not write (the records are the result).
    logging.getLogger("ray.tune.analysis.experiment_analysis").setLevel(logging.ERROR)
    # On a stop, Tune advises Tuner.restore, which this engine never uses: the sweep driver
    # prints the command that resumes the sweep instead.
    logging.getLogger("ray.tune.tune").addFilter(
        lambda record: "Resume experiment with" not in record.getMessage())
    p = CLIParser(prog="python -m fishr_tune.sweep.chunk", description=__doc__)
    p.add_argument("--output", required=True)
    p.add_argument("--name", required=True)
    p.add_argument("--chunk", type=int, required=True)
    p.add_argument("--address", required=True)

    def body(argv):
        opts = p.parse_args(argv)
        config = SweepConfig.load(opts.output, opts.name)
        chunk = sweep_chunks(config)[opts.chunk]
        connect(opts.address)
        return 0 if run_chunk(config, chunk) is not None else STOPPED_EXIT

    return exit_status(body, argv)


if __name__ == "__main__":
    sys.exit(main())
