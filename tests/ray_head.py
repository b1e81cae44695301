"""A private ``ray start --head`` for tests and tools: own temp dir, free ports, own processes.

Other Ray clusters may run on the same machine, so a head started here never uses Ray's default
ports or ``/tmp/ray``, and it is stopped by killing exactly the processes it started (found by a
marker in their environment, which every Ray process of that head and every job driver it runs
inherits), never with ``ray stop``.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid

import requests

MARKER = "FISHR_TEST_HEAD"


def free_port() -> int:
    """A TCP port nothing listens on right now (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _ray_cli() -> str:
    return os.path.join(os.path.dirname(sys.executable), "ray")


class RayHead:
    """One Ray head with its dashboard (the Jobs server) on loopback.

    ``token_path``: a token file switches the head to token auth (``RAY_AUTH_MODE=token``);
    without it the head runs with auth disabled. The mode is always set explicitly, because a
    ``ray start`` without ``RAY_AUTH_MODE`` picks token mode whenever ~/.ray/auth_token exists.
    """

    def __init__(self, num_cpus: int = 2, token_path: str | None = None):
        self.num_cpus = num_cpus
        self.token_path = token_path
        self.marker = uuid.uuid4().hex
        # Short: Ray's unix sockets live under it and their paths are limited to ~107 bytes.
        self.temp_dir = tempfile.mkdtemp(prefix="rh", dir="/tmp")
        self.gcs_port = free_port()
        self.dashboard_port = free_port()
        self.dashboard_url = f"http://127.0.0.1:{self.dashboard_port}"

    def env(self) -> dict:
        """The environment of the head (and so of every worker and job driver it starts)."""
        env = {k: v for k, v in os.environ.items()
               if k not in ("PYTHONPATH", "RAY_ADDRESS", "RAY_API_SERVER_ADDRESS",
                            "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")}
        # PYTHONPATH is dropped on purpose: the job's code must come from its shipped working_dir.
        env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
        env[MARKER] = self.marker
        env["RAY_AUTH_MODE"] = "token" if self.token_path else "disabled"
        if self.token_path:
            env["RAY_AUTH_TOKEN_PATH"] = self.token_path
        env.setdefault("OMP_NUM_THREADS", "1")
        return env

    def start(self, timeout_s: float = 90) -> RayHead:
        """Start the head and wait until its Jobs API answers."""
        ports = {"--port": self.gcs_port, "--dashboard-port": self.dashboard_port}
        for flag in ("--node-manager-port", "--object-manager-port", "--ray-client-server-port",
                     "--dashboard-agent-listen-port", "--dashboard-agent-grpc-port",
                     "--metrics-export-port", "--runtime-env-agent-port"):
            ports[flag] = free_port()
        cmd = [_ray_cli(), "start", "--head", f"--num-cpus={self.num_cpus}", "--num-gpus=0",
               # The dashboard listens on loopback only; the GCS and raylet bind this host's
               # own address (Ray maps --node-ip-address=127.0.0.1 to it anyway).
               "--include-dashboard=true", "--dashboard-host=127.0.0.1",
               f"--temp-dir={self.temp_dir}",
               "--disable-usage-stats", "--object-store-memory=200000000"]
        cmd += [f"{flag}={port}" for flag, port in ports.items()]
        log = os.path.join(self.temp_dir, "ray_start.log")
        with open(log, "w") as out:
            subprocess.run(cmd, env=self.env(), stdout=out, stderr=subprocess.STDOUT,
                           check=False, timeout=timeout_s)
        deadline = time.time() + timeout_s
        while time.time() < deadline:
            try:
                if self._jobs_api_up():
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.5)
        self.kill()
        raise RuntimeError(f"ray head did not come up; see {log}")

    def _jobs_api_up(self) -> bool:
        headers = {}
        if self.token_path:
            with open(self.token_path) as f:
                headers["Authorization"] = f"Bearer {f.read().strip()}"
        return requests.get(self.dashboard_url + "/api/jobs/", headers=headers, timeout=5).ok

    def pids(self) -> list[int]:
        """Every live process started by this head (its marker is in their environment)."""
        needle = f"{MARKER}={self.marker}".encode()
        found = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) == os.getpid():
                continue
            try:
                with open(f"/proc/{entry}/environ", "rb") as f:
                    if needle in f.read().split(b"\0"):
                        found.append(int(entry))
            except OSError:
                continue
        return found

    def kill(self, timeout_s: float = 30) -> None:
        """SIGKILL this head's processes (a dead head, and the test teardown) and wait for them."""
        deadline = time.time() + timeout_s
        while (pids := self.pids()) and time.time() < deadline:
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            time.sleep(0.3)

    def stop(self) -> None:
        """Kill the head's processes and remove its temp dir."""
        self.kill()
        shutil.rmtree(self.temp_dir, ignore_errors=True)

    def __enter__(self) -> RayHead:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
