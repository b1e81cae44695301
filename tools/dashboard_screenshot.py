"""Screenshot the Ray dashboard's Jobs page during a sweep submitted with fishr_tune.submit.

A real-browser check, not part of CI: it starts a private token-auth Ray head on loopback,
submits a small embedded sweep through ``python -m fishr_tune.submit``, and, while the sweep
runs, drives Debian's headless chromium over the DevTools protocol: the dashboard's token
cookie is set (what its login dialog does), then the Jobs page, the job's own page, the Actors
page (the trial actors) and the Cluster page are captured. Needs ``apt-get install -y chromium``.

    PYTHONPATH=. .venv/bin/python tools/dashboard_screenshot.py --out docs
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.ray_head import RayHead, free_port  # noqa: E402

COOKIE = "ray-authentication-token"  # what the dashboard's login dialog sets
WIDTH, HEIGHT = 1600, 1000
SWEEP = ["--dataset", "colored_digits", "--algorithms", "ERM", "Fishr", "--test-envs", "0",
         "--trial-seeds", "1", "--num-samples", "6", "--steps", "600", "--checkpoint-freq",
         "100", "--name", "dashboard-demo"]


class DevTools:
    """The few Chrome DevTools protocol calls needed: cookie, viewport, navigate, capture."""

    def __init__(self, ws):
        self.ws, self.next_id = ws, 0

    async def call(self, method: str, **params) -> dict:
        self.next_id += 1
        await self.ws.send_json({"id": self.next_id, "method": method, "params": params})
        while True:
            msg = json.loads((await self.ws.receive()).data)
            if msg.get("id") == self.next_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})


async def capture(debug_port: int, dashboard: str, token: str, pages: dict, settle_s: float):
    """Open each ``{file: url}`` of ``pages`` with the token cookie and save a PNG."""
    targets = requests.get(f"http://127.0.0.1:{debug_port}/json/list", timeout=10).json()
    ws_url = next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")
    async with aiohttp.ClientSession() as session, \
            session.ws_connect(ws_url, max_msg_size=0) as ws:
        tools = DevTools(ws)
        await tools.call("Network.enable")
        await tools.call("Network.setCookie", name=COOKIE, value=token, url=dashboard,
                         httpOnly=True, sameSite="Strict")
        await tools.call("Emulation.setDeviceMetricsOverride", width=WIDTH, height=HEIGHT,
                         deviceScaleFactor=1, mobile=False)
        for path, url in pages.items():
            await tools.call("Page.navigate", url=url)
            await asyncio.sleep(settle_s)  # the SPA polls its APIs; let the tables fill
            shot = await tools.call("Page.captureScreenshot", format="png")
            Path(path).write_bytes(base64.b64decode(shot["data"]))
            print(f"wrote {path}")


def chromium() -> str:
    """The chromium executable (Debian's package installs /usr/bin/chromium)."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    sys.exit("error: no chromium on PATH: apt-get install -y chromium")


def main() -> int:
    """Start a head, submit, wait for running trials, screenshot, clean up."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default=str(ROOT / "docs"))
    parser.add_argument("--settle", type=float, default=8.0, help="seconds per page to render")
    opts = parser.parse_args()
    browser = chromium()
    work = Path(tempfile.mkdtemp(prefix="dash_shot_"))
    token_file = work / "token"
    token_file.write_text(secrets.token_hex(32))
    token = token_file.read_text()
    env = dict(os.environ, RAY_AUTH_TOKEN_PATH=str(token_file), PYTHONPATH=str(ROOT))
    env.pop("RAY_AUTH_TOKEN", None)
    head = RayHead(num_cpus=2, token_path=str(token_file)).start()
    browser_proc = None
    try:
        submitted = subprocess.run(
            [sys.executable, "-m", "fishr_tune.submit", "--address", head.dashboard_url, "--",
             *SWEEP, "--output", str(work / "sweeps")], env=env, capture_output=True, text=True,
            check=True)
        print(submitted.stdout, end="")
        job_id = "fishr_tune-dashboard-demo-1"
        records = work / "sweeps" / "dashboard-demo" / "records"
        deadline = time.time() + 600
        while len(list(records.glob("*.parquet"))) < 2:  # two trials are training
            if time.time() > deadline:
                raise SystemExit("error: the sweep did not start within 10 minutes")
            time.sleep(1)
        debug_port = free_port()
        browser_proc = subprocess.Popen(
            [browser, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
             f"--remote-debugging-port={debug_port}", f"--user-data-dir={work / 'profile'}",
             f"--window-size={WIDTH},{HEIGHT}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(60):
            try:
                requests.get(f"http://127.0.0.1:{debug_port}/json/version", timeout=2)
                break
            except requests.RequestException:
                time.sleep(0.5)
        out = Path(opts.out)
        out.mkdir(parents=True, exist_ok=True)
        pages = {out / "dashboard_jobs.png": f"{head.dashboard_url}/#/jobs",
                 out / "dashboard_job.png": f"{head.dashboard_url}/#/jobs/{job_id}",
                 out / "dashboard_actors.png": f"{head.dashboard_url}/#/actors",
                 out / "dashboard_cluster.png": f"{head.dashboard_url}/#/cluster"}
        asyncio.run(capture(debug_port, head.dashboard_url, token, pages, opts.settle))
    finally:
        if browser_proc is not None:
            browser_proc.kill()
            browser_proc.wait()
        head.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
