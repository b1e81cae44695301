"""search_spaces: DomainBed-identical defaults and seeded draws (test vectors, rule oracle).

The expected values come from two sources that do not use the package's code path:
* literal vectors: domainbed-facts.md section 1.2, and values computed once from the rules with
  numpy directly (recorded below to full precision);
* ``_oracle``: DomainBed's registry rules (facts file table 1.3/1.4, FR era plus the two kept bug
  fixes), written out again here as plain RandomState expressions.
"""

import hashlib

import numpy as np
import pytest

import search_spaces as ss
from fishr_tune.errors import UserError

# One dataset per group, plus the embedded default (small) and a case-insensitive spelling.
DATASETS = {"ColoredMNIST": "small", "ColoredDigits": "small", "RotatedMNIST": "small",
            "VLCS": "big", "officehome": "big", "TerraIncognita": "big", "DomainNet": "domainnet"}

DOMAINBED_ORDER = ["ERM", "Fish", "IRM", "GroupDRO", "Mixup", "MLDG", "CORAL", "MMD", "DANN",
                   "CDANN", "MTL", "SagNet", "ARM", "VREx", "RSC", "SD", "ANDMask", "SANDMask",
                   "IGA", "Fishr"]


def _seed_hash(*args):
    # Written again from the facts file (1.1), so the oracle shares no code with the package.
    return int(hashlib.md5(str(args).encode("utf-8")).hexdigest(), 16) % (2**31)


def _log(a, b):
    return lambda r: 10 ** r.uniform(a, b)


def _oracle_defs(algorithm, group):
    """DomainBed's registry as (name, default, draw(r)) rows, from the facts file tables."""
    const = lambda v: (lambda r: v)  # noqa: E731
    rows = [("data_augmentation", True, const(True)), ("resnet18", False, const(False)),
            ("resnet_dropout", 0.0, lambda r: r.choice([0.0, 0.1, 0.5])),
            ("class_balanced", False, const(False)),
            ("nonlinear_classifier", False, lambda r: bool(r.choice([False, False])))]
    small = group == "small"
    lr = (1e-3, _log(-4.5, -2.5)) if small else (5e-5, _log(-5, -3.5))
    wd = (0.0, const(0.0)) if small else (0.0, _log(-6, -2))
    blocks = {
        "Fish": [("meta_lr", 0.5, lambda r: r.choice([0.05, 0.1, 0.5]))],
        "IRM": [("irm_lambda", 100.0, _log(-1, 5)),
                ("irm_penalty_anneal_iters", 500, lambda r: int(10 ** r.uniform(0, 4)))],
        "GroupDRO": [("groupdro_eta", 0.01, _log(-3, -1))],
        "Mixup": [("mixup_alpha", 0.2, _log(-1, 1))],
        "MLDG": [("mldg_beta", 1.0, _log(-1, 1))],
        "CORAL": [("mmd_gamma", 1.0, _log(-1, 1))],
        "MMD": [("mmd_gamma", 1.0, _log(-1, 1))],
        "MTL": [("mtl_ema", 0.99, lambda r: r.choice([0.5, 0.9, 0.99, 1.0]))],
        "SagNet": [("sag_w_adv", 0.1, _log(-2, 1))],
        "VREx": [("vrex_lambda", 10.0, _log(-1, 5)),
                 ("vrex_penalty_anneal_iters", 500, lambda r: int(10 ** r.uniform(0, 4)))],
        "RSC": [("rsc_f_drop_factor", 1 / 3, lambda r: r.uniform(0, 0.5)),
                ("rsc_b_drop_factor", 1 / 3, lambda r: r.uniform(0, 0.5))],
        "SD": [("sd_reg", 0.1, _log(-5, -1))],
        "ANDMask": [("tau", 1, lambda r: r.uniform(0.5, 1.0))],
        "SANDMask": [("tau", 1.0, lambda r: r.uniform(0.0, 1.0)), ("k", 10.0, _log(-3, 5))],
        "IGA": [("penalty", 1000, _log(1, 5))],
        "Fishr": [("lambda", 1000.0, _log(1, 4)),
                  ("penalty_anneal_iters", 1500, lambda r: int(r.uniform(0, 5000))),
                  ("ema", 0.95, lambda r: r.uniform(0.90, 0.99)),
                  ("fishr_backend", "closed_form", const("closed_form"))],
    }
    dann = [("lambda", 1.0, _log(-2, 2)), ("weight_decay_d", 0.0, _log(-6, -2)),
            ("d_steps_per_g_step", 1, lambda r: int(2 ** r.uniform(0, 3))),
            ("grad_penalty", 0.0, _log(-2, 1)), ("beta1", 0.5, lambda r: r.choice([0.0, 0.5])),
            ("mlp_width", 256, lambda r: int(2 ** r.uniform(6, 10))),
            ("mlp_depth", 3, lambda r: int(r.choice([3, 4, 5]))),
            ("mlp_dropout", 0.0, lambda r: r.choice([0.0, 0.1, 0.5]))]
    blocks["DANN"] = blocks["CDANN"] = dann
    rows += blocks.get(algorithm, [])
    rows += [("lr", *lr), ("weight_decay", *wd)]
    if small:
        rows.append(("batch_size", 64, lambda r: int(2 ** r.uniform(3, 9))))
    elif algorithm == "ARM":
        rows.append(("batch_size", 8, const(8)))
    elif group == "domainnet":
        rows.append(("batch_size", 32, lambda r: int(2 ** r.uniform(3, 5))))
    else:
        rows.append(("batch_size", 32, lambda r: int(2 ** r.uniform(3, 5.5))))
    if algorithm in ("DANN", "CDANN"):
        rows += [("lr_g", *lr), ("lr_d", *lr), ("weight_decay_g", *wd)]
    return rows


