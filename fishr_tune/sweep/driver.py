"""Run (or resume) a sweep on Ray Tune and summarise it.

The sweep is planned as chunks of whole studies (fishr_tune.sweep.plan); this driver starts a
chunk driver process per chunk (fishr_tune.sweep.chunk, one Ray Tune experiment each), keeping
``chunks_in_flight`` of them running on the same cluster so a chunk's tail never idles it, and
summarises the sweep from its Parquet records. A resumed sweep skips chunks that finished
cleanly; the others rerun what their records and Optuna storage say is unfinished. README:
"Sweep engine design" says why.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass

from fishr_tune.datasets import get_spec
from fishr_tune.errors import UserError
from fishr_tune.records import RECORDS_DIR, join, read_records, resolve_filesystem
from fishr_tune.sweep.cluster import check_resources, connect
from fishr_tune.sweep.config import SweepConfig, check_name

POLL_S = 0.5
INTERRUPTED_EXIT = 130  # like a process ended by SIGINT (fishr_tune.submit's STOPPED status)


class SweepInterrupted(Exception):
    """The sweep was stopped (Ctrl-C, ``submit --stop``) after its chunk drivers saved: the
    message says how far it got and the command that continues it."""


@dataclass
class SweepOutcome:
    """What a finished sweep reports: counts per status, wall time, where the records are."""

    sweep_dir: str
    counts: dict
    wall_time_s: float
    records: "object"  # pandas.DataFrame of every record
    resume_command: str = ""  # what continues the sweep (trials left ``running`` need it)

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
        check_name(config.name)
        return SweepConfig.load(config.output, config.name)
    config = config.resolved()
    if sweep_exists(config.output, config.name):
        raise UserError(f"sweep '{config.name}' already exists under {config.output}: pass "
                        "--resume to continue it, or choose another --name")
    return config


def check_local_data(config: SweepConfig) -> None:
    """A sweep on the driver's own machine: refuse a missing data folder before Ray starts.

    Only folders are looked at (nothing is read); on a cluster the driver checks nothing, since
    the data lives on the worker nodes (a node that lacks it fails its trials with the reason).
    """
    from fishr_tune.datasets.locations import dataset_root, mnist_folder

    for name in config.datasets:
        spec = get_spec(name)
        if spec.kind == "images":
            dataset_root(spec, config.data_dir)
        elif spec.kind == "mnist":
            mnist_folder(spec.name, config.data_dir)


def _die_with_parent() -> None:
    """In a chunk driver: be killed when the sweep driver dies (kill -9 included)."""
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def start_chunk(config: SweepConfig, chunk, address: str) -> subprocess.Popen:
    """Start the driver process of one chunk (it inherits stdout/stderr and the environment,
    so inside a Ray job it joins the same job's runtime environment).

    Its own session: a Ctrl-C (or ``submit --stop``, which signals the job's process group)
    reaches the sweep driver only, which passes exactly one SIGINT on (a second one would make
    Tune skip its orderly stop)."""
    cmd = [sys.executable, "-m", "fishr_tune.sweep.chunk", "--output", config.output,
           "--name", config.name, "--chunk", str(chunk.index), "--address", address]
    return subprocess.Popen(cmd, preexec_fn=_die_with_parent, start_new_session=True)


def run_chunks(config: SweepConfig, chunks: list, address: str) -> dict[str, int]:
    """Run the chunks, ``chunks_in_flight`` at a time; the exit status of every chunk driver
    that did not end cleanly, by chunk name.

    A chunk starts as soon as one in flight ends, so the next chunk's trials fill the slots
    that the previous chunk's last trials leave free.
    """
    queue, running, failed = list(chunks), {}, {}
    try:
        while queue or running:
            while queue and len(running) < config.chunks_in_flight:
                chunk = queue.pop(0)
                print(f"chunk {chunk.name}: {len(chunk.studies) or len(chunk.jobs)} "
                      f"{'studies' if chunk.jobs is None else 'jobs'} started", flush=True)
                running[chunk.name] = start_chunk(config, chunk, address)
            time.sleep(POLL_S)
            for name, proc in list(running.items()):
                if proc.poll() is not None:
                    del running[name]
                    if proc.returncode != 0:
                        failed[name] = proc.returncode
                    print(f"chunk {name}: ended (exit status {proc.returncode})", flush=True)
    finally:
        for proc in running.values():  # Ctrl-C: let the chunk drivers save, then end them
            proc.send_signal(signal.SIGINT)
        for proc in running.values():
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
    return failed


def remove_empty_folders(config: SweepConfig) -> None:
    """Drop the sweep's working folders (Tune experiments, training states) once empty."""
    import pyarrow.fs as pafs

    from fishr_tune.sweep.chunk import TUNE_DIR
    from fishr_tune.sweep.trainable import STATE_DIR

    fs, root = resolve_filesystem(config.sweep_dir)
    for name in (TUNE_DIR, STATE_DIR):
        folder = f"{root}/{name}"
        if fs.get_file_info(folder).type != pafs.FileType.Directory:
            continue
        if not fs.get_file_info(pafs.FileSelector(folder, recursive=True)):
            fs.delete_dir(folder)


def cluster_address() -> str:
    """The GCS address of the connected cluster (what chunk drivers join)."""
    import ray

    return ray.get_runtime_context().gcs_address


def run_sweep(config: SweepConfig, resume: bool = False, address: str | None = None,
              num_cpus: int | None = None, dashboard: bool = False) -> SweepOutcome:
    """Run a sweep to completion (or resume one) and return its outcome.

    Raises:
        UserError: bad settings, an existing sweep without ``resume``, a missing one with it,
            missing data on the driver's own machine, an unreachable cluster, or a resource
            request no node can satisfy.
    """
    import ray

    from fishr_tune.sweep.chunk import STOPPED_EXIT, read_marker, sweep_chunks

    config = prepare(config, resume)
    start = time.time()
    own_ray = address is None and not os.environ.get("RAY_ADDRESS") and not ray.is_initialized()
    if own_ray:
        check_local_data(config)
    chunks = sweep_chunks(config)
    connect(address, num_cpus, dashboard=dashboard)
    check_resources(config.cpus_per_trial, config.gpus_per_trial)
    if not resume:
        config.save()
    # A chunk that ended without errors is done; any other one reruns what is unfinished.
    todo = [c for c in chunks if (read_marker(config, c) or {"errors": 1})["errors"]]
    try:
        failed = run_chunks(config, todo, cluster_address())
    except KeyboardInterrupt:  # the chunk drivers have saved and ended (run_chunks waits)
        raise SweepInterrupted(interrupted_message(config, chunks)) from None
    remove_empty_folders(config)
    # A chunk stopped before its end (its own SIGINT) leaves resumable trials, not errors.
    stopped = any(status == STOPPED_EXIT for status in failed.values())
    return summarise(config, chunks, time.time() - start, list(failed), settle=not stopped)


def trial_statuses(records):
    """Each trial's status (its records share one), by trial id; None when there are none."""
    return records.groupby("trial_id")["status"].first() if len(records) else None


def resume_command(config: SweepConfig) -> str:
    """The command line that continues this sweep."""
    return f"python -m fishr_tune.run --output {config.output} --name {config.name} --resume"


def interrupted_message(config: SweepConfig, chunks) -> str:
    """How far a stopped sweep got, and how to continue it (one line)."""
    from fishr_tune.sweep.chunk import chunk_trials
    from fishr_tune.sweep.trainable import FINAL_STATUSES

    status = trial_statuses(read_records(join(config.sweep_dir, RECORDS_DIR)))
    done = 0 if status is None else int(status.isin(FINAL_STATUSES).sum())
    planned = sum(chunk_trials(config, c) for c in chunks)
    return (f"sweep {config.name} interrupted: {done} of {planned} trials finished, trials in "
            f"flight keep their saved state; continue it with: {resume_command(config)}")


def settle_unfinished(config: SweepConfig, records):
    """Records still ``running`` once every chunk ended belong to trials whose process (or chunk
    driver) died without a word: mark them ``error`` (a resume reruns them from their state)."""
    from fishr_tune.records import records_path, write_records
    from fishr_tune.sweep.trainable import read_file_records

    running = records.loc[records["status"] == "running", "trial_id"].unique() \
        if len(records) else []
    for trial_id in running:
        path = records_path(config.sweep_dir, trial_id)
        rows = read_file_records(path)
        write_records([dict(r, status="error", error="trial process ended before finishing")
                       for r in rows], path)
    return read_records(join(config.sweep_dir, RECORDS_DIR)) if len(running) else records


def summarise(config: SweepConfig, chunks, wall_time_s: float,
              failed_chunks: list[str], settle: bool = True) -> SweepOutcome:
    """Count trials per final status from the records (plus errors that left no records).

    ``settle``: mark records still ``running`` as errors (every chunk ran to its end, so their
    process died); off when a chunk was stopped, whose trials in flight are resumable.
    """
    from fishr_tune.sweep.chunk import read_marker

    records = read_records(join(config.sweep_dir, RECORDS_DIR))
    if settle:
        records = settle_unfinished(config, records)
    status = trial_statuses(records)
    counts = {s: 0 for s in ("ok", "error", "diverged")}
    if status is not None:
        for value, n in status.value_counts().items():
            counts[value] = counts.get(value, 0) + int(n)
    # A trial that failed before it could write records is only known to its chunk.
    without_records = sum((read_marker(config, c) or {}).get("without_records", 0)
                          for c in chunks)
    counts["error"] += without_records
    counts["trials"] = (0 if status is None else len(status)) + without_records
    counts["failed_chunks"] = len(failed_chunks)
    return SweepOutcome(config.sweep_dir, counts, wall_time_s, records, resume_command(config))
