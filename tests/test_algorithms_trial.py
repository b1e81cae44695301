"""The baselines inside the trial loop: per-key averages, evaluation batches, exact resume, and
a short sweep through ``fishr_tune.run`` (random and Bayesian) on the embedded data."""

import pytest
import torch

from fishr_tune.records import read_records
from fishr_tune.run import main as run_main
from fishr_tune.trial import EVAL_BATCH_SIZE, TENSOR_EVAL_BATCH_SIZE, Trial, TrialArgs, accuracy
from search_spaces import resolve_hparams

TIMING = ("step_time", "elapsed_s")


def _trial(algorithm, steps=9, freq=4, overrides=None):
    args = TrialArgs(dataset="colored_digits", algorithm=algorithm, test_envs=[2], steps=steps,
                     checkpoint_freq=freq, hparams_seed=1, trial_seed=0).resolved()
    return Trial(args, resolve_hparams(algorithm, args.dataset, 1, 0, overrides or {}))


def _strip(records):
    return [{k: v for k, v in r.items() if k not in TIMING} for r in records]


def test_metrics_are_averaged_per_key_as_domainbed():
    trial = _trial("DANN", overrides={"d_steps_per_g_step": 2})
    seen = []
    update = trial.algorithm.update

    def logged(minibatches):
        values = update(minibatches)
        seen.append(dict(values))
        return values

    trial.algorithm.update = logged
    records = trial.run()
    # update_count c = step + 1 is a discriminator step when c % 3 < 2: steps 0, 2, 3 (c = 1, 3,
    # 4) disc, steps 1, 4 (c = 2, 5) gen.
    assert [sorted(v) for v in seen[:5]] == [["disc_loss"], ["gen_loss"], ["disc_loss"],
                                             ["disc_loss"], ["gen_loss"]]
    window = seen[1:5]  # the steps averaged into the step-4 checkpoint
    assert records[1]["step"] == 4
    for key in ("disc_loss", "gen_loss"):
        values = [v[key] for v in window if key in v]
        assert records[1][key] == pytest.approx(sum(values) / len(values), rel=1e-12)
    assert "gen_loss" not in records[0] and records[0]["disc_loss"] == seen[0]["disc_loss"]


class _Recorder(torch.nn.Module):
    def __init__(self, dependent):
        super().__init__()
        self.EVAL_BATCH_DEPENDENT = dependent
        self.sizes = []

    def predict(self, x):
        self.sizes.append(len(x))
        return torch.zeros(len(x), 2)


@pytest.mark.parametrize("dependent,size", [(True, EVAL_BATCH_SIZE),
                                            (False, TENSOR_EVAL_BATCH_SIZE)])
def test_eval_batches_of_64_only_for_batch_dependent_predict(dependent, size):
    trial = _trial("ERM", steps=1)
    split = trial.splits[0][0]
    recorder = _Recorder(dependent)
    accuracy(recorder, split, torch.device("cpu"))
    n = len(split)
    assert recorder.sizes == [min(size, n - i) for i in range(0, n, size)]


@pytest.mark.parametrize("algorithm", ["DANN", "MTL", "Fish", "GroupDRO"])
def test_trial_resume_is_exact(algorithm):
    reference = _trial(algorithm).run()
    saved = {}

    class Stop(Exception):
        pass

    def stop_at_4(trial, record):
        if record["step"] == 4:
            saved["state"] = trial.state_dict()
            raise Stop

    with pytest.raises(Stop):
        _trial(algorithm).run(stop_at_4)
    torch.manual_seed(999)
    resumed = _trial(algorithm)
    resumed.load_state_dict(saved["state"])
    assert _strip(resumed.run()) == _strip(reference)


# The keys each algorithm must have written at the last checkpoint (DANN: a discriminator step
# happens among steps 1..5 whatever d_steps_per_g_step is drawn; a generator step may not).
EXPECTED_KEYS = {"IRM": ("loss", "nll", "penalty"), "VREx": ("loss", "nll", "penalty"),
                 "DANN": ("disc_loss",)}


@pytest.mark.parametrize("search,algorithms", [("random", ["IRM", "DANN"]),
                                               ("bayes", ["VREx"])])
def test_sweep_cli_runs_the_baselines_and_records_their_losses(local_ray, tmp_path, capsys,
                                                               search, algorithms):
    status = run_main(["--algorithms", *algorithms, "--test-envs", "2", "--num-samples", "1",
                       "--trial-seeds", "1", "--steps", "6", "--checkpoint-freq", "5",
                       "--search", search, "--output", str(tmp_path), "--name", search])
    assert status == 0, capsys.readouterr().err
    df = read_records(str(tmp_path / search))
    assert sorted(set(df["algorithm"])) == sorted(algorithms)
    assert set(df["status"]) == {"ok"} and sorted(set(df["step"])) == [0, 5]
    for algorithm in algorithms:
        last = df[(df["algorithm"] == algorithm) & (df["step"] == 5)]
        assert len(last) == 1
        for key in EXPECTED_KEYS[algorithm]:
            assert last[key].notna().all() and (last[key].abs() > 0).all(), (algorithm, key)