def _oracle(algorithm, dataset, hparams_seed, trial_seed):
    rows = _oracle_defs(algorithm, DATASETS[dataset])
    if hparams_seed == 0:
        return {name: default for name, default, _ in rows}
    s = _seed_hash(hparams_seed, trial_seed)
    return {name: draw(np.random.RandomState(_seed_hash(s, name))) for name, _, draw in rows}


# --- literal test vectors ---------------------------------------------------------------------

# domainbed-facts.md section 1.2 (the Fishr rows match the author's real sweep).
FACTS_VECTORS = [
    ("Fishr", "ColoredMNIST", 1, 0,
     {"lambda": 809.251247284292, "penalty_anneal_iters": 4072, "ema": 0.9129082782560279,
      "lr": 0.00011906162909279594, "batch_size": 372, "weight_decay": 0.0,
      "resnet_dropout": 0.5}),
    ("Fishr", "ColoredMNIST", 2, 1,
     {"lambda": 37.67409966983913, "penalty_anneal_iters": 3295, "ema": 0.9472104256413284,
      "lr": 0.0025521952552627065, "batch_size": 61}),
    ("ERM", "VLCS", 1, 0,
     {"lr": 2.7028930742148706e-05, "batch_size": 39, "weight_decay": 0.00044832883881609976,
      "resnet_dropout": 0.5}),
]

# Computed once from the rules with numpy RandomState directly (not with this package).
RULE_VECTORS = [
    ("IRM", "RotatedMNIST", 3, 0,
     {"irm_lambda": 29.3676220201571, "irm_penalty_anneal_iters": 3001,
      "lr": 0.00040753017105436845, "batch_size": 259, "resnet_dropout": 0.0}),
    ("VREx", "PACS", 5, 2,
     {"vrex_lambda": 0.7617363199787219, "vrex_penalty_anneal_iters": 190,
      "lr": 6.768725917122619e-05, "weight_decay": 2.692204119563736e-06, "batch_size": 15}),
    ("CORAL", "DomainNet", 7, 1,
     {"mmd_gamma": 3.5634348760715358, "lr": 0.00030305970528800703,
      "weight_decay": 1.033510591502665e-05, "batch_size": 14}),
    ("Mixup", "OfficeHome", 4, 0, {"mixup_alpha": 7.427048253771872, "batch_size": 18}),
    ("DANN", "TerraIncognita", 2, 0,
     {"lambda": 4.897901613852408, "weight_decay_d": 0.004188460570199925,
      "d_steps_per_g_step": 4, "grad_penalty": 0.01335094495658484, "beta1": 0.5,
      "mlp_width": 497, "mlp_depth": 5, "mlp_dropout": 0.1, "lr": 5.6841898471378446e-05,
      "lr_g": 6.001896336251345e-05, "lr_d": 1.6708273725848326e-05,
      "weight_decay": 0.005100223533962902, "weight_decay_g": 0.001945932555373509,
      "batch_size": 25}),
    ("SANDMask", "VLCS", 9, 2, {"tau": 0.6098825815700313, "k": 10787.345194491176}),
    ("MTL", "ColoredMNIST", 6, 0, {"mtl_ema": 0.9}),
    ("Fish", "PACS", 6, 1, {"meta_lr": 0.1}),
    # ARM: the small-image batch on MNIST (same draw as Fishr above), the fixed 8 elsewhere.
    ("ARM", "ColoredMNIST", 1, 0, {"batch_size": 372}),
    ("ARM", "DomainNet", 1, 0, {"batch_size": 8, "lr": 2.7028930742148706e-05}),
]


