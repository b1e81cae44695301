"""Submit a sweep to a Ray cluster as a Ray Job, and watch, stop or resume it.

    python -m fishr_tune.submit --address http://HEAD:8265 --follow -- \\
        --dataset officehome --data-dir /mnt/shared/data --output /mnt/shared/sweeps \\
        --name oh --search bayes --gpus-per-trial 0.5
    python -m fishr_tune.submit --address http://HEAD:8265 --status oh     # job id or sweep name
    python -m fishr_tune.submit --address http://HEAD:8265 --logs oh --follow
    python -m fishr_tune.submit --address http://HEAD:8265 --stop oh

Everything after ``--`` goes to ``python -m fishr_tune.run``, which runs on the cluster as the
job's driver with ``--resume-if-exists --name NAME``: submitting a sweep again resumes it (after
a stop, a failure, or the death of the whole cluster), and while a job of that sweep is still
pending or running, no second one is started. Job ids are ``fishr_tune-<name>-<attempt>``.

Shipped with the job (a Ray runtime_env): the working directory (the checkout holding this
``fishr_tune``, without .git, .venv, results and caches) and env vars making ``--stop`` a
graceful SIGINT with time for Tune to save. Not shipped: Python packages; every node needs the
pinned environment (see deploy/), since installing torch per job would take minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shlex
import sys
import time
from pathlib import Path

from fishr_tune.errors import CLIParser, UserError, exit_status

DEFAULT_ADDRESS = "http://127.0.0.1:8265"
JOB_PREFIX = "fishr_tune"
SWEEP_KEY = "fishr_tune_sweep"  # job metadata naming the sweep
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
# Tune catches SIGINT, stops its trials and saves; Ray's default is SIGTERM then SIGKILL at 3 s.
STOP_SIGNAL = "SIGINT"
DEFAULT_STOP_WAIT_S = 120
EXCLUDES = [".git", ".venv", "venv", "results", "**/__pycache__", "*.egg-info",
            ".pytest_cache", ".ruff_cache"]
# Flags of fishr_tune.run that submit sets itself or that make no sense inside the cluster.
OWN_RUN_FLAGS = {"--address": "the job joins its own cluster", "--resume": "submit resumes by "
                 "itself", "--resume-if-exists": "submit adds it", "--num-cpus": "a job never "
                 "starts a local Ray"}
STOPPED_EXIT = 130  # like a process ended by SIGINT


class SubmitParser(CLIParser):
    """The project's one-line parser errors, plus where a sweep flag given too early belongs."""

    def error(self, message):
        if message.startswith("unrecognized arguments"):
            message += "; the sweep's own flags go after --"
        super().error(message)


def build_parser() -> argparse.ArgumentParser:
    """Flags of the submit CLI (the sweep's own flags follow ``--``)."""
    p = SubmitParser(prog="python -m fishr_tune.submit", description=__doc__,
                  formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--address", default=None,
                   help="the cluster's dashboard, http://HEAD:8265 (default: "
                        f"$RAY_API_SERVER_ADDRESS, else {DEFAULT_ADDRESS})")
    action = p.add_mutually_exclusive_group()
    action.add_argument("--status", metavar="JOB", help="status of a job (id or sweep name)")
    action.add_argument("--logs", metavar="JOB", help="print a job's logs (id or sweep name)")
    action.add_argument("--stop", metavar="JOB", help="stop a job gracefully (id or sweep name)")
    p.add_argument("--name", default=None,
                   help="sweep name (else the --name after --, else <dataset>-<search>-<hash of "
                        "the flags>); one job per sweep at a time")
    p.add_argument("--follow", action="store_true",
                   help="stream the logs until the job ends and exit with its status")
    p.add_argument("--working-dir", default=None,
                   help="folder shipped to the cluster (default: the checkout holding fishr_tune)")
    p.add_argument("--no-working-dir", action="store_true",
                   help="ship no code: run the fishr_tune installed on the cluster")
    p.add_argument("--exclude", action="append", default=[],
                   help="extra gitignore-style pattern not to ship (repeatable)")
    p.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                   help="environment variable of the job and its trials (repeatable)")
    p.add_argument("--python", default="python", help="the cluster's Python executable")
    p.add_argument("--stop-wait", type=int, default=DEFAULT_STOP_WAIT_S,
                   help="seconds Tune gets after SIGINT before Ray kills the job")
    p.add_argument("--entrypoint-num-cpus", type=float, default=None,
                   help="CPUs reserved for the driver (default: none, it runs on the head)")
    p.add_argument("run_args", nargs=argparse.REMAINDER,
                   help="-- then the flags of python -m fishr_tune.run")
    return p


