"""fishr_tune.submit's parsing, checks and job plumbing, without a cluster."""

import shlex
from types import SimpleNamespace

import pytest

from fishr_tune import submit


def opts(*argv):
    return submit.build_parser().parse_args(list(argv))


@pytest.mark.parametrize("argv, message", [
    ([], "nothing to submit"),
    (["--", "--output", "results", "--name", "a"], "--output results is relative"),
    (["--", "--output", "/s", "--name", "../x"], "use letters, digits"),
    (["--", "--output", "/s", "--name", "a", "--address", "auto"], "drop --address"),
    (["--", "--output", "/s", "--name", "a", "--resume"], "drop --resume"),
    (["--name", "a", "--", "--output", "/s", "--name", "b"], "differ"),
    (["--", "--output", "/s", "--name", "a", "--no-such-flag"], "unrecognized arguments"),
    (["--", "--output", "/s", "--name", "a", "--steps", "x"], "invalid int value"),
    (["--address", "ray://h:10001", "--", "--output", "/s", "--name", "a"], "dashboard's URL"),
    (["--env", "NOEQUALS", "--", "--output", "/s", "--name", "a"], "--env NOEQUALS"),
    (["--stop-wait", "-5", "--", "--output", "/s", "--name", "a"], "--stop-wait is -5"),
    (["--status"], "expected one argument"),
    (["--dataset", "pacs"], "the sweep's own flags go after --"),
    (["--status", "a", "--stop", "a"], "not allowed with"),
])
def test_bad_input_is_one_line_and_status_2_before_any_connection(argv, message, capsys,
                                                                  monkeypatch):
    monkeypatch.setattr(submit, "connect", lambda url: pytest.fail("contacted the cluster"))
    monkeypatch.setattr("fishr_tune.sweep.cluster.probe_address", lambda url: None)
    assert submit.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and message in err


def test_entrypoint_resumes_if_exists_and_keeps_every_sweep_flag():
    name, run_args = submit.split_run_args(opts(
        "--", "--dataset", "pacs", "--name=my.sweep", "--output", "/mnt/shared/sweeps",
        "--hparams", '{"lr": 0.001}', "--gpus-per-trial", "0.25"))
    assert name == "my.sweep"
    command = shlex.split(submit.entrypoint("python3", name, run_args))
    assert command == ["python3", "-m", "fishr_tune.run", "--resume-if-exists", "--name",
                       "my.sweep", "--dataset", "pacs", "--output", "/mnt/shared/sweeps",
                       "--hparams", '{"lr": 0.001}', "--gpus-per-trial", "0.25"]
    assert submit.split_run_args(opts("--name", "n", "--", "--output", "s3://b/x"))[0] == "n"


def test_a_sweep_without_a_name_gets_the_same_name_for_the_same_flags():
    flags = ["--", "--dataset", "folder:/data/My Set", "--search", "bayes", "--output", "/s"]
    name, _ = submit.split_run_args(opts(*flags))
    assert name == submit.split_run_args(opts(*flags))[0]
    assert name.startswith("folder_data_My_Set-bayes-") and submit.NAME_PATTERN.fullmatch(name)
    other, _ = submit.split_run_args(opts(*flags, "--steps", "10"))
    assert other != name


def test_runtime_env_ships_the_checkout_and_a_graceful_stop(tmp_path):
    env = submit.runtime_env(opts("--env", "A=1=2", "--exclude", "data/", "--stop-wait", "300",
                                  "--working-dir", str(tmp_path)))
    assert env["working_dir"] == str(tmp_path)
    assert {".git", ".venv", "results", "data/"} <= set(env["excludes"])
    assert env["env_vars"] == {"RAY_JOB_STOP_SIGNAL": "SIGINT", "RAY_JOB_STOP_WAIT_TIME_S": "300",
                               "PYTHONUNBUFFERED": "1", "A": "1=2"}
    assert "working_dir" not in submit.runtime_env(opts("--no-working-dir"))
    default = submit.runtime_env(opts())["working_dir"]
    assert (__import__("pathlib").Path(default) / "fishr_tune" / "submit.py").is_file()


def test_dashboard_url_prefers_the_flag_over_the_env(monkeypatch):
    monkeypatch.setenv("RAY_API_SERVER_ADDRESS", "http://env:8265")
    assert submit.dashboard_url(None) == "http://env:8265"
    assert submit.dashboard_url("head:8265/") == "http://head:8265"
    monkeypatch.delenv("RAY_API_SERVER_ADDRESS")
    assert submit.dashboard_url(None) == submit.DEFAULT_ADDRESS


class FakeJob(SimpleNamespace):
    """What JobSubmissionClient.list_jobs/get_job_info return (only the fields used)."""


def test_attempts_exit_status_and_description():
    assert submit.attempt_of("fishr_tune-my-sweep-12") == 12
    assert submit.attempt_of("raysubmit_abc") == 0
    from ray.job_submission import JobStatus

    def job(status, code=None):
        return FakeJob(status=status, driver_exit_code=code, submission_id="fishr_tune-a-1",
                       metadata={submit.SWEEP_KEY: "a"}, message="done\nnow")
    assert submit.job_exit_status(job(JobStatus.SUCCEEDED)) == 0
    assert submit.job_exit_status(job(JobStatus.FAILED, 2)) == 2
    assert submit.job_exit_status(job(JobStatus.FAILED)) == 1
    assert submit.job_exit_status(job(JobStatus.STOPPED)) == submit.STOPPED_EXIT
    assert submit.describe(job(JobStatus.RUNNING)) == "fishr_tune-a-1: RUNNING; sweep a; done now"
