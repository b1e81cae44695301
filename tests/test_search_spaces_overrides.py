"""search_spaces: user overrides (``--hparams``) are checked and fix a value in all three views."""

import math

import optuna
import pytest

import search_spaces as ss
from fishr_tune.errors import UserError

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _optuna_run(space):
    trial = optuna.create_study().ask()
    constants = space(trial)
    return trial.distributions, constants


def test_overrides_merge_over_the_draw():
    drawn = ss.random_hparams("Fishr", "VLCS", 3, 1)
    got = ss.resolve_hparams("Fishr", "VLCS", 3, 1, {"lambda": 100, "batch_size": 16.0,
                                                     "fishr_backend": "backpack"})
    assert got == {**drawn, "lambda": 100.0, "batch_size": 16, "fishr_backend": "backpack"}
    assert type(got["lambda"]) is float and type(got["batch_size"]) is int
    # hparams_seed 0: the defaults, with the overrides on top.
    assert ss.resolve_hparams("Fishr", "VLCS", 0, 0, {"ema": 0.5})["ema"] == 0.5
    assert ss.resolve_hparams("Fishr", "VLCS", 3, 1, None) == drawn
    assert ss.resolve_hparams("Fishr", "VLCS", 3, 1, {}) == drawn


def test_validate_overrides_coerces():
    assert ss.validate_overrides("DANN", "PACS", {
        "mlp_depth": 4.0, "lr": 1, "data_augmentation": False, "resnet_dropout": 0.3,
        "beta1": 0, "weight_decay": 0}) == {
        "mlp_depth": 4, "lr": 1.0, "data_augmentation": False, "resnet_dropout": 0.3,
        "beta1": 0.0, "weight_decay": 0.0}
    assert ss.validate_overrides("Fishr", "VLCS", None) == {}


def test_override_is_a_constant_in_every_view():
    overrides = {"lambda": 50.0, "penalty_anneal_iters": 0, "batch_size": 12,
                 "data_augmentation": False}
    tune = ss.tune_space("Fishr", "PACS", overrides)
    for name, value in overrides.items():
        assert tune[name] == value and type(tune[name]) is type(value)
    assert hasattr(tune["ema"], "sampler")  # still searched
    distributions, constants = _optuna_run(ss.optuna_space("Fishr", "PACS", overrides))
    assert set(distributions) == {"resnet_dropout", "ema", "lr", "weight_decay"}
    assert {k: constants[k] for k in overrides} == overrides
    assert constants["fishr_backend"] == "closed_form"
    for hs, ts in [(0, 0), (4, 2)]:
        resolved = ss.resolve_hparams("Fishr", "PACS", hs, ts, overrides)
        assert {k: resolved[k] for k in overrides} == overrides
    rows = {n: t for n, _, t in ss.describe("Fishr", "PACS", overrides)}
    assert rows["lambda"] == "fixed = 50.0 (override)"
    assert rows["ema"] == "U(0.9, 0.99)"


REFUSED = [
    ("ema", 1.0, "a float in [0, 1)"),
    ("ema", -0.1, "a float in [0, 1)"),
    ("ema", "abc", "a float in [0, 1)"),
    ("ema", "0.9", "a float in [0, 1)"),
    ("ema", None, "a float in [0, 1)"),
    ("lambda", -1, "a float >= 0"),
    ("lambda", math.inf, "a float >= 0"),
    ("lambda", math.nan, "a float >= 0"),
    ("lr", -1e-4, "a float > 0"),
    ("lr", 0, "a float > 0"),
    ("weight_decay", -1e-6, "a float >= 0"),
    ("batch_size", 0, "an int >= 1"),
    ("batch_size", 3.5, "an int >= 1"),
    ("batch_size", True, "an int >= 1"),
    ("batch_size", "32", "an int >= 1"),
    ("penalty_anneal_iters", -1, "an int >= 0"),
    ("resnet_dropout", 1.5, "a float in [0, 1]"),
    ("resnet_dropout", -0.1, "a float in [0, 1]"),
    ("data_augmentation", 1, "true or false"),
    ("data_augmentation", "yes", "true or false"),
    ("fishr_backend", "jax", "one of 'closed_form', 'backpack'"),
    ("fishr_backend", 0, "one of 'closed_form', 'backpack'"),
]


@pytest.mark.parametrize("name,value,valid", REFUSED)
def test_impossible_or_mistyped_values_are_refused(name, value, valid):
    for call in (ss.validate_overrides, ss.tune_space, ss.optuna_space, ss.describe):
        with pytest.raises(UserError) as err:
            call("Fishr", "VLCS", {name: value})
        message = str(err.value)
        assert f"'{name}'" in message and valid in message and "\n" not in message
    with pytest.raises(UserError):
        ss.resolve_hparams("Fishr", "VLCS", 1, 0, {name: value})


@pytest.mark.parametrize("algorithm,name,value,valid", [
    ("DANN", "mlp_dropout", 2.0, "a float in [0, 1]"),
    ("DANN", "beta1", 1.0, "a float in [0, 1)"),
    ("DANN", "d_steps_per_g_step", 0, "an int >= 1"),
    ("DANN", "mlp_depth", 1, "an int >= 2"),
    ("DANN", "lr_d", -1.0, "a float > 0"),
    ("IRM", "irm_lambda", -5, "a float >= 0"),
    ("VREx", "vrex_penalty_anneal_iters", 2.5, "an int >= 0"),
    ("Mixup", "mixup_alpha", 0.0, "a float > 0"),
    ("MTL", "mtl_ema", 1.01, "a float in [0, 1]"),
    ("SANDMask", "k", 0, "a float > 0"),
    ("RSC", "rsc_f_drop_factor", 1.2, "a float in [0, 1]"),
])
def test_algorithm_specific_ranges(algorithm, name, value, valid):
    with pytest.raises(UserError) as err:
        ss.validate_overrides(algorithm, "PACS", {name: value})
    assert f"'{name}'" in str(err.value) and valid in str(err.value)


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(UserError) as err:
        ss.validate_overrides("ERM", "VLCS", {"lambda": 1.0})
    message = str(err.value)
    assert "'lambda'" in message and "ERM" in message and "VLCS" in message
    assert "lr, weight_decay, batch_size" in message and "\n" not in message
    with pytest.raises(UserError):
        ss.tune_space("Fishr", "ColoredMNIST", {"lr_g": 1e-3})  # only DANN/CDANN have it


def test_overrides_must_be_an_object():
    for bad in ([("lr", 1e-3)], "lr=1e-3", 3):
        with pytest.raises(UserError) as err:
            ss.validate_overrides("Fishr", "VLCS", bad)
        assert "JSON object" in str(err.value)
