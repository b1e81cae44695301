"""Sweep engine on a real local Ray: random and Bayesian search, failures, bad input."""

import json
import subprocess
import sys

import optuna
import pandas as pd
import pytest

from fishr_tune.errors import UserError
from fishr_tune.records import read_records
from fishr_tune.sweep.config import SweepConfig
from fishr_tune.sweep.bayes import JOURNAL_FILE
from fishr_tune.sweep.chunk import make_searcher, sweep_chunks
from fishr_tune.sweep.driver import run_sweep
from fishr_tune.sweep.trainable import trial_settings
from search_spaces import random_hparams

STEPS, FREQ = 12, 5  # checkpoints at steps 0, 5, 10, 11


def _config(tmp_path, name, **kw):
    base = dict(datasets=["colored_digits"], algorithms=["ERM", "Fishr"], test_envs=[2],
                num_samples=2, trial_seeds=1, steps=STEPS, checkpoint_freq=FREQ,
                output=str(tmp_path), name=name)
    base.update(kw)
    return SweepConfig(**base)


def journal_storage(sweep_dir):
    """The sweep's Optuna journal, opened as optuna-dashboard would."""
    journal = optuna.storages.journal
    return journal.JournalStorage(journal.JournalFileBackend(str(sweep_dir / JOURNAL_FILE)))


def _trials(df: pd.DataFrame) -> pd.DataFrame:
    return df.groupby("trial_id").first()


def test_random_sweep_records_match_domainbed_draws(local_ray, tmp_path):
    outcome = run_sweep(_config(tmp_path, "rand", trial_seeds=2))
    df = outcome.records
    trials = _trials(df)
    assert len(trials) == 2 * 2 * 2  # algorithms x trial seeds x hparams seeds
    assert outcome.counts["ok"] == 8 and outcome.counts["error"] == 0
    assert set(trials["status"]) == {"ok"} and set(trials["search"]) == {"random"}
    for trial_id, trial in trials.iterrows():
        expected = random_hparams(trial["algorithm"], "ColoredDigits", trial["hparams_seed"],
                                  trial["trial_seed"])
        assert json.loads(trial["hparams"]) == expected
        assert trial["trial_index"] == trial["hparams_seed"] - 1
        steps = sorted(df[df["trial_id"] == trial_id]["step"])
        assert steps == [0, 5, 10, 11]
    assert sorted(trials["hparams_seed"].unique()) == [1, 2]
    for column in ("env0_in_acc", "env2_out_acc", "loss"):
        assert df[column].between(0, 1).all() if "acc" in column else df[column].notna().all()
    assert df[df["algorithm"] == "Fishr"]["penalty"].notna().all()


def test_bayes_sweep_runs_tpe_studies_stored_in_optuna(local_ray, tmp_path):
    config = _config(tmp_path, "bayes", algorithms=["Fishr"], search="bayes", num_samples=4,
                     startup_trials=2)
    outcome = run_sweep(config)
    trials = _trials(outcome.records)
    assert len(trials) == 4 and set(trials["search"]) == {"bayes"}
    assert sorted(trials["trial_index"]) == [0, 1, 2, 3]
    study = optuna.load_study(study_name="ColoredDigits.Fishr.env2.seed0",
                              storage=journal_storage(tmp_path / "bayes"))
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(done) == 4
    assert sorted(t.user_attrs["trial_index"] for t in done) == [0, 1, 2, 3]
    # The sampler is not stored: rebuild the sweep's searcher from its settings, as a resume
    # does; it must be the configured TPE and see the finished budget (nothing left to ask).
    saved = SweepConfig.load(str(tmp_path), "bayes")
    chunk = sweep_chunks(saved)[0]
    searcher = make_searcher(saved, chunk, trial_settings(saved))
    sampler = searcher.optuna["ColoredDigits.Fishr.env2.seed0"].sampler
    assert isinstance(sampler, optuna.samplers.TPESampler)
    assert sampler._n_startup_trials == 2 and sampler._constant_liar
    assert searcher.suggest("next") == "FINISHED"
    proposals = sorted(round(t.params["lambda"], 9) for t in done)
    recorded = sorted(round(json.loads(h)["lambda"], 9) for h in trials["hparams"])
    assert proposals == recorded
    # The objective TPE saw is the best training-domain validation accuracy of the trial.
    values = sorted(round(t.value, 9) for t in done)
    df = outcome.records
    best = df.assign(val=(df["env0_out_acc"] + df["env1_out_acc"]) / 2).groupby("trial_id")["val"]
    assert values == sorted(round(v, 9) for v in best.max())


