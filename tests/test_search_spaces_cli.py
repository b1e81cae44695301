"""search_spaces: ``python -m search_spaces`` run as a user runs it (a subprocess)."""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(*args):
    return subprocess.run([sys.executable, "-m", "search_spaces", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def test_table():
    done = _run("--algorithm", "Fishr", "--dataset", "officehome")
    assert done.returncode == 0 and done.stderr == ""
    lines = done.stdout.splitlines()
    assert lines[0] == "# Fishr on OfficeHome (dataset group: big)"
    assert lines[1].split() == ["name", "default", "distribution"]
    rows = {line.split()[0]: line.split(None, 2)[1:] for line in lines[2:]}
    assert rows["lambda"] == ["1000.0", "10^U(1, 4)"]
    assert rows["penalty_anneal_iters"] == ["1500", "int(U(0, 5000))"]
    assert rows["ema"] == ["0.95", "U(0.9, 0.99)"]
    assert rows["lr"] == ["5e-05", "10^U(-5, -3.5)"]
    assert rows["batch_size"] == ["32", "int(2^U(3, 5.5))"]
    assert rows["fishr_backend"] == ["'closed_form'", "fixed"]
    assert len(rows) == 12


def test_drawn_configuration_is_json():
    done = _run("--algorithm", "fishr", "--dataset", "ColoredMNIST",
                "--hparams-seed", "1", "--trial-seed", "0")
    assert done.returncode == 0
    got = json.loads(done.stdout)
    assert got["lambda"] == 809.251247284292 and got["penalty_anneal_iters"] == 4072
    assert got["ema"] == 0.9129082782560279 and got["lr"] == 0.00011906162909279594
    assert got["batch_size"] == 372 and got["resnet_dropout"] == 0.5


def test_overrides_and_default_trial_seed():
    done = _run("--algorithm", "ERM", "--dataset", "VLCS", "--hparams-seed", "1",
                "--hparams", '{"batch_size": 16.0}')
    assert done.returncode == 0
    got = json.loads(done.stdout)
    assert got["lr"] == 2.7028930742148706e-05 and got["batch_size"] == 16  # trial_seed 0
    defaults = json.loads(_run("--algorithm", "ERM", "--dataset", "VLCS",
                               "--trial-seed", "4").stdout)
    assert defaults["lr"] == 5e-05 and defaults["batch_size"] == 32  # hparams_seed 0
    table = _run("--algorithm", "ERM", "--dataset", "VLCS", "--hparams", '{"lr": 1e-4}')
    assert "fixed = 0.0001 (override)" in table.stdout


@pytest.mark.parametrize("args,fragment", [
    (["--algorithm", "Fisher", "--dataset", "VLCS"], "unknown algorithm 'Fisher'"),
    (["--algorithm", "Fishr", "--dataset", "MNISTT"], "unknown dataset 'MNISTT'"),
    (["--algorithm", "Fishr"], "--dataset"),
    (["--algorithm", "Fishr", "--dataset", "VLCS", "--hparams", '{"ema": 1.0}'],
     "hparam 'ema' must be a float in [0, 1), got 1.0"),
    (["--algorithm", "Fishr", "--dataset", "VLCS", "--hparams", '{"foo": 1}'],
     "unknown hparam 'foo'"),
    (["--algorithm", "Fishr", "--dataset", "VLCS", "--hparams", "{bad"], "not valid JSON"),
    (["--algorithm", "Fishr", "--dataset", "VLCS", "--hparams", "[1]"], "JSON object"),
    (["--algorithm", "Fishr", "--dataset", "VLCS", "--hparams-seed", "-2"], "hparams_seed"),
    (["--algorithm", "Fishr", "--dataset", "VLCS", "--trial-seed", "x"], "--trial-seed"),
])
def test_bad_input_is_one_line_and_exit_2(args, fragment):
    done = _run(*args)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("error: ")
    assert fragment in done.stderr