def dashboard_url(address: str | None) -> str:
    """The dashboard's base URL: --address, else Ray's env var, else the local default."""
    address = address or os.environ.get("RAY_API_SERVER_ADDRESS") or DEFAULT_ADDRESS
    address = address.rstrip("/")
    if "://" not in address:
        address = "http://" + address
    scheme, _, rest = address.partition("://")
    if scheme not in ("http", "https") or not rest:
        raise UserError(f"--address {address}: pass the Ray dashboard's URL, e.g. "
                        "--address http://HEAD:8265 (the Jobs API, not the GCS port 6379)")
    return address


def split_run_args(opts) -> tuple[str, list[str]]:
    """The sweep name and fishr_tune.run's flags, checked before anything is contacted."""
    from fishr_tune.run import build_parser as run_parser

    args = list(opts.run_args)
    if args[:1] == ["--"]:
        args = args[1:]
    if not args and not opts.name:
        raise UserError("nothing to submit: pass the sweep's flags after --, e.g. -- "
                        "--output /mnt/shared/sweeps --name mysweep")
    parsed = run_parser().parse_args(args)  # fishr_tune.run's own checks, as one-line errors
    for flag, why in OWN_RUN_FLAGS.items():
        if any(a == flag or a.startswith(flag + "=") for a in args):
            raise UserError(f"drop {flag} after --: {why}")
    if opts.name and parsed.name and parsed.name != opts.name:
        raise UserError(f"--name {opts.name} and --name {parsed.name} after -- differ: give one")
    name = opts.name or parsed.name or default_sweep_name(parsed, args)
    if not NAME_PATTERN.fullmatch(name):
        raise UserError(f"--name {name!r}: use letters, digits, '.', '_' and '-' only")
    output = parsed.output
    if "://" not in output and not os.path.isabs(output):
        raise UserError(f"--output {output} is relative: the job runs in a temporary folder on "
                        "the cluster; pass a shared absolute path (e.g. /mnt/shared/sweeps) or "
                        "a URI")
    return name, strip_name(args)


def default_sweep_name(parsed, args: list[str]) -> str:
    """``<dataset>-<search>-<hash of the flags>``: the same command always names the same sweep.

    fishr_tune.run's own default has a timestamp, which would make every resubmission a new
    sweep instead of resuming the first one.
    """
    import hashlib

    digest = hashlib.sha1(json.dumps(args).encode()).hexdigest()[:8]
    dataset = re.sub(r"[^A-Za-z0-9_.-]+", "_", parsed.datasets[0]).strip("_.-")[:40]
    return f"{dataset or 'sweep'}-{parsed.search}-{digest}"


def strip_name(args: list[str]) -> list[str]:
    """``args`` without ``--name X`` / ``--name=X`` (submit puts the name first itself)."""
    out, skip = [], False
    for arg in args:
        if skip:
            skip = False
        elif arg == "--name":
            skip = True
        elif not arg.startswith("--name="):
            out.append(arg)
    return out


def entrypoint(python: str, name: str, run_args: list[str]) -> str:
    """The job's shell command: fishr_tune.run that continues the sweep if it exists."""
    return shlex.join([python, "-m", "fishr_tune.run", "--resume-if-exists", "--name", name,
                       *run_args])


def default_working_dir() -> str:
    """The source checkout holding the imported fishr_tune, else the current directory."""
    root = Path(__file__).resolve().parent.parent
    return str(root) if (root / "pyproject.toml").is_file() else os.getcwd()


