"""Training-step cost of Fishr over ERM, same model and batch, measured side by side in one run.

    python benchmarks/fishr_overhead.py                      # CPU, cheap 2048-feature featurizer
    python benchmarks/fishr_overhead.py --device cuda --resnet   # the real ResNet-50 (a GPU box)

Cases: the classifier shapes of PACS (2048 x 7, 3 training domains), OfficeHome (2048 x 65, 3)
and DomainNet (2048 x 345, 5) with 32 samples per domain, and the embedded default (ColoredDigits:
2x8x8 inputs, the digits CNN, 2 classes, 2 domains of 64). Variants: ERM, Fishr with the closed
form, Fishr with BackPACK. Each timed round runs one ``update`` of every variant in turn (so drift
hits all alike); the table gives medians of wall time on CUDA, of process CPU time on CPU. Fishr
runs with its penalty on (anneal 0, lambda 1000).

Peak memory: on CUDA, torch's peak allocated bytes over the first steps minus what was allocated
before them (in this process). On CPU torch has no allocator statistics, so each variant runs
in a fresh child process and we report the growth of its peak resident set (VmHWM, reset through
/proc/self/clear_refs once model and batch exist) over its first steps: Adam state, gradients and
every transient of a step, plus allocator slack.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass

import torch
from torch import nn

from fishr_tune.algorithms import ERM, Fishr

HPARAMS = {"lr": 5e-5, "weight_decay": 0.0, "resnet18": False, "resnet_dropout": 0.0,
           "nonlinear_classifier": False, "lambda": 1000.0, "penalty_anneal_iters": 0,
           "ema": 0.95}
VARIANTS = {"ERM": (ERM, {}), "closed": (Fishr, {"fishr_backend": "closed_form"}),
            "backpack": (Fishr, {"fishr_backend": "backpack"})}
CHEAP_SHAPE = (3, 8, 8)  # input of the cheap featurizer: Linear(192 -> 2048) + ReLU
MEMORY_STEPS = 3


@dataclass(frozen=True)
class Case:
    """A benchmark problem: classes, training domains, samples per domain, feature size."""

    classes: int
    domains: int
    batch: int
    features: int | None  # None: the real default featurizer of the digits (2, 8, 8)


CASES = {"PACS": Case(7, 3, 32, 2048), "OfficeHome": Case(65, 3, 32, 2048),
         "DomainNet": Case(345, 5, 32, 2048), "ColoredDigits": Case(2, 2, 64, None)}


class CheapFeaturizer(nn.Module):
    """Linear + ReLU to ``n_outputs`` features: a stand-in for ResNet-50's 2048 features on CPU."""

    def __init__(self, in_shape: tuple[int, ...], n_outputs: int):
        super().__init__()
        self.n_outputs = n_outputs
        self.layers = nn.Sequential(nn.Flatten(), nn.Linear(torch.Size(in_shape).numel(),
                                                            n_outputs), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def build(case: Case, variant: str, device: torch.device, resnet: bool):
    """The algorithm (same initial weights for every variant) and a fixed batch."""
    cls, extra = VARIANTS[variant]
    featurizer, shape = None, (2, 8, 8)
    if case.features is not None:
        shape = (3, 224, 224) if resnet else CHEAP_SHAPE
    torch.manual_seed(0)
    if case.features is not None and not resnet:
        featurizer = CheapFeaturizer(shape, case.features)
    algorithm = cls(shape, case.classes, case.domains, {**HPARAMS, **extra}, weights="none",
                    featurizer=featurizer).to(device)
    gen = torch.Generator().manual_seed(1)
    batches = [(torch.randn(case.batch, *shape, generator=gen).to(device),
                torch.randint(0, case.classes, (case.batch,), generator=gen).to(device))
               for _ in range(case.domains)]
    return algorithm, batches


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_case(case: Case, device: torch.device, resnet: bool, warmup: int,
              repeats: int) -> dict[str, float]:
    """Median seconds per ``update`` of each variant, measured round-robin.

    On CPU the clock is this process's CPU time (user + system, all its threads): other jobs on a
    shared machine then barely move it, where wall time would follow their load.
    """
    clock = time.perf_counter if device.type == "cuda" else time.process_time
    built = {name: build(case, name, device, resnet) for name in VARIANTS}
    times: dict[str, list[float]] = {name: [] for name in VARIANTS}
    for round_index in range(warmup + repeats):
        for name, (algorithm, batches) in built.items():
            _sync(device)
            start = clock()
            algorithm.update(batches)
            _sync(device)
            if round_index >= warmup:
                times[name].append(clock() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def _proc_kb(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def peak_memory_mb(case: Case, variant: str, device: torch.device, resnet: bool) -> float:
    """Peak memory growth over the first steps (see the module doc), in MiB."""
    algorithm, batches = build(case, variant, device, resnet)
    if device.type == "cuda":
        _sync(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        for _ in range(MEMORY_STEPS):
            algorithm.update(batches)
        return (torch.cuda.max_memory_allocated(device) - base) / 2**20
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")  # resets VmHWM to the current resident set
    base = _proc_kb("VmRSS")
    for _ in range(MEMORY_STEPS):
        algorithm.update(batches)
    return (_proc_kb("VmHWM") - base) / 1024


def memory_in_child(case_name: str, variant: str, args: argparse.Namespace) -> float | None:
    """Run :func:`peak_memory_mb` in a fresh process (CPU); None if that fails."""
    command = [sys.executable, __file__, "--memory-child", case_name, variant,
               "--threads", str(torch.get_num_threads())] + (["--resnet"] if args.resnet else [])
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    try:
        return float(json.loads(done.stdout.strip().splitlines()[-1]))
    except (ValueError, IndexError):
        print(f"memory of {case_name}/{variant} not measured: {done.stderr.strip()[-200:]}",
              file=sys.stderr)
        return None


def _mb(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--resnet", action="store_true",
                        help="real ResNet-50 (random init) for the 2048-feature cases")
    parser.add_argument("--cases", default=",".join(CASES), help="comma-separated subset")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--no-memory", action="store_true")
    parser.add_argument("--memory-child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if args.memory_child:
        case_name, variant = args.memory_child
        print(json.dumps(peak_memory_mb(CASES[case_name], variant, device, args.resnet)))
        return

    featurizer = "ResNet-50 (random init, frozen BN)" if args.resnet else \
        "a cheap featurizer, Linear(3x8x8=192 -> 2048) + ReLU, standing in for ResNet-50"
    clock = "wall time" if device.type == "cuda" else \
        f"process CPU time, {torch.get_num_threads()} thread(s)"
    print(f"Fishr / ERM training-step time ({clock}), median of {args.repeats} round-robin steps "
          f"after {args.warmup} warm-up; device {device}, "
          f"torch {torch.__version__}. 2048-feature cases use {featurizer}; ColoredDigits uses "
          f"the digits CNN. Peak memory: "
          + ("CUDA peak allocated growth over the first steps." if device.type == "cuda" else
             "peak RSS growth over a fresh process's first steps (MiB)."))
    print()
    print("| case | classifier | domains x n | ERM ms | closed ms | closed added ms | closed / ERM "
          "| BackPACK ms | BackPACK / ERM | peak MiB ERM / closed / BackPACK |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for case_name in args.cases.split(","):
        case = CASES[case_name]
        seconds = time_case(case, device, args.resnet, args.warmup, args.repeats)
        memory = {name: None for name in VARIANTS}
        if not args.no_memory:
            for name in VARIANTS:
                memory[name] = (memory_in_child(case_name, name, args) if device.type == "cpu"
                                else peak_memory_mb(case, name, device, args.resnet))
        dim = case.features or 64
        erm, closed, backpack = (seconds[name] * 1e3 for name in VARIANTS)
        print(f"| {case_name} | {dim} x {case.classes} | {case.domains} x {case.batch} "
              f"| {erm:.2f} | {closed:.2f} | {closed - erm:.2f} | {closed / erm:.3f} "
              f"| {backpack:.2f} | {backpack / erm:.3f} "
              f"| {' / '.join(_mb(memory[n]) for n in VARIANTS)} |",
              flush=True)


if __name__ == "__main__":
    main()
