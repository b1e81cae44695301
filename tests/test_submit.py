"""fishr_tune.submit against a real `ray start --head` on loopback (token auth on).

One head is shared by the module (the head-kill test, in test_submit_resume.py, has its own).
Every process gets RAY_AUTH_MODE / the token explicitly, and HOME is a temporary folder, so
~/.ray/auth_token is never read nor written.
"""

import time

import pytest
import requests

from tests.ray_head import RayHead, free_port
from tests.submit_helpers import (SWEEP, assert_each_trial_once, new_token_file, run_submit,
                                  submit_env)


@pytest.fixture(scope="module")
def token_file(tmp_path_factory):
    """A fresh cluster token (never ~/.ray/auth_token)."""
    return new_token_file(tmp_path_factory)


@pytest.fixture(scope="module")
def head(token_file):
    """A real token-auth Ray head with its dashboard, shared by this module's tests."""
    with RayHead(num_cpus=2, token_path=token_file) as ray_head:
        yield ray_head


def test_submitted_sweep_succeeds_with_the_token_and_is_not_submitted_twice(head, token_file,
                                                                            tmp_path):
    env = submit_env(tmp_path, RAY_AUTH_TOKEN_PATH=token_file)
    sweep = SWEEP + ["--num-samples", "3", "--steps", "20", "--checkpoint-freq", "10",
                     "--output", str(tmp_path / "sweeps"), "--name", "tiny"]
    first = run_submit(["--address", head.dashboard_url, "--", *sweep], env)
    assert first.returncode == 0, first.stderr
    assert "submitted job fishr_tune-tiny-1" in first.stdout
    assert f"dashboard: {head.dashboard_url}/#/jobs/fishr_tune-tiny-1" in first.stdout
    # Submitting the running sweep again starts nothing new.
    again = run_submit(["--address", head.dashboard_url, "--", *sweep], env)
    assert again.returncode == 0, again.stderr
    assert "already has job fishr_tune-tiny-1" in again.stdout
    followed = run_submit(["--address", head.dashboard_url, "--logs", "tiny", "--follow"], env)
    assert followed.returncode == 0, followed.stdout[-2000:] + followed.stderr
    assert "fishr_tune-tiny-1: SUCCEEDED" in followed.stdout
    records_dir = tmp_path / "sweeps" / "tiny" / "records"
    records = assert_each_trial_once(records_dir, 3, [0, 10, 19])
    assert set(records["hparams_seed"]) == {1, 2, 3}

    headers = {"Authorization": f"Bearer {open(token_file).read().strip()}"}
    info = requests.get(f"{head.dashboard_url}/api/jobs/fishr_tune-tiny-1", headers=headers,
                        timeout=10).json()
    assert info["runtime_env"]["working_dir"].startswith("gcs://_ray_pkg_")
    assert info["runtime_env"]["env_vars"]["RAY_JOB_STOP_SIGNAL"] == "SIGINT"
    assert info["entrypoint"].split()[:5] == ["python", "-m", "fishr_tune.run",
                                              "--resume-if-exists", "--name"]
    status = run_submit(["--address", head.dashboard_url, "--status", "fishr_tune-tiny-1"], env)
    assert status.returncode == 0 and status.stdout.startswith("fishr_tune-tiny-1: SUCCEEDED")


def test_dashboard_and_jobs_api_require_the_token(head, token_file, tmp_path):
    token = open(token_file).read().strip()
    for route in ("/api/jobs/", "/api/version", "/api/cluster_status"):
        url = head.dashboard_url + route
        assert requests.get(url, timeout=10).status_code == 401
        assert requests.get(url, headers={"Authorization": "Bearer " + "0" * 64},
                            timeout=10).status_code == 403
        assert requests.get(url, headers={"Authorization": f"Bearer {token}"},
                            timeout=10).status_code == 200
    assert requests.get(head.dashboard_url + "/", timeout=10).status_code == 200  # login page

    missing = run_submit(["--address", head.dashboard_url, "--status", "x"], submit_env(tmp_path))
    assert missing.returncode == 2
    assert missing.stderr.count("\n") == 1 and "requires an auth token" in missing.stderr
    wrong = run_submit(["--address", head.dashboard_url, "--status", "x"],
                       submit_env(tmp_path, RAY_AUTH_TOKEN="0" * 64))
    assert wrong.returncode == 2
    assert wrong.stderr.count("\n") == 1
    assert "refused the auth token from RAY_AUTH_TOKEN (HTTP 403)" in wrong.stderr
    # The right token from ~/.ray/auth_token (a temporary HOME) is found and sent.
    home_env = submit_env(tmp_path)
    (tmp_path / "home" / ".ray").mkdir()
    (tmp_path / "home" / ".ray" / "auth_token").write_text(token + "\n")
    unknown = run_submit(["--address", head.dashboard_url, "--status", "nosuchjob"], home_env)
    assert unknown.returncode == 2 and "no job or sweep 'nosuchjob'" in unknown.stderr


def test_submit_to_a_dead_address_fails_fast(tmp_path):
    address = f"http://127.0.0.1:{free_port()}"
    start = time.time()
    result = run_submit(["--address", address, "--", "--output", str(tmp_path), "--name", "x"],
                        submit_env(tmp_path), timeout=60)
    assert result.returncode == 2
    assert time.time() - start < 15  # no Ray, no torch: a TCP probe, even on a loaded box
    assert result.stderr.count("\n") == 1 and f"cannot reach a Ray cluster at {address}" \
        in result.stderr
