"""The science checks of issues 2 and 7: under the Fishr paper's IRM protocol (sec. 5.1) on the
embedded ColoredDigits, Fishr's, IRM's and V-REx's accuracies on the -90% environment are far
above ERM's (the paper's Table 2 ordering). ERM, IRM, VREx and Fishr run once, on the same two
restarts, shared by the tests (about 4 x 2 x 7 s on a quiet core).

A reduced run of ``benchmarks/colored_digits_irm_protocol.py`` (which documents the protocol, the
penalty convention and the caveats): the full protocol (501 full-batch steps, penalty weight
91257.19 from step 190) on 2 restarts instead of 10, ERM and Fishr on the same seeds.

Margin, from the benchmark's runs of restarts 0..29 (1 torch thread, CPU): ERM 26.7 +/- 3.3,
Fishr 40.9 +/- 5.0, Fishr with lambda = 0 after the warm-up (the control) 26.5 +/- 3.3. The paired
Fishr - ERM gap averaged 14.3 points; it was >= 7.9 in 29 restarts and -0.8 in one (restart 25).
Over all 435 pairs of those restarts, the 2-restart mean gap fell below MARGIN_POINTS = 5 in 1.6%
(only pairs with restart 25) and never below 3.5, while the control's 2-restart mean gap never
exceeded 0.6 (its single restarts stay within -1.2..+0.7). So lambda = 0, a constant or
gradient-free penalty fails the assertion (as does the train-accuracy check); a change of
seeds or of BLAS numerics very probably does not. The restarts here (0, 1) gave 8.2 and 18.5.

IRM and V-REx (issue 7; the project's ``irm_penalty`` / ``vrex_penalty``, same weight 91257.19 and
anneal), from the benchmark's restarts 0..9: IRM 38.4 +/- 7.3, V-REx 40.0 +/- 6.5, ERM
27.1 +/- 3.8 on -90%. Paired gaps: IRM 11.3 on average (min -0.2 at restart 2 and 5.1 at restart
8, where IRM stays near ERM's level: its bimodality), V-REx 12.9 (min 6.2). Over the 45 pairs of
those restarts the 2-restart mean gap fell below IRM_VREX_MARGIN_POINTS = 5 twice for IRM (pairs
with restart 2: 2.45 and 3.65) and never for V-REx (min 6.4). With weight 0 both losses are ERM's
(same data, init and seeds), so a dead penalty gives a gap of 0 and fails. The restarts here
(0, 1) gave IRM 11.0 and 16.7, V-REx 6.7 and 17.0; both stay below ERM's ~100% train accuracy
(IRM <= 87.2%, V-REx <= 94.5% in all 10 restarts).
"""

import importlib.util
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "colored_digits_irm_protocol.py"
RESTARTS = (0, 1)
MARGIN_POINTS = 5.0  # required mean paired Fishr - ERM gap on -90%, in points; see the module doc
IRM_VREX_MARGIN_POINTS = 5.0  # the same for IRM and VREx; see the module doc


def _load_protocol():
    name = "colored_digits_irm_protocol"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, SCRIPT)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up while the class is built
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture(scope="module")
def protocol():
    return _load_protocol()


def test_summed_penalty_is_the_irm_setups_fishr_penalty(protocol):
    """E * |w| * fishr_penalty of the class-1 variances == the paper script's penalty: per-sample
    BCE gradients of a Linear(D, 1), centred variance per env, sum over coordinates of the squared
    difference to the env mean, summed over envs (value and gradient, float64)."""
    gen = torch.Generator().manual_seed(0)
    dim, sizes = 7, [5, 8]
    z = torch.randn(sum(sizes), dim, generator=gen, dtype=torch.float64, requires_grad=True)
    layer = torch.nn.Linear(dim, 1).double()
    y = torch.randint(0, 2, (sum(sizes),), generator=gen)

    got = protocol.summed_fishr_penalty(z, layer(z).squeeze(1), y, sizes)

    grads = []
    for i in range(len(y)):
        loss = F.binary_cross_entropy_with_logits(layer(z[i:i + 1]).squeeze(1), y[i:i + 1].double())
        g_w, g_b = torch.autograd.grad(loss, (layer.weight, layer.bias), create_graph=True)
        grads.append(torch.cat([g_w.flatten(), g_b]))
    variances = torch.stack([(g - g.mean(0)).square().mean(0)
                             for g in torch.stack(grads).split(sizes)])
    want = sum((v - variances.mean(0)).square().sum() for v in variances)

    torch.testing.assert_close(got, want)
    torch.testing.assert_close(torch.autograd.grad(got, z, retain_graph=True)[0],
                               torch.autograd.grad(want, z)[0])


@pytest.fixture(scope="module")
def protocol_results(protocol):
    """ERM, IRM, VREx and Fishr on RESTARTS, one torch thread, shared by the tests below."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    start = time.perf_counter()
    try:
        results = protocol.run_protocol(RESTARTS, control=False, methods=protocol.METHODS)
    finally:
        torch.set_num_threads(previous)
    return results, time.perf_counter() - start


def test_fishr_far_above_erm_on_minus_90(protocol, protocol_results):
    results, elapsed = protocol_results
    erm = [100 * r.test_acc for r in results["ERM"]]
    fishr = [100 * r.test_acc for r in results["Fishr"]]
    gaps = [f - e for f, e in zip(fishr, erm)]
    summary = (f"-90% accuracy, restarts {RESTARTS}: ERM {erm}, Fishr {fishr}, gaps {gaps} "
               f"({elapsed:.0f} s)\n" + protocol.format_table(results))
    print(summary)
    assert sum(gaps) / len(gaps) >= MARGIN_POINTS, summary
    # The penalty really constrained training: ERM (and the lambda = 0 control) memorise the
    # training envs (>= 99.7% in all 30 measured restarts), Fishr stays below (<= 95.2%).
    fishr_train = [r.train_acc for r in results["Fishr"]]
    erm_train = [r.train_acc for r in results["ERM"]]
    assert max(fishr_train) < min(erm_train), summary


@pytest.mark.parametrize("method", ["IRM", "VREx"])
def test_irm_and_vrex_above_erm_on_minus_90(protocol, protocol_results, method):
    """The paper's Table 2 ordering for the two baselines (see IRM_VREX_MARGIN_POINTS)."""
    results, elapsed = protocol_results
    erm = [100 * r.test_acc for r in results["ERM"]]
    penalised = [100 * r.test_acc for r in results[method]]
    gaps = [m - e for m, e in zip(penalised, erm)]
    summary = (f"-90% accuracy, restarts {RESTARTS}: ERM {erm}, {method} {penalised}, gaps "
               f"{gaps} ({elapsed:.0f} s for all four methods)\n" + protocol.format_table(results))
    print(summary)
    assert sum(gaps) / len(gaps) >= IRM_VREX_MARGIN_POINTS, summary
    # The penalty constrained training: ERM memorises the training envs, the baseline does not.
    assert max(r.train_acc for r in results[method]) < min(r.train_acc for r in results["ERM"])
