"""The Ray Tune function trainable: one sweep trial around the training core.

It reports every checkpoint to Tune (with a Ray checkpoint holding the full trial state, so a
retried or resumed trial continues from its last checkpoint), writes the trial's records as
Parquet under ``<sweep>/records/`` at every checkpoint (status ``running``) and at the end
(``ok``, ``error`` or ``diverged``), and reads the dataset from Ray's object store.
"""

from __future__ import annotations

import os
import tempfile
import traceback

import ray
import torch
from ray import tune

from fishr_tune.records import records_path, write_records
from fishr_tune.sweep.bayes import OBJECTIVE
from fishr_tune.trial import Trial, TrialArgs, TrialDiverged

STATE_FILE = "trial_state.pt"


def objective_value(record: dict, test_envs, n_envs: int, objective: str) -> float | None:
    """The value a searcher maximises, from one checkpoint record.

    ``iid`` (default): training-domain validation; ``oracle``: test-domain validation, only when
    asked for. Both are ``analysis.selection``'s method objects, the rules the tables use.
    """
    from analysis.selection import objective_method

    return objective_method(objective).checkpoint_value(record, test_envs, n_envs)


def trial_objective(records: list[dict], test_envs, n_envs: int, objective: str) -> float | None:
    """The objective of a trial so far (restored records included): the value at the
    checkpoint the method selects (``iid``: the best one, ``oracle``: the last one)."""
    from analysis.selection import objective_method

    return objective_method(objective).trial_value(records, test_envs, n_envs)


def make_trial(config: dict, settings: dict, raw_by_dataset: dict, search: str) -> Trial:
    """Build the training-core trial of one Tune config."""
    from search_spaces import resolve_hparams

    job = config["job"]
    study = job["study"]
    args = TrialArgs(dataset=study["dataset"], algorithm=study["algorithm"],
                     test_envs=study["test_envs"], data_dir=settings["data_dir"],
                     hparams_seed=job["hparams_seed"], trial_seed=study["trial_seed"],
                     seed=job.get("seed"), steps=settings["steps"],
                     checkpoint_freq=settings["checkpoint_freq"],
                     holdout_fraction=settings["holdout_fraction"],
                     hparams=settings["hparams"], weights=settings["weights"],
                     num_workers=settings["num_workers"])
    if job.get("hparams") is not None:
        hparams = resolve_hparams(study["algorithm"], study["dataset"], 0, study["trial_seed"],
                                  {**job["hparams"], **(settings["hparams"] or {})})
    else:
        hparams = resolve_hparams(study["algorithm"], study["dataset"], job["hparams_seed"],
                                  study["trial_seed"], settings["hparams"])
    return Trial(args, hparams, raw=raw_by_dataset[study["dataset"]], search=search,
                 trial_index=job["trial_index"])


def sweep_trainable(config: dict, settings: dict, raw_by_dataset: dict) -> None:
    """Tune function trainable (bound with ``tune.with_parameters``)."""
    torch.set_num_threads(max(1, int(settings.get("cpus_per_trial") or 1)))
    search = settings["search"]
    trial = make_trial(config, settings, raw_by_dataset, search)
    trial.extra_columns["node_id"] = ray.get_runtime_context().get_node_id()
    out_file = records_path(settings["sweep_dir"], trial.trial_id)
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            trial.load_state_dict(torch.load(os.path.join(folder, STATE_FILE), weights_only=False))
    n_envs = len(trial.splits)

    def report(trial_, record):
        value = trial_objective(trial_.records, trial_.args.test_envs, n_envs,
                                settings["objective"])
        write_records(trial_.final_records("running"), out_file)
        metrics = {"step": record["step"], OBJECTIVE: value, "trial_key": trial_.trial_id}
        with tempfile.TemporaryDirectory() as folder:
            torch.save(trial_.state_dict(), os.path.join(folder, STATE_FILE))
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(folder))

    try:
        trial.run(report)
    except TrialDiverged as exc:
        write_records(trial.final_records("diverged", str(exc)), out_file)
        # No objective: the searcher records the proposal as failed, not as a good score.
        tune.report({"step": trial.next_step - 1, OBJECTIVE: None, "trial_key": trial.trial_id})
        return
    except Exception as exc:  # recorded, then re-raised so FailureConfig can retry the trial
        text = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        write_records(trial.final_records("error", text), out_file)
        raise
    write_records(trial.final_records("ok"), out_file)