@pytest.mark.parametrize("algorithm,dataset,hs,ts,expected", FACTS_VECTORS + RULE_VECTORS)
def test_literal_vectors(algorithm, dataset, hs, ts, expected):
    got = ss.random_hparams(algorithm, dataset, hs, ts)
    for name, value in expected.items():
        assert got[name] == value, name  # exact: full precision, no tolerance
        assert type(got[name]) is type(value), name


def test_fishr_vector_is_complete_and_plain():
    got = ss.resolve_hparams("Fishr", "ColoredMNIST", 1, 0)
    assert got == {"data_augmentation": True, "resnet18": False, "resnet_dropout": 0.5,
                   "class_balanced": False, "nonlinear_classifier": False,
                   "lambda": 809.251247284292, "penalty_anneal_iters": 4072,
                   "ema": 0.9129082782560279, "fishr_backend": "closed_form",
                   "lr": 0.00011906162909279594, "weight_decay": 0.0, "batch_size": 372}
    assert all(type(v) in (bool, int, float, str) for v in got.values())


# --- the whole registry against the rule oracle ------------------------------------------------

SEEDS = [(1, 0), (2, 1), (3, 2), (7, 0), (13, 4), (20, 1), (123, 9)]


@pytest.mark.parametrize("algorithm", DOMAINBED_ORDER)
@pytest.mark.parametrize("dataset", ["ColoredMNIST", "ColoredDigits", "VLCS", "DomainNet"])
def test_every_algorithm_matches_oracle(algorithm, dataset):
    for hs, ts in SEEDS + [(0, 0), (0, 5)]:
        expected = _oracle(algorithm, dataset, hs, ts)
        got = ss.random_hparams(algorithm, dataset, hs, ts)
        assert list(got) == list(expected)  # same names in DomainBed's order
        for name in expected:
            assert got[name] == expected[name], (name, hs, ts)
            assert type(got[name]) in (bool, int, float, str), name  # no numpy scalars


def test_defaults_are_hparams_seed_zero():
    for algorithm in DOMAINBED_ORDER:
        for dataset in DATASETS:
            defaults = ss.default_hparams(algorithm, dataset)
            assert defaults == _oracle(algorithm, dataset, 0, 0)
            assert ss.random_hparams(algorithm, dataset, 0, 3) == defaults


def test_default_values_of_the_paper_setting():
    assert ss.default_hparams("Fishr", "officehome") == {
        "data_augmentation": True, "resnet18": False, "resnet_dropout": 0.0,
        "class_balanced": False, "nonlinear_classifier": False, "lambda": 1000.0,
        "penalty_anneal_iters": 1500, "ema": 0.95, "fishr_backend": "closed_form",
        "lr": 5e-05, "weight_decay": 0.0, "batch_size": 32}
    assert ss.default_hparams("ERM", "ColoredMNIST")["batch_size"] == 64
    assert ss.default_hparams("ARM", "VLCS")["batch_size"] == 8
    assert ss.default_hparams("ARM", "RotatedMNIST")["batch_size"] == 64
    # A float hparam keeps a float default (DomainBed writes the int 1 / 1000).
    assert type(ss.default_hparams("ANDMask", "PACS")["tau"]) is float
    assert type(ss.default_hparams("IGA", "PACS")["penalty"]) is float


