"""A submitted sweep survives a graceful --stop and the death of its whole Ray head.

Real `ray start --head` processes on loopback with token auth; the first head is SIGKILLed with
every process it started (the job's driver included), a second head takes over the same shared
sweep folder. Assertions are on the Parquet records only, not on Tune's internals.
"""

import subprocess
import sys
import time

import pytest

from tests.ray_head import RayHead
from tests.submit_helpers import (SWEEP, assert_each_trial_once, finished_files, new_token_file,
                                  run_submit, submit_env, wait_for)


@pytest.mark.timeout(900)
def test_stopped_then_head_killed_sweep_resubmitted_runs_every_trial_exactly_once(tmp_path_factory,
                                                                                  tmp_path):
    """--stop (SIGINT, Tune saves), resubmit, SIGKILL the whole head, new head, resubmit."""
    token_file = new_token_file(tmp_path_factory)
    env = submit_env(tmp_path, RAY_AUTH_TOKEN_PATH=token_file)
    sweep = SWEEP + ["--num-samples", "6", "--steps", "100", "--checkpoint-freq", "25",
                     "--output", str(tmp_path / "shared"), "--name", "survivor"]
    records_dir = tmp_path / "shared" / "survivor" / "records"
    steps = [0, 25, 50, 75, 99]
    first_head = RayHead(num_cpus=2, token_path=token_file).start()
    address = ["--address", first_head.dashboard_url]
    try:
        assert run_submit([*address, "--", *sweep], env).returncode == 0
        wait_for(lambda: finished_files(records_dir, 99), 300, "a finished trial")
        start = time.time()
        stopped = run_submit([*address, "--stop", "survivor"], env)
        assert stopped.returncode == 0, stopped.stderr
        assert "fishr_tune-survivor-1: STOPPED" in stopped.stdout
        assert time.time() - start < 100  # Tune exited on SIGINT, not killed at --stop-wait
        after_stop = finished_files(records_dir, 99)
        assert 1 <= len(after_stop) < 6, "the sweep must be stopped mid-way"

        resubmitted = run_submit([*address, "--", *sweep], env)
        assert "submitted job fishr_tune-survivor-2" in resubmitted.stdout
        follower = subprocess.Popen([sys.executable, "-m", "fishr_tune.submit", *address,
                                     "--logs", "survivor", "--follow"], env=env, text=True,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_for(lambda: len(finished_files(records_dir, 99)) > len(after_stop), 300,
                 "a trial finished after the resubmission")
        before_kill = finished_files(records_dir, 99)
        assert len(before_kill) < 6, "the head must be killed mid-sweep"
    finally:
        first_head.stop()  # SIGKILL: the head, its workers and the job's driver
    assert first_head.pids() == []
    # Following the logs when the head dies: one line saying so, exit 1 (the sweep is safe).
    assert follower.wait(timeout=60) == 1
    assert "lost the cluster at" in follower.stderr.read()
    with RayHead(num_cpus=2, token_path=token_file) as second_head:
        resumed = run_submit(["--address", second_head.dashboard_url, "--follow", "--",
                              *sweep], env, timeout=500)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr
    assert "fishr_tune-survivor-1: SUCCEEDED" in resumed.stdout  # the new head knew no job
    records = assert_each_trial_once(records_dir, 6, steps)
    assert set(records["hparams_seed"]) == set(range(1, 7))
    after = finished_files(records_dir, 99)
    # Trials finished before each interruption were never rerun: their files are untouched.
    assert {name: after[name] for name in before_kill} == before_kill