def test_trial_that_raises_and_trial_that_diverges_are_recorded(local_ray, tmp_path):
    study = {"dataset": "ColoredDigits", "algorithm": "ERM", "test_envs": [2], "trial_seed": 0}
    jobs = [
        {"study": study, "hparams_seed": 1, "trial_index": 0, "hparams": None},
        # An impossible allocation: the trial raises inside the training loop.
        {"study": study, "hparams_seed": None, "trial_index": 1,
         "hparams": {"batch_size": 10**13}},
        # A huge learning rate: the loss becomes inf/nan.
        {"study": study, "hparams_seed": None, "trial_index": 2, "hparams": {"lr": 1e30}},
    ]
    outcome = run_sweep(_config(tmp_path, "faults", jobs=jobs, max_failures=0))
    trials = _trials(outcome.records).set_index("trial_index")
    assert trials.loc[0, "status"] == "ok"
    assert trials.loc[1, "status"] == "error" and "RuntimeError" in trials.loc[1, "error"]
    assert trials.loc[2, "status"] == "diverged"
    assert ("nan" in trials.loc[2, "error"]) or ("inf" in trials.loc[2, "error"])
    assert outcome.counts["ok"] == 1 and outcome.counts["diverged"] == 1
    assert outcome.counts["error"] == 1


@pytest.mark.parametrize("kw, needle", [
    ({"num_samples": 0}, "--num-samples"),
    ({"trial_seeds": 0}, "--trial-seeds"),
    ({"steps": 0}, "--steps"),
    ({"datasets": ["nope"]}, "unknown dataset"),
    ({"algorithms": ["Nope"]}, "Nope"),
    ({"hparams": {"ema": 1.5}}, "ema"),
])
def test_bad_settings_are_refused_before_anything_runs(tmp_path, kw, needle):
    with pytest.raises(UserError, match=needle):
        run_sweep(_config(tmp_path, "bad", **kw))
    assert not (tmp_path / "bad").exists()


def test_gpu_request_on_gpu_less_cluster_fails_fast(local_ray, tmp_path):
    with pytest.raises(UserError, match="no GPU"):
        run_sweep(_config(tmp_path, "gpu", gpus_per_trial=0.5))
    with pytest.raises(UserError, match="exceeds the most CPUs"):
        run_sweep(_config(tmp_path, "cpu", cpus_per_trial=64))


def test_existing_sweep_is_never_overwritten_and_resume_needs_one(local_ray, tmp_path):
    run_sweep(_config(tmp_path, "keep", algorithms=["ERM"], num_samples=1))
    before = {p.name: p.read_bytes() for p in (tmp_path / "keep" / "records").iterdir()}
    with pytest.raises(UserError, match="already exists"):
        run_sweep(_config(tmp_path, "keep", algorithms=["ERM"], num_samples=1))
    after = {p.name: p.read_bytes() for p in (tmp_path / "keep" / "records").iterdir()}
    assert before == after and len(before) == 1
    with pytest.raises(UserError, match="no sweep named"):
        run_sweep(_config(tmp_path, "missing"), resume=True)
    # Resuming a finished sweep reruns nothing and keeps every record exactly once.
    outcome = run_sweep(_config(tmp_path, "keep"), resume=True)
    assert {p.name: p.read_bytes() for p in (tmp_path / "keep" / "records").iterdir()} == before
    assert len(read_records(str(tmp_path / "keep"))) == 4
    assert outcome.counts["ok"] == 1