def test_same_named_hparams_share_one_uniform_draw():
    for hs, ts in SEEDS:
        fishr = ss.random_hparams("Fishr", "ColoredMNIST", hs, ts)
        dann = ss.random_hparams("DANN", "ColoredMNIST", hs, ts)
        # Same RNG (seed_hash(s, "lambda")), so the same uniform number u in [0, 1):
        # Fishr lambda = 10^(1 + 3u), DANN lambda = 10^(-2 + 4u).
        u_fishr = (np.log10(fishr["lambda"]) - 1) / 3
        u_dann = (np.log10(dann["lambda"]) + 2) / 4
        assert u_fishr == pytest.approx(u_dann, abs=1e-12)
        for name in ("lr", "batch_size", "resnet_dropout"):
            assert fishr[name] == dann[name]  # equal seeds, same law: identical across algorithms
        sand = ss.random_hparams("SANDMask", "VLCS", hs, ts)["tau"]
        andm = ss.random_hparams("ANDMask", "VLCS", hs, ts)["tau"]
        assert (andm - 0.5) / 0.5 == pytest.approx(sand, abs=1e-12)


def test_dann_generator_rates_have_their_own_draws():
    got = ss.random_hparams("CDANN", "PACS", 2, 0)
    assert len({got["lr"], got["lr_g"], got["lr_d"]}) == 3
    assert got["weight_decay_g"] != got["weight_decay"]
    small = ss.random_hparams("DANN", "ColoredMNIST", 2, 0)
    assert small["weight_decay_g"] == 0.0 and small["weight_decay"] == 0.0


def test_dataset_groups_and_custom_folders(tmp_path):
    for env in ("env_a", "env_b"):
        (tmp_path / env / "cat").mkdir(parents=True)
    folder = f"folder:{tmp_path}"
    assert ss.random_hparams("Fishr", folder, 5, 1) == ss.random_hparams("Fishr", "VLCS", 5, 1)
    assert (ss.random_hparams("Fishr", "colored_digits", 5, 1)
            == ss.random_hparams("Fishr", "ColoredMNIST", 5, 1))
    assert ss.random_hparams("ERM", "DomainNet", 5, 1) != ss.random_hparams("ERM", "PACS", 5, 1)


def test_algorithm_names_and_canonical_spelling():
    assert ss.algorithm_names() == DOMAINBED_ORDER
    assert ss.canonical_algorithm("fishr") == "Fishr"
    assert ss.canonical_algorithm("SAND-mask") == "SANDMask"
    assert ss.canonical_algorithm("group_dro") == "GroupDRO"
    with pytest.raises(UserError) as err:
        ss.canonical_algorithm("Fisher")
    message = str(err.value)
    assert "Fisher" in message and "ERM, Fish, IRM" in message and "\n" not in message


@pytest.mark.parametrize("call", [
    lambda: ss.random_hparams("NoSuchAlgo", "VLCS", 1, 0),
    lambda: ss.random_hparams("Fishr", "NoSuchData", 1, 0),
    lambda: ss.random_hparams("Fishr", "VLCS", -1, 0),
    lambda: ss.random_hparams("Fishr", "VLCS", 1.5, 0),
    lambda: ss.random_hparams("Fishr", "VLCS", 1, True),
    lambda: ss.default_hparams("Fishr", None),
    lambda: ss.describe(3, "VLCS"),
])
def test_bad_arguments_are_user_errors(call):
    with pytest.raises(UserError) as err:
        call()
    assert "\n" not in str(err.value)


def test_describe_rows():
    rows = {name: (default, text) for name, default, text in ss.describe("Fishr", "VLCS")}
    assert rows["lambda"] == (1000.0, "10^U(1, 4)")
    assert rows["penalty_anneal_iters"] == (1500, "int(U(0, 5000))")
    assert rows["ema"] == (0.95, "U(0.9, 0.99)")
    assert rows["batch_size"] == (32, "int(2^U(3, 5.5))")
    assert rows["resnet_dropout"] == (0.0, "C{0.0, 0.1, 0.5}")
    assert rows["fishr_backend"] == ("closed_form", "fixed")
    assert dict((n, t) for n, _, t in ss.describe("IRM", "DomainNet"))["batch_size"] == \
        "int(2^U(3, 5))"
    assert dict((n, t) for n, _, t in ss.describe("VREx", "RotatedMNIST"))[
        "vrex_penalty_anneal_iters"] == "int(10^U(0, 4))"


def test_numpy_int_seeds_hash_like_python_ints():
    # str((np.int64(1), 0)) is "(np.int64(1), 0)" under numpy 2: seeds must be plain ints first.
    assert (ss.random_hparams("Fishr", "ColoredMNIST", np.int64(1), np.int32(0))
            == ss.random_hparams("Fishr", "ColoredMNIST", 1, 0))
