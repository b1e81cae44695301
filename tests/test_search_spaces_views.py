"""search_spaces: the seeded draw, the Ray Tune space and the Optuna space agree.

For every algorithm and dataset group: same searched names, same bounds, same log/linear scale
and same int/float/categorical type, read from the raw Tune ``Domain`` objects and from the
Optuna distributions a trial records; and DomainBed draws for 200+ seed pairs fall inside both.
"""

import pickle

import numpy as np
import optuna
import pytest
from ray.tune.search.optuna import OptunaSearch
from ray.tune.search.sample import Categorical, Domain, Float, Integer, LogUniform

import search_spaces as ss

optuna.logging.set_verbosity(optuna.logging.WARNING)

GROUP_DATASETS = {"small": "ColoredMNIST", "big": "VLCS", "domainnet": "DomainNet"}
CASES = [(a, g) for a in ss.algorithm_names() for g in GROUP_DATASETS]
SEED_PAIRS = [(hs, hs % 3) for hs in range(1, 211)]  # 210 DomainBed draws per hparam


def _tune_view(domain):
    """(kind, low, high inclusive, log, choices) of a raw Ray Tune domain."""
    if isinstance(domain, Categorical):
        return ("categorical", None, None, False, tuple(domain.categories))
    log = isinstance(domain.get_sampler(), LogUniform)
    if isinstance(domain, Integer):
        return ("int", domain.lower, domain.upper - 1, log, ())  # Tune's upper end is exclusive
    assert isinstance(domain, Float)
    return ("float", domain.lower, domain.upper, log, ())


def _optuna_view(dist):
    if isinstance(dist, optuna.distributions.CategoricalDistribution):
        return ("categorical", None, None, False, tuple(dist.choices))
    kind = "int" if isinstance(dist, optuna.distributions.IntDistribution) else "float"
    return (kind, dist.low, dist.high, dist.log, ())


def _definition_view(h):
    b = h.dist.bounds()
    return (b.kind, b.low, b.high, b.log, b.choices)


def _optuna_distributions(algorithm, dataset, overrides=None):
    trial = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0)).ask()
    constants = ss.optuna_space(algorithm, dataset, overrides)(trial)
    return trial.distributions, trial.params, constants


def _in_tune(domain, value):
    if isinstance(domain, Categorical):
        return value in domain.categories
    if isinstance(domain, Integer):
        return isinstance(value, int) and domain.lower <= value < domain.upper
    return isinstance(value, float) and domain.lower <= value <= domain.upper


def _in_optuna(dist, value):
    try:
        return dist._contains(dist.to_internal_repr(value))
    except ValueError:
        return False


@pytest.mark.parametrize("algorithm,group", CASES)
def test_three_views_agree(algorithm, group):
    dataset = GROUP_DATASETS[group]
    defs = ss.definitions(algorithm, dataset)
    tune = ss.tune_space(algorithm, dataset)
    distributions, params, constants = _optuna_distributions(algorithm, dataset)
    searched = [h for h in defs if h.dist.searched]
    assert [n for n in tune if isinstance(tune[n], Domain)] == [h.name for h in searched]
    assert list(distributions) == [h.name for h in searched]
    for h in defs:
        if h.dist.searched:
            expected = _definition_view(h)
            assert _tune_view(tune[h.name]) == expected, h.name
            assert _optuna_view(distributions[h.name]) == expected, h.name
            assert expected[0] != "int" or type(params[h.name]) is int
        else:
            # Constants: plain values equal to the default, identical in both spaces.
            assert h.dist.value == h.default and tune[h.name] == h.default
            assert constants[h.name] == h.default and type(constants[h.name]) is type(h.default)
    assert set(constants) == {h.name for h in defs if not h.dist.searched}


@pytest.mark.parametrize("algorithm,group", CASES)
def test_domainbed_draws_fall_inside_tune_and_optuna_domains(algorithm, group):
    dataset = GROUP_DATASETS[group]
    tune = ss.tune_space(algorithm, dataset)
    distributions, _, _ = _optuna_distributions(algorithm, dataset)
    for hs, ts in SEED_PAIRS:
        for name, value in ss.random_hparams(algorithm, dataset, hs, ts).items():
            if name in distributions:
                assert _in_tune(tune[name], value), (name, value)
                assert _in_optuna(distributions[name], value), (name, value)
            else:
                assert value == tune[name]


