"""search_spaces: 10,000 draws per hparam follow the stated law (KS tests at fixed seeds).

Continuous laws: scipy's KS test on the draws (log10 of them for 10^U(a, b)) against the
uniform CDF. Truncated ints: the KS distance to the EXACT discrete CDF, e.g.
P(int(2^U(a, b)) <= k) = (log2(k + 1) - a) / (b - a), compared with the KS critical value
(conservative for a discrete law). Choices: a chi-square test. Checked for the DomainBed-style
draw, for Tune's own sampling of ``tune_space``, and end to end through the seed_hash rule.
"""

import math

import numpy as np
import pytest
from scipy import stats

import search_spaces as ss
from search_spaces.distributions import Choice, LogUniform10, Uniform

N = 10_000
ALPHA = 1e-3
D_CRIT = stats.kstwo.ppf(1 - ALPHA, N)  # about 0.0195 for N = 10,000
GROUP_DATASETS = ("ColoredMNIST", "VLCS", "DomainNet")


def _searched_hparams():
    """Every distinct (name, distribution) the registry searches, over algorithms and groups."""
    found = {}
    for algorithm in ss.algorithm_names():
        for dataset in GROUP_DATASETS:
            for h in ss.definitions(algorithm, dataset):
                if h.dist.searched:
                    found[(h.name, h.dist)] = h
    return list(found.values())


HPARAMS = _searched_hparams()
IDS = [f"{h.name}:{h.dist.text()}" for h in HPARAMS]


def _exact_int_cdf(dist):
    """Support and exact CDF of a truncated int law, from its stated parameters."""
    if hasattr(dist, "base"):  # int(base^U(a, b))
        low, high = int(dist.base ** dist.a), math.ceil(dist.base ** dist.b) - 1
        ks = np.arange(low, high + 1)
        cdf = (np.log(ks + 1) / np.log(dist.base) - dist.a) / (dist.b - dist.a)
    else:  # int(U(a, b))
        ks = np.arange(dist.a, dist.b)
        cdf = (ks + 1 - dist.a) / (dist.b - dist.a)
    return ks, np.clip(cdf, 0.0, 1.0)


def _discrete_ks_distance(values, ks, cdf):
    values = np.asarray(values)
    assert np.isin(values, ks).all(), "draw outside the support"
    empirical = np.searchsorted(np.sort(values), ks, side="right") / len(values)
    return float(np.max(np.abs(empirical - cdf)))


def _assert_follows(dist, values, n=N):
    values = list(values)
    assert len(values) == n
    if isinstance(dist, Choice):
        counts = [sum(1 for v in values if v == c) for c in dist.values]
        assert sum(counts) == n
        assert stats.chisquare(counts).pvalue > ALPHA
    elif isinstance(dist, LogUniform10):
        logs = np.log10(np.asarray(values, dtype=float))
        assert stats.kstest(logs, "uniform", args=(dist.a, dist.b - dist.a)).pvalue > ALPHA
    elif isinstance(dist, Uniform):
        assert stats.kstest(values, "uniform", args=(dist.a, dist.b - dist.a)).pvalue > ALPHA
    else:
        ks, cdf = _exact_int_cdf(dist)
        assert _discrete_ks_distance(values, ks, cdf) < stats.kstwo.ppf(1 - ALPHA, n)


@pytest.mark.parametrize("h", HPARAMS, ids=IDS)
def test_domainbed_draws_follow_the_law(h):
    r = np.random.RandomState(20240611)
    _assert_follows(h.dist, [h.dist.sample(r) for _ in range(N)])


@pytest.mark.parametrize("h", HPARAMS, ids=IDS)
def test_tune_domain_draws_follow_the_same_law(h):
    domain = h.dist.tune_domain()
    values = domain.sample(size=N, random_state=np.random.RandomState(7))
    _assert_follows(h.dist, [v.item() if hasattr(v, "item") else v for v in values])


def test_seed_hash_rule_end_to_end():
    # 5,000 sweep jobs (hparams_seed 1..5000, trial_seed 0; half of N to keep the suite fast on
    # a shared machine, a RandomState costs ~0.1 ms): each hparam's values across jobs follow
    # its law, although every value comes from a different RandomState.
    n = N // 2
    draws = [ss.random_hparams("Fishr", "ColoredMNIST", hs, 0) for hs in range(1, n + 1)]
    for h in ss.definitions("Fishr", "ColoredMNIST"):
        if h.dist.searched:
            _assert_follows(h.dist, [d[h.name] for d in draws], n)


def test_the_tests_have_power():
    # The same checks reject near-miss laws, so passing them is not a loose range check.
    r = np.random.RandomState(3)
    batch = [int(2 ** r.uniform(3, 9)) for _ in range(N)]
    ks = np.arange(8, 512)
    flat = (ks - 7) / (511 - 7)  # plain randint(8, 512)
    assert _discrete_ks_distance(batch, ks, flat) > D_CRIT
    lam = np.log10([10 ** r.uniform(1, 4) for _ in range(N)])
    assert stats.kstest(lam, "uniform", args=(1, 3.1)).pvalue < ALPHA
