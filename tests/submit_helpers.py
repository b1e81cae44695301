"""Helpers of the submit tests: client environments, the submit CLI as a process, records."""

import os
import secrets
import subprocess
import sys
import time

from fishr_tune.records import read_file_table, read_records

SWEEP = ["--dataset", "colored_digits", "--algorithms", "ERM", "--test-envs", "0",
         "--trial-seeds", "1"]


def submit_env(tmp_path, **extra):
    """A client environment with no token of its own: only what ``extra`` gives."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("RAY_AUTH") and k not in ("RAY_ADDRESS", "RAY_API_SERVER_ADDRESS")}
    return dict(env, HOME=str(home), **extra)


def run_submit(args, env, timeout=300):
    """``python -m fishr_tune.submit ARGS`` as a real process."""
    return subprocess.run([sys.executable, "-m", "fishr_tune.submit", *args], env=env,
                          capture_output=True, text=True, timeout=timeout)


def finished_files(records_dir, last_step):
    """{file name: bytes} of the record files whose trial reached ``last_step`` with status ok."""
    done = {}
    for path in records_dir.glob("*.parquet"):
        table = read_file_table(str(path), columns=["status", "step"]).to_pydict()
        if set(table["status"]) == {"ok"} and last_step in table["step"]:
            done[path.name] = path.read_bytes()
    return done


def assert_each_trial_once(records_dir, trials, steps):
    """Every trial has exactly one row per checkpoint, all ok: nothing lost, nothing twice."""
    records = read_records(str(records_dir))
    assert records["trial_id"].nunique() == trials
    assert set(records["status"]) == {"ok"}
    for _, rows in records.groupby("trial_id"):
        assert sorted(rows["step"]) == steps
    return records


def wait_for(predicate, timeout_s, what):
    """Poll ``predicate`` until true; fail naming ``what`` after ``timeout_s``."""
    deadline = time.time() + timeout_s
    while not predicate():
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


def new_token_file(tmp_path_factory) -> str:
    """A fresh random cluster token in a temporary file (never ~/.ray/auth_token)."""
    path = tmp_path_factory.mktemp("auth") / "token"
    path.write_text(secrets.token_hex(32))
    return str(path)