def runtime_env(opts) -> dict:
    """What the job ships: code (working_dir and excludes) and environment variables."""
    if opts.stop_wait < 1:
        raise UserError(f"--stop-wait is {opts.stop_wait}: give Tune at least 1 s to save")
    env_vars = {"RAY_JOB_STOP_SIGNAL": STOP_SIGNAL, "RAY_JOB_STOP_WAIT_TIME_S":
                str(opts.stop_wait), "PYTHONUNBUFFERED": "1"}
    for item in opts.env:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UserError(f"--env {item}: write KEY=VALUE")
        env_vars[key] = value
    env = {"env_vars": env_vars}
    if not opts.no_working_dir:
        folder = os.path.abspath(opts.working_dir or default_working_dir())
        if not os.path.isdir(folder):
            raise UserError(f"--working-dir {folder} is not a folder")
        env["working_dir"] = folder
        env["excludes"] = EXCLUDES + list(opts.exclude)
    return env


def quiet_ray_client_logs() -> None:
    """Silence the Jobs SDK's INFO lines and the working_dir notice, which interleave with logs.

    The SDK modules set their own loggers to INFO; the notice says that .git and .venv are not
    shipped, which is what EXCLUDES asks for anyway.
    """
    import logging

    for name in ("ray.dashboard.modules.dashboard_sdk", "ray.dashboard.modules.job.sdk",
                 "ray._private.runtime_env.packaging"):
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.getLogger("ray._private.runtime_env.working_dir").addFilter(
        lambda record: "is now ignored by default" not in str(record.msg))


def connect(url: str):
    """A JobSubmissionClient for ``url``, sending the token when the cluster requires one.

    A dead address or a refused token is a one-line UserError within seconds.
    """
    from fishr_tune.auth import auth_headers, refused

    headers, source = auth_headers(url)
    # Ray lets these env vars override the address passed in; --address must win.
    for var in ("RAY_API_SERVER_ADDRESS", "RAY_ADDRESS"):
        os.environ.pop(var, None)
    from ray.exceptions import AuthenticationError
    from ray.job_submission import JobSubmissionClient

    quiet_ray_client_logs()

    try:
        return JobSubmissionClient(url, headers=headers)
    except AuthenticationError as exc:
        status = 403 if "Authentication failed" in str(exc) else 401
        raise refused(url, source, status) from None
    except (ConnectionError, RuntimeError) as exc:
        raise UserError(f"the Jobs API at {url} failed ({str(exc).splitlines()[0]}): is it a "
                        "Ray >= 2.0 dashboard with the default components?") from None


def sweep_jobs(client, name: str) -> list:
    """The cluster's jobs of sweep ``name``, oldest attempt first."""
    jobs = [j for j in client.list_jobs() if (j.metadata or {}).get(SWEEP_KEY) == name]
    return sorted(jobs, key=lambda j: attempt_of(j.submission_id))


def attempt_of(submission_id: str | None) -> int:
    """The attempt number at the end of ``fishr_tune-<name>-<attempt>`` (0 if none)."""
    tail = (submission_id or "").rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else 0


def resolve_job(client, ident: str) -> str:
    """A submission id from a job id or a sweep name (its latest attempt)."""
    jobs = sweep_jobs(client, ident)
    if jobs:
        return jobs[-1].submission_id
    try:
        client.get_job_info(ident)
    except RuntimeError:
        raise UserError(f"no job or sweep '{ident}' on this cluster: see `ray job list` or "
                        "the dashboard's Jobs page") from None
    return ident


def job_exit_status(info) -> int:
    """0 SUCCEEDED; FAILED: the driver's exit code (1 if unknown); STOPPED: 130."""
    status = str(info.status)
    if status == "SUCCEEDED":
        return 0
    if status == "STOPPED":
        return STOPPED_EXIT
    code = getattr(info, "driver_exit_code", None)
    return code if isinstance(code, int) and code > 0 else 1


def describe(info) -> str:
    """One line: id, status, sweep and Ray's message."""
    sweep = (info.metadata or {}).get(SWEEP_KEY)
    parts = [f"{info.submission_id}: {info.status}"]
    if sweep:
        parts.append(f"sweep {sweep}")
    if info.message:
        parts.append(" ".join(str(info.message).split()))
    return "; ".join(parts)


