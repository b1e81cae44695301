"""A trial on an image-folder dataset end to end (DataLoader path, ResNet, bad images)."""

import subprocess
import sys

import pytest

from fishr_tune.errors import UserError
from fishr_tune.trial import Trial, TrialArgs
from search_spaces import resolve_hparams
from tests.test_datasets_images import make_tree

OVERRIDES = {"resnet18": True, "batch_size": 2}


def _trial(root, algorithm="Fishr"):
    args = TrialArgs(dataset=f"folder:{root}", algorithm=algorithm, test_envs=[0], steps=3,
                     checkpoint_freq=2, weights="none", hparams=OVERRIDES)
    resolved = args.resolved()
    return Trial(args, resolve_hparams(algorithm, resolved.dataset, 0, 0, OVERRIDES))


def test_image_folder_trial_runs_and_is_deterministic(tmp_path):
    make_tree(tmp_path / "data", ["env_a", "env_b", "env_c"], per_class=3)
    first = _trial(tmp_path / "data").run()
    second = _trial(tmp_path / "data").run()
    assert [r["step"] for r in first] == [0, 2]
    assert first[-1]["dataset"] == f"folder:{tmp_path / 'data'}"
    for key in ("env0_in_acc", "env1_out_acc", "env2_in_acc", "loss", "penalty"):
        assert first[-1][key] == second[-1][key], key
    assert all(0.0 <= first[-1][f"env{e}_in_acc"] <= 1.0 for e in range(3))


def test_corrupt_image_in_a_trial_names_the_file(tmp_path):
    make_tree(tmp_path / "data", ["env_a", "env_b", "env_c"], per_class=3)
    bad = next((tmp_path / "data" / "env_b").rglob("*.*"))
    bad.write_bytes(b"not an image")
    with pytest.raises(UserError, match=bad.name):
        _trial(tmp_path / "data", algorithm="ERM").run()
    done = subprocess.run([sys.executable, "-m", "fishr_tune.train", "--dataset",
                           f"folder:{tmp_path / 'data'}", "--no-pretrained", "--steps", "2",
                           "--hparams", '{"resnet18": true, "batch_size": 2}',
                           "--output", str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and bad.name in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
