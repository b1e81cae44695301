"""deploy/: the cluster-launcher YAML, the KubeRay RayJob and the SLURM script parse, validate
where a schema is at hand, and name the entry point, the resources and the shared paths."""

import json
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from fishr_tune.run import build_parser as run_parser

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
SHARED = "/mnt/shared"


def run_flags(command: str, variables: dict | None = None):
    """The fishr_tune.run flags of a shell command line, parsed by fishr_tune.run itself.

    ``variables``: shell variables to expand first (a script's ``VAR=${VAR:-default}``).
    """
    for name, value in (variables or {}).items():
        command = re.sub(rf"\$\{{?{name}\b\}}?", value, command)
    words = shlex.split(command)
    start = words.index("fishr_tune.run") + 1
    assert words[start - 2] == "-m"
    return run_parser().parse_args(words[start:])


def script_defaults(text: str) -> dict:
    """``{VAR: default}`` of every ``VAR=${VAR:-default}`` line of a shell script."""
    found = re.findall(r'^(\w+)=\$\{\1:-"?(.*?)"?\}$', text, flags=re.M)
    return dict(found)


def test_cluster_launcher_yaml_is_valid_and_mounts_shared_storage_with_token_auth():
    import jsonschema
    import ray

    config = yaml.safe_load((DEPLOY / "cluster.yaml").read_text())
    schema_path = Path(ray.__file__).parent / "autoscaler" / "ray-schema.json"
    jsonschema.validate(config, json.loads(schema_path.read_text()))  # Ray 2.60's own schema
    gpu = config["available_node_types"]["gpu"]
    assert gpu["resources"]["GPU"] >= 1 and gpu["max_workers"] >= 1
    assert config["available_node_types"][config["head_node_type"]]["resources"]["CPU"] == 0
    setup = " ".join(config["setup_commands"])
    assert "mount -t nfs4" in setup and SHARED in setup
    starts = config["head_start_ray_commands"] + config["worker_start_ray_commands"]
    token = f"RAY_AUTH_TOKEN_PATH={SHARED}/.ray/auth_token"
    for command in (c for c in starts if "ray start" in c):
        assert "RAY_AUTH_MODE=token" in command and token in command
    assert any("--dashboard-host=0.0.0.0" in c for c in config["head_start_ray_commands"])
    assert "fishr_tune.submit" in (DEPLOY / "cluster.yaml").read_text()


def test_rayjob_resumes_on_retry_with_gpu_workers_and_a_read_write_many_volume():
    claim, job = yaml.safe_load_all((DEPLOY / "rayjob.yaml").read_text())
    assert claim["kind"] == "PersistentVolumeClaim"
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    assert job["apiVersion"] == "ray.io/v1" and job["kind"] == "RayJob"
    spec = job["spec"]
    flags = run_flags(spec["entrypoint"])
    assert flags.resume_if_exists and flags.name
    assert flags.output.startswith(SHARED) and flags.data_dir.startswith(SHARED)
    assert flags.gpus_per_trial > 0
    assert spec["backoffLimit"] >= 1
    env = yaml.safe_load(spec["runtimeEnvYAML"])["env_vars"]
    assert env["RAY_JOB_STOP_SIGNAL"] == "SIGINT" and int(env["RAY_JOB_STOP_WAIT_TIME_S"]) >= 60
    cluster = spec["rayClusterSpec"]
    assert cluster["rayVersion"] == "2.60.0" and cluster["authOptions"]["mode"] == "token"
    pods = [cluster["headGroupSpec"]["template"]["spec"]] + \
        [g["template"]["spec"] for g in cluster["workerGroupSpecs"]]
    for pod in pods:  # every pod mounts the same claim at the same path
        assert pod["volumes"][0]["persistentVolumeClaim"]["claimName"] == \
            claim["metadata"]["name"]
        assert pod["containers"][0]["volumeMounts"][0]["mountPath"] == SHARED
    gpu_limits = cluster["workerGroupSpecs"][0]["template"]["spec"]["containers"][0][
        "resources"]["limits"]
    assert int(gpu_limits["nvidia.com/gpu"]) >= 1


def test_slurm_script_is_valid_bash_and_runs_the_sweep_through_symmetric_run():
    text = (DEPLOY / "slurm.sbatch").read_text()
    subprocess.run(["bash", "-n", str(DEPLOY / "slurm.sbatch")], check=True)
    directives = dict(line[len("#SBATCH "):].split("=", 1) for line in text.splitlines()
                      if line.startswith("#SBATCH --") and "=" in line)
    assert int(directives["--nodes"]) >= 2 and int(directives["--gpus-per-task"]) >= 1
    assert directives["--tasks-per-node"] == "1" and "#SBATCH --requeue" in text
    command = text[text.index("srun --nodes="):].replace("\\\n", " ")
    assert "ray symmetric-run --address" in command and "--min-nodes" in command
    assert '--num-gpus "$SLURM_GPUS_PER_TASK"' in command
    assert "RAY_AUTH_MODE=token" in text and 'RAY_AUTH_TOKEN_PATH="$SHARED/.ray/auth_token"' in text
    defaults = script_defaults(text)
    assert defaults["SHARED"] == SHARED
    flags = run_flags(command.split(" -- ", 1)[1], defaults)
    assert flags.resume_if_exists and flags.address == "auto" and flags.name == "officehome"
    assert flags.output == f"{SHARED}/sweeps" and flags.data_dir == f"{SHARED}/data"
    assert flags.gpus_per_trial == 0.25 and flags.algorithms == ["ERM", "Fishr"]


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck not installed")
def test_slurm_script_passes_shellcheck():
    subprocess.run(["shellcheck", str(DEPLOY / "slurm.sbatch")], check=True)