def follow(client, job_id: str, url: str) -> int:
    """Stream a job's logs until it ends; the job's exit status (1 if the cluster is lost)."""
    async def tail():
        async for chunk in client.tail_job_logs(job_id):
            print(chunk, end="", flush=True)

    try:
        asyncio.run(tail())
        info = client.get_job_info(job_id)
    except (RuntimeError, OSError) as exc:  # the head or the network died; the sweep is safe
        print(f"lost the cluster at {url} while following {job_id} ({type(exc).__name__}): "
              "submit the same command again to resume the sweep", file=sys.stderr)
        return 1
    while not info.status.is_terminal():  # the log stream can close just before the status
        time.sleep(0.5)
        info = client.get_job_info(job_id)
    print(describe(info))
    return job_exit_status(info)


def submit(client, url: str, opts) -> int:
    """Submit (or find the live job of) a sweep; print its id and dashboard URL."""
    name, run_args = split_run_args(opts)
    env = runtime_env(opts)
    jobs = sweep_jobs(client, name)
    live = [j for j in jobs if not j.status.is_terminal()]
    if live:
        job_id = live[-1].submission_id
        print(f"sweep {name} already has job {job_id} ({live[-1].status}): not starting another")
    else:
        attempt = max((attempt_of(j.submission_id) for j in jobs), default=0) + 1
        job_id = f"{JOB_PREFIX}-{name}-{attempt}"
        command = entrypoint(opts.python, name, run_args)
        try:
            client.submit_job(entrypoint=command, submission_id=job_id, runtime_env=env,
                              metadata={SWEEP_KEY: name, "fishr_tune_args": json.dumps(run_args)},
                              entrypoint_num_cpus=opts.entrypoint_num_cpus)
        except RuntimeError as exc:
            if "already exists" not in str(exc):
                raise UserError(f"the cluster refused the job: {str(exc).splitlines()[0]}") \
                    from None
            print(f"sweep {name}: job {job_id} was just submitted by someone else")
        else:
            resumed = " (resumes the sweep if it exists)" if attempt > 1 else ""
            print(f"submitted job {job_id}{resumed}: {command}")
    print(f"dashboard: {url}/#/jobs/{job_id}")
    if opts.follow:
        return follow(client, job_id, url)
    print(f"watch it: python -m fishr_tune.submit --address {url} --logs {job_id} --follow")
    return 0


def stop(client, job_id: str) -> int:
    """Ask a job to stop (SIGINT: Tune saves) and wait until it has ended."""
    if not client.stop_job(job_id):
        print(describe(client.get_job_info(job_id)))
        return 0
    info = client.get_job_info(job_id)
    wait_s = int((info.runtime_env or {}).get("env_vars", {}).get("RAY_JOB_STOP_WAIT_TIME_S", 3))
    print(f"stopping {job_id}: the sweep got {STOP_SIGNAL} and saves (Ray kills it after "
          f"{wait_s} s); resubmit the same sweep to continue it", flush=True)
    deadline = time.time() + wait_s + 30
    while not info.status.is_terminal() and time.time() < deadline:
        time.sleep(1)
        info = client.get_job_info(job_id)
    print(describe(info))
    return 0 if info.status.is_terminal() else 1


def submit_cli(argv=None) -> int:
    """Parse, check, connect, then submit or query a job."""
    from fishr_tune.sweep.cluster import probe_address

    opts = build_parser().parse_args(argv)
    url = dashboard_url(opts.address)
    probe_address(url)  # a dead address fails in seconds, before the heavier checks below
    if not (opts.status or opts.logs or opts.stop):
        split_run_args(opts)  # bad sweep flags fail here, before anything is sent
        runtime_env(opts)
    client = connect(url)
    if opts.status:
        print(describe(client.get_job_info(resolve_job(client, opts.status))))
        return 0
    if opts.logs:
        job_id = resolve_job(client, opts.logs)
        if opts.follow:
            return follow(client, job_id, url)
        print(client.get_job_logs(job_id), end="")
        return 0
    if opts.stop:
        return stop(client, resolve_job(client, opts.stop))
    return submit(client, url, opts)


def main(argv=None) -> int:
    """Entry point: bad input is one line on stderr and exit status 2."""
    return exit_status(submit_cli, argv)


if __name__ == "__main__":
    sys.exit(main())
