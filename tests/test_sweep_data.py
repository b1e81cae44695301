"""Data that lives only on the worker nodes: the driver reads none, a node without it says so."""

import subprocess
import sys
import time

import pytest

from fishr_tune.records import read_records
from fishr_tune.sweep.config import SweepConfig
from fishr_tune.sweep.driver import run_sweep
from tests.test_datasets_mnist import write_mnist


def _mnist_config(tmp_path, name, data_dir, **kw):
    return SweepConfig(datasets=["colored_mnist"], algorithms=["ERM"], test_envs=[2],
                       num_samples=1, trial_seeds=1, steps=2, checkpoint_freq=1,
                       data_dir=str(data_dir), output=str(tmp_path), name=name,
                       hparams={"batch_size": 4}, max_failures=0, **kw)


def test_trial_on_a_node_without_the_data_fails_naming_node_and_path(local_ray, tmp_path):
    import ray

    missing = tmp_path / "not-on-this-node"
    outcome = run_sweep(_mnist_config(tmp_path, "nodata", missing))
    assert outcome.counts["error"] == 1 and outcome.counts["trials"] == 1
    error = outcome.records["error"].iloc[0]
    assert outcome.records["status"].iloc[0] == "error"
    assert "\n" not in error
    node_id = ray.nodes()[0]["NodeID"]
    assert f"node {ray.util.get_node_ip_address()} (node {node_id[:12]})" in error
    assert str(missing / "MNIST" / "raw") in error


@pytest.mark.timeout(400)
def test_driver_starts_without_the_data_and_trials_read_it_where_they_run(tmp_path):
    """The data folder does not exist while the driver plans, starts its chunk driver and the
    Tuner; it appears only while the trial waits for a CPU (held by a blocker actor)."""
    import ray
    from ray.cluster_utils import Cluster

    ray.shutdown()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    data_dir = tmp_path / "data"
    try:
        ray.init(address=cluster.address)

        @ray.remote(num_cpus=1)
        class Blocker:
            def ready(self):
                return True

        blocker = Blocker.remote()
        ray.get(blocker.ready.remote())  # the only CPU is taken: no trial can start
        cmd = [sys.executable, "-m", "fishr_tune.run", "--dataset", "colored_mnist",
               "--algorithms", "ERM", "--test-envs", "2", "--num-samples", "2",
               "--trial-seeds", "1", "--steps", "2", "--checkpoint-freq", "1",
               "--hparams", '{"batch_size": 4}', "--data-dir", str(data_dir),
               "--output", str(tmp_path), "--name", "late", "--address", cluster.address]
        with open(tmp_path / "run.log", "w") as log:
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
            tune_dir = tmp_path / "late" / "tune" / "chunk-00000"
            deadline = time.time() + 200
            while not tune_dir.exists() and time.time() < deadline:
                assert proc.poll() is None, (tmp_path / "run.log").read_text()[-3000:]
                time.sleep(0.2)
            assert tune_dir.exists(), (tmp_path / "run.log").read_text()[-3000:]
            time.sleep(3)  # the Tuner is up and its first trial waits for the CPU
            assert not data_dir.exists() and proc.poll() is None
            write_mnist(data_dir)
            ray.kill(blocker)
            proc.wait(timeout=300)
        log_text = (tmp_path / "run.log").read_text()
        assert proc.returncode == 0, log_text[-3000:]
    finally:
        ray.shutdown()
        cluster.shutdown()
    df = read_records(str(tmp_path / "late"))
    trials = df.groupby("trial_id").first()
    assert len(trials) == 2 and set(trials["status"]) == {"ok"}
    assert sorted(df["step"]) == [0, 0, 1, 1]