def test_output_given_as_a_filesystem_uri_with_bayes_search(local_ray, tmp_path):
    from fishr_tune.sweep.bayes import ObjectJournal

    outcome = run_sweep(_config(tmp_path, "uri", algorithms=["ERM"], num_samples=2,
                                search="bayes", startup_trials=2,
                                output=f"file://{tmp_path}/store"))
    assert outcome.counts["ok"] == 2
    files = list((tmp_path / "store" / "uri" / "records").glob("*.parquet"))
    assert len(files) == 2 and len(read_records(f"file://{tmp_path}/store/uri")) == 8
    # The Optuna journal lives next to the records, as objects (no local file, no lock).
    folder = f"file://{tmp_path}/store/uri/optuna/chunk-00000"
    study = optuna.load_study(study_name="ColoredDigits.ERM.env2.seed0",
                              storage=optuna.storages.journal.JournalStorage(
                                  ObjectJournal(folder)))
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.COMPLETE] * 2


def test_bayes_proposals_get_distinct_job_seeds(local_ray, tmp_path):
    outcome = run_sweep(_config(tmp_path, "seeds", algorithms=["ERM"], search="bayes",
                                num_samples=3, startup_trials=2, steps=2, checkpoint_freq=1))
    trials = _trials(outcome.records)
    assert len(trials) == 3 and trials["seed"].nunique() == 3
    assert trials["hparams_seed"].isna().all()


def test_chunks_in_flight_leave_records_only_and_keep_selected_models(local_ray, tmp_path):
    import torch

    from fishr_tune.sweep.trainable import trial_objective

    config = _config(tmp_path, "chunks", chunk_trials=2, chunks_in_flight=2,
                     keep_checkpoints="selected")
    outcome = run_sweep(config)
    assert outcome.counts["ok"] == 4 and outcome.counts["trials"] == 4
    sweep = tmp_path / "chunks"
    assert sorted(p.name for p in (sweep / "chunks").iterdir()) == \
        ["chunk-00000.json", "chunk-00001.json"]  # one study (2 trials) per chunk
    # Training states and Tune's experiment folders are gone; records are the result.
    assert not (sweep / "state").exists() and not (sweep / "tune").exists()
    df = outcome.records
    best = {}
    for trial_id, rows in df.groupby("trial_id"):
        value = trial_objective(rows.to_dict("records"), [2], 3, "iid")
        algorithm = rows["algorithm"].iloc[0]
        if algorithm not in best or value > best[algorithm][0]:
            best[algorithm] = (value, trial_id)
    models = sorted(p.stem for p in (sweep / "models").iterdir())
    assert models == sorted(trial_id for _, trial_id in best.values())
    weights = torch.load(sweep / "models" / f"{models[0]}.pt", weights_only=True)
    assert any(key.endswith("weight") for key in weights)
    kept = sum(p.stat().st_size for p in sweep.rglob("*") if p.is_file()
               and "models" not in p.parts)
    assert kept / 4 < 20_000  # bytes per finished trial without the kept models


def test_algorithms_all_is_every_registered_algorithm_in_domainbed_order(tmp_path):
    from search_spaces import algorithm_names

    config = SweepConfig(algorithms=["all"], output=str(tmp_path), name="all").resolved()
    assert config.algorithms == algorithm_names()
    assert len(config.algorithms) == 20 and config.algorithms[0] == "ERM"
    both = SweepConfig(algorithms=["fishr", "all"], output=str(tmp_path), name="b").resolved()
    assert both.algorithms[0] == "Fishr" and sorted(both.algorithms) == sorted(algorithm_names())


_CALLBACKS = """
import weakref
from fishr_tune.sweep.trainable import quiet_exit_in_callbacks

class Thing:
    pass

def ending(_):
    raise SystemExit(1)  # what Ray's SIGTERM handler raises, here inside a weakref callback

def failing(_):
    raise ValueError("a real bug")

quiet_exit_in_callbacks()
quiet_exit_in_callbacks()  # a reused actor's second trial: still one hook
for callback in (ending, failing):
    thing = Thing()
    ref = weakref.ref(thing, callback)
    del thing
print("still running")
"""


def test_worker_prints_no_traceback_for_an_exit_raised_in_a_callback():
    """A trial worker ended by SIGTERM inside a weakref callback prints nothing of it (the
    sweep's stderr stays clean on Ctrl-C); any other unraisable exception is still printed."""
    done = subprocess.run([sys.executable, "-c", _CALLBACKS], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0 and done.stdout == "still running\n"
    assert "SystemExit" not in done.stderr
    assert done.stderr.count("Traceback") == 1 and "ValueError: a real bug" in done.stderr
