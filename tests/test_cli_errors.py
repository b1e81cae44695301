"""Bad input on the command lines: one line on stderr naming the fix, exit status 2."""

import subprocess
import sys

import pytest

RUN = [sys.executable, "-m", "fishr_tune.run"]
TRAIN = [sys.executable, "-m", "fishr_tune.train"]


def _fails_with_one_line(cmd, needle, cwd):
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=cwd)
    assert done.returncode == 2, done.stdout[-2000:] + done.stderr[-2000:]
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ") and needle in lines[0], lines[0]


def _refused_in_process(main, argv, needle, capsys):
    """A CLI's main() in this process: exit status 2 and exactly one ``error:`` line."""
    assert main(argv) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], lines


@pytest.mark.parametrize("args, needle", [
    (["--dataset", "imagenet"], "unknown dataset 'imagenet'"),
    (["--algorithms", "ERM", "Bogus"], "Bogus"),
    (["--num-samples", "0"], "--num-samples"),
    (["--trial-seeds", "0"], "--trial-seeds"),
    (["--steps", "0"], "--steps"),
    (["--hparams", "{lr: 1}"], "--hparams is not valid JSON"),
    (["--hparams", '{"lr": -1}'], "lr"),
    (["--hparams", '{"nope": 1}'], "nope"),
    (["--dataset", "officehome", "--data-dir", "/nonexistent"], "/nonexistent"),
    (["--address", "127.0.0.1:1"], "cannot reach a Ray cluster"),
    (["--name", "ghost", "--resume"], "no sweep named 'ghost'"),
    (["--resume-if-exists"], "--resume-if-exists needs --name"),
    (["--num-samples", "many"], "argument --num-samples: invalid int value"),
    (["--search", "grid"], "argument --search: invalid choice"),
    (["--test-envs", "7"], "test env 7 is out of range for ColoredDigits"),
    (["--num-samples", "-5"], "--num-samples is -5: it must be at least 1"),
    (["--trial-seeds", "-1"], "--trial-seeds is -1: it must be at least 1"),
    (["--steps", "-3"], "--steps is -3: it must be at least 1"),
    (["--holdout-fraction", "1.5"], "--holdout-fraction is 1.5: it must be strictly between"),
])
def test_run_cli_bad_input(tmp_path, args, needle):
    _fails_with_one_line(RUN + ["--output", str(tmp_path)] + args, needle, tmp_path)


@pytest.mark.parametrize("args, needle", [
    (["--checkpoint-freq", "-1"], "--checkpoint-freq is -1"),
    (["--holdout-fraction", "nan"], "--holdout-fraction is nan"),
    (["--holdout-fraction", "0"], "--holdout-fraction is 0.0"),
    (["--max-failures", "-2"], "--max-failures is -2"),
    (["--cpus-per-trial", "-1"], "--cpus-per-trial is -1"),
    (["--gpus-per-trial", "-0.5"], "--gpus-per-trial is -0.5"),
    (["--num-cpus", "0"], "--num-cpus is 0"),
    (["--chunk-trials", "0"], "--chunk-trials is 0"),
    (["--chunks-in-flight", "-1"], "--chunks-in-flight is -1"),
    (["--startup-trials", "-4"], "--startup-trials is -4"),
    (["--seed", "-1"], "--seed is -1"),
    (["--test-envs", "-1"], "--test-envs is -1"),
    (["--dataset", "colored_digits", "rotated_digits", "--test-envs", "4"],
     "test env 4 is out of range for ColoredDigits"),
    (["--keep-checkpoints", "some"], "argument --keep-checkpoints: invalid choice"),
    (["--search", "bayes", "--optuna-storage", "optuna.db"], "not a database URL"),
])
def test_run_cli_bad_values_refused_in_process_before_ray(tmp_path, capsys, args, needle):
    """The same CLI entry point in this process (cheap): exit 2, one line, Ray never started."""
    import ray

    from fishr_tune.run import main

    _refused_in_process(main, ["--output", str(tmp_path)] + args, needle, capsys)
    assert not ray.is_initialized() and not any(tmp_path.iterdir())


def test_run_cli_refuses_a_name_that_leaves_output(tmp_path, capsys):
    from fishr_tune.run import main

    output = tmp_path / "out"
    _fails_with_one_line(RUN + ["--output", str(output), "--name", "../x"],
                         "--name '../x' is not a plain folder name", tmp_path)
    for name in ("a/b", "/abs", "..", "../x"):
        for extra in ([], ["--resume"], ["--resume-if-exists"]):
            assert main(["--output", str(output), "--name", name] + extra) == 2
            assert "is not a plain folder name" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # nothing written, inside --output or outside


@pytest.mark.parametrize("args, needle", [
    (["--dataset", "imagenet"], "unknown dataset 'imagenet'"),
    (["--algorithm", "Bogus"], "Bogus"),
    (["--test-envs", "3"], "test env 3 is out of range"),
    (["--test-envs", "0", "1", "2"], "leaves no training environment"),
    (["--hparams", "[1, 2]"], "JSON object"),
    (["--hparams", '{"ema": 1.0}'], "ema"),
    (["--dataset", "colored_mnist", "--data-dir", "/nonexistent"], "/nonexistent"),
    (["--dataset", "pacs", "--data-dir", "/nonexistent"], "/nonexistent"),
    (["--trial-seed", "x"], "argument --trial-seed: invalid int value"),
    (["--steps", "-3"], "--steps is -3"),
    (["--no-such-flag"], "unrecognized arguments: --no-such-flag"),
])
def test_train_cli_bad_input(tmp_path, args, needle):
    _fails_with_one_line(TRAIN + ["--output", str(tmp_path)] + args, needle, tmp_path)


@pytest.mark.parametrize("args, needle", [
    (["--trial-seed", "-1"], "--trial-seed is -1"),
    (["--hparams-seed", "-2"], "--hparams-seed is -2"),
    (["--holdout-fraction", "1.5"], "--holdout-fraction is 1.5"),
    (["--test-envs", "-1"], "--test-envs is -1"),
    (["--num-workers", "-1"], "--num-workers is -1"),
])
def test_train_cli_bad_values_refused_in_process(tmp_path, capsys, args, needle):
    from fishr_tune.train import main

    _refused_in_process(main, ["--output", str(tmp_path)] + args, needle, capsys)
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("cmd, needle", [
    ([sys.executable, "-m", "search_spaces", "--hparams-seed", "x"], "invalid int value"),
    ([sys.executable, "-m", "fishr_tune.download"], "the following arguments are required"),
])
def test_other_clis_argparse_errors_are_one_line(tmp_path, cmd, needle):
    _fails_with_one_line(cmd, needle, tmp_path)