@pytest.mark.parametrize("group", list(GROUP_DATASETS))
def test_tune_samples_stay_in_bounds_and_optuna_search_reads_the_tune_space(group):
    dataset = GROUP_DATASETS[group]
    tune = ss.tune_space("DANN", dataset)
    domains = {n: d for n, d in tune.items() if isinstance(d, Domain)}
    for name, domain in domains.items():
        values = domain.sample(size=500, random_state=np.random.RandomState(1))
        assert all(_in_tune(domain, d.item() if hasattr(d, "item") else d) for d in values), name
    # Ray's own conversion of our Tune space gives exactly the define-by-run distributions,
    # including the custom int(2^U(a, b)) domains.
    converted = OptunaSearch.convert_search_space(domains)
    distributions, _, _ = _optuna_distributions("DANN", dataset)
    assert converted == distributions


def test_batch_size_bounds_per_group():
    def bounds(algorithm, dataset):
        d = ss.tune_space(algorithm, dataset)["batch_size"]
        return d if not isinstance(d, Domain) else (d.lower, d.upper)
    assert bounds("ERM", "ColoredMNIST") == (8, 512)  # int(2^U(3, 9)): 8 .. 511
    assert bounds("ERM", "VLCS") == (8, 46)  # int(2^U(3, 5.5)): 8 .. 45 (2^5.5 = 45.25)
    assert bounds("ERM", "DomainNet") == (8, 32)  # int(2^U(3, 5)): 8 .. 31
    assert bounds("ARM", "VLCS") == 8 and bounds("ARM", "DomainNet") == 8
    assert bounds("ARM", "ColoredMNIST") == (8, 512)
    assert bounds("Fishr", "VLCS") == (8, 46)
    fishr = ss.tune_space("Fishr", "VLCS")
    assert (fishr["penalty_anneal_iters"].lower, fishr["penalty_anneal_iters"].upper) == (0, 5000)
    assert (fishr["lambda"].lower, fishr["lambda"].upper) == (10.0, 10000.0)


def test_spaces_pickle_for_searcher_checkpoints():
    # OptunaSearch.save() pickles its space with plain pickle; Tune pickles param_space.
    space = pickle.loads(pickle.dumps(ss.optuna_space("Fishr", "PACS", {"ema": 0.9})))
    trial = optuna.create_study().ask()
    constants = space(trial)
    assert constants["ema"] == 0.9 and "lambda" in trial.params
    tune = pickle.loads(pickle.dumps(ss.tune_space("IRM", "VLCS")))
    value = tune["irm_penalty_anneal_iters"].sample(random_state=np.random.RandomState(0))
    assert isinstance(value, int) and 1 <= value <= 9999


def test_optuna_search_merges_the_constants():
    searcher = OptunaSearch(space=ss.optuna_space("Fishr", "ColoredMNIST", {"lambda": 10.0}),
                            metric="acc", mode="max", seed=3)
    config = searcher.suggest("trial_a")
    assert set(config) == set(ss.default_hparams("Fishr", "ColoredMNIST"))
    assert config["lambda"] == 10.0 and config["fishr_backend"] == "closed_form"
    assert config["weight_decay"] == 0.0 and 8 <= config["batch_size"] <= 511
    assert 0.90 <= config["ema"] <= 0.99 and 0 <= config["penalty_anneal_iters"] <= 4999


def test_tune_variant_generator_resolves_the_space_to_plain_values():
    from ray.tune.search.variant_generator import generate_variants

    space = ss.tune_space("Fishr", "VLCS", {"ema": 0.9})
    tune_domains = {n: d for n, d in space.items() if isinstance(d, Domain)}
    for seed in range(20):
        for _, config in generate_variants(space, random_state=np.random.RandomState(seed)):
            assert set(config) == set(space) and config["ema"] == 0.9
            assert all(type(v) in (bool, int, float, str) for v in config.values())
            assert all(_in_tune(d, config[n]) for n, d in tune_domains.items())
