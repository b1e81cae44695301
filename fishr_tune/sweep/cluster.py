"""Connecting to Ray and checking that a trial's resource request can ever be met."""

from __future__ import annotations

import os
import socket

from fishr_tune.errors import UserError

PROBE_TIMEOUT_S = 5.0


def probe_address(address: str) -> None:
    """Fail fast when ``host:port`` does not accept connections.

    ``ray.init`` retries an unreachable GCS for minutes; a TCP probe answers in seconds.
    ``auto`` is left to Ray, which fails at once when no local cluster is running.
    """
    if address in ("auto", "local"):
        return
    target = address.split("://", 1)[-1]
    host, _, port = target.rpartition(":")
    if not host or not port.isdigit():
        raise UserError(f"--address {address} is not host:port or auto: pass e.g. "
                        "--address 10.0.0.1:6379 or --address auto")
    try:
        with socket.create_connection((host, int(port)), timeout=PROBE_TIMEOUT_S):
            pass
    except OSError as exc:
        raise UserError(f"cannot reach a Ray cluster at {address} ({exc.strerror or exc}): "
                        "start it with `ray start --head` or fix --address") from None


def free_port() -> int:
    """A TCP port nobody listens on right now (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def connect(address: str | None, num_cpus: int | None = None, dashboard: bool = False) -> None:
    """Start a local Ray, or attach to the cluster at ``address`` (``auto`` or ``host:port``).

    ``dashboard``: a local Ray starts with its dashboard; its URL is printed (on a cluster, the
    cluster's own dashboard URL when it has one). An unreachable address becomes a one-line
    UserError instead of Ray's traceback.
    """
    import ray

    if ray.is_initialized():
        return
    os.environ.setdefault("RAY_DEDUP_LOGS", "1")
    # Workers log at WARNING: Tune's per-checkpoint INFO lines would drown the progress table.
    kwargs = {"log_to_driver": True, "logging_level": "WARNING",
              "logging_config": ray.LoggingConfig(log_level="WARNING")}
    if address:
        probe_address(address)
    try:
        if address:
            context = ray.init(address=address, **kwargs)
        elif os.environ.get("RAY_ADDRESS"):  # launched as a Ray job: join that cluster
            context = ray.init(**kwargs)
        else:
            # "local": a private Ray, never silently joining a `ray start` cluster on the machine.
            if dashboard:  # a free port: other Rays on the machine may hold the default 8265
                kwargs.update(dashboard_host="127.0.0.1", dashboard_port=free_port())
            context = ray.init(address="local", num_cpus=num_cpus, include_dashboard=dashboard,
                               **kwargs)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        target = address or "a local Ray"
        raise UserError(f"cannot connect to Ray cluster at {target} ({str(exc).splitlines()[0]}):"
                        " start one with `ray start --head` or fix --address") from None
    if dashboard:
        url = context.dashboard_url
        print(f"Ray dashboard: http://{url}" if url else
              "Ray dashboard: not running on this cluster (start its head with --dashboard-host)",
              flush=True)


def check_resources(cpus_per_trial: float, gpus_per_trial: float) -> None:
    """Refuse a per-trial request that no alive node can ever satisfy.

    Ray would otherwise keep such trials PENDING forever (GPUs on a GPU-less cluster, more CPUs
    than any single node has).
    """
    import ray

    nodes = [n["Resources"] for n in ray.nodes() if n.get("Alive")]
    max_cpu = max((r.get("CPU", 0) for r in nodes), default=0)
    max_gpu = max((r.get("GPU", 0) for r in nodes), default=0)
    if gpus_per_trial > 0 and max_gpu == 0:
        raise UserError(f"--gpus-per-trial {gpus_per_trial} but the Ray cluster has no GPU: use "
                        "--gpus-per-trial 0 or add GPU nodes")
    if gpus_per_trial > max_gpu:
        raise UserError(f"--gpus-per-trial {gpus_per_trial} exceeds the most GPUs of any node "
                        f"({max_gpu:g}): ask for at most {max_gpu:g}")
    if cpus_per_trial > max_cpu:
        raise UserError(f"--cpus-per-trial {cpus_per_trial:g} exceeds the most CPUs of any node "
                        f"({max_cpu:g}): ask for at most {max_cpu:g}")


def trial_resources(cpus_per_trial: float, gpus_per_trial: float) -> dict:
    """Ray Tune resource dict of one trial (fractional GPUs share a device)."""
    resources = {"cpu": cpus_per_trial}
    if gpus_per_trial:
        resources["gpu"] = gpus_per_trial
    return resources
