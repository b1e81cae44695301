"""Sweeps across a real two-node local Ray cluster, and a killed driver that is resumed."""

import os
import signal
import subprocess
import sys
import time

import pytest

from fishr_tune.records import read_records
from fishr_tune.sweep.config import SweepConfig
from fishr_tune.sweep.driver import run_sweep
from fishr_tune.sweep.trainable import final_status
from tests.submit_helpers import finished_files


def test_two_node_cluster_runs_trials_on_both_nodes(tmp_path):
    import ray
    from ray.cluster_utils import Cluster

    ray.shutdown()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    try:
        config = SweepConfig(datasets=["colored_digits"], algorithms=["ERM", "Fishr"],
                             test_envs=[0, 1], num_samples=2, trial_seeds=1, steps=60,
                             checkpoint_freq=20, output=str(tmp_path), name="two_nodes")
        outcome = run_sweep(config, address=cluster.address)
        node_ids = {n["NodeID"] for n in ray.nodes() if n["Alive"]}
    finally:
        ray.shutdown()
        cluster.shutdown()
    trials = outcome.records.groupby("trial_id").first()
    assert len(trials) == 2 * 2 * 2 and set(trials["status"]) == {"ok"}
    assert set(trials["node_id"]) == node_ids and len(node_ids) == 2
    assert len(outcome.records) == 8 * 4  # checkpoints 0, 20, 40, 59 of every trial


def _default_sigint():
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.timeout(1500)
@pytest.mark.parametrize("search", ["random", "bayes"])
def test_killed_driver_is_resumed_without_loss_or_duplicates(tmp_path, search):
    base = [sys.executable, "-m", "fishr_tune.run", "--dataset", "colored_digits",
            "--algorithms", "ERM", "--test-envs", "2", "--trial-seeds", "1",
            "--output", str(tmp_path), "--name", "killed", "--num-cpus", "2"]
    first = base + ["--num-samples", "8", "--steps", "200", "--checkpoint-freq", "50",
                    "--search", search]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    with open(tmp_path / "first.log", "w") as log:
        proc = subprocess.Popen(first, stdout=log, stderr=subprocess.STDOUT, env=env)
        records_dir = tmp_path / "killed" / "records"
        deadline = time.time() + 700  # an upper bound for a loaded machine
        while len(finished_files(records_dir, 199)) < 2 and time.time() < deadline:
            assert proc.poll() is None, (tmp_path / "first.log").read_text()[-3000:]
            time.sleep(0.5)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    finished_before = finished_files(records_dir, 199)
    assert 2 <= len(finished_before) < 8
    resumed = subprocess.run(base + ["--resume", "--dashboard"], capture_output=True, text=True,
                             env=env, timeout=700)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    df = read_records(str(tmp_path / "killed"))
    trials = df.groupby("trial_id")
    assert trials.ngroups == 8
    assert sorted(df.groupby("trial_id").first()["trial_index"]) == list(range(8))
    if search == "random":
        assert sorted(df.groupby("trial_id").first()["hparams_seed"]) == list(range(1, 9))
    else:  # every TPE proposal told to its Optuna study exactly once
        import optuna
        journal = optuna.storages.journal
        storage = journal.JournalStorage(journal.JournalFileBackend(
            str(tmp_path / "killed" / "optuna.journal")))
        study = optuna.load_study(study_name="ColoredDigits.ERM.env2.seed0", storage=storage)
        complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
        assert len(complete) == 8
    for _, rows in trials:
        assert sorted(rows["step"]) == [0, 50, 100, 150, 199]  # each checkpoint exactly once
        assert set(rows["status"]) == {"ok"}
    # Trials that had finished before the kill were not rerun: their files are untouched.
    after = {p.name: p.read_bytes() for p in records_dir.glob("*.parquet")}
    for name, content in finished_before.items():
        assert after[name] == content
    assert "sweep finished: 8 trials: 8 ok" in resumed.stdout
    assert "Ray dashboard: http://127.0.0.1:" in resumed.stdout


@pytest.mark.timeout(1500)
def test_interrupted_sweep_says_how_to_resume_and_keeps_trials_resumable(tmp_path):
    """Ctrl-C (SIGINT to the process group): one line naming the resume command, exit 130, no
    traceback, trials in flight left ``running`` with their state; the resume finishes them."""
    base = [sys.executable, "-m", "fishr_tune.run", "--dataset", "colored_digits",
            "--algorithms", "ERM", "--test-envs", "2", "--trial-seeds", "1", "--num-samples",
            "6", "--steps", "200", "--checkpoint-freq", "50", "--output", str(tmp_path),
            "--name", "ctrlc", "--num-cpus", "2"]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    records_dir = tmp_path / "ctrlc" / "records"
    with open(tmp_path / "first.log", "w") as log:
        # Its own process group with SIGINT at its default, as a shell runs a foreground job
        # (this pytest process may ignore SIGINT by now, and children inherit that).
        proc = subprocess.Popen(base, stdout=log, stderr=subprocess.PIPE, text=True, env=env,
                                start_new_session=True, preexec_fn=_default_sigint)
        deadline = time.time() + 700
        while time.time() < deadline:
            assert proc.poll() is None, (tmp_path / "first.log").read_text()[-3000:]
            statuses = {p.name: final_status(str(p))
                        for p in records_dir.glob("*.parquet")} if records_dir.exists() else {}
            if "ok" in statuses.values() and "running" in statuses.values():
                break
            time.sleep(0.3)
        os.killpg(proc.pid, signal.SIGINT)
        _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 130, stderr[-3000:]
    assert "Traceback" not in stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("sweep ctrlc interrupted: ") and " of 6 trials finished" in last
    assert last.endswith(f"--output {tmp_path} --name ctrlc --resume")
    df = read_records(str(tmp_path / "ctrlc"))
    first = df.groupby("trial_id")["status"].first()
    assert "error" not in set(first) and (first == "running").any()
    state = {p.stem for p in (tmp_path / "ctrlc" / "state").glob("*.pt")}
    assert set(first[first == "running"].index) <= state  # their state survives for the resume
    command = last.rsplit("continue it with: ", 1)[1].split()
    assert command[:3] == ["python", "-m", "fishr_tune.run"]
    resumed = subprocess.run([sys.executable] + command[1:], capture_output=True, text=True,
                             env=env, timeout=700)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    df = read_records(str(tmp_path / "ctrlc"))
    assert df["trial_id"].nunique() == 6
    for _, rows in df.groupby("trial_id"):
        assert sorted(rows["step"]) == [0, 50, 100, 150, 199] and set(rows["status"]) == {"ok"}
