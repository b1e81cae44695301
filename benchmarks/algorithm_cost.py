"""Step time and peak memory of every registered algorithm relative to ERM, side by side.

    python benchmarks/algorithm_cost.py                 # ColoredMNIST CNN, 3 domains x 32
    python benchmarks/algorithm_cost.py --rounds 5 --batch-size 16 --algorithms ERM IGA Fishr

Every algorithm gets the same model (DomainBed's MNIST CNN on 2x28x28 inputs, 2 classes, linear
classifier), the same 3 training domains and the same minibatches, with its DomainBed default
hparams (anneals set to 0 so that every penalty is on, as after a real warm-up). Time: after
``--warmup`` updates each, the algorithms take turns, one update each per round, for ``--rounds``
rounds (so machine load hits all of them alike); the table shows the median step and its ratio
to ERM's. Memory: on CUDA the peak allocated during ``--memory-steps`` updates (reset after
building); on CPU each algorithm runs those updates in a fresh subprocess whose resident memory
a thread samples every 0.5 ms: the peak above the resident memory just before the first update
(torch's CPU allocations are invisible to tracemalloc, and ru_maxrss would count the imports).

The Fishr paper (appendix C.2.2) calls IGA about |E| + 1 times ERM: one backward per domain with
create_graph, then a double backward.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time

import torch

from fishr_tune.algorithms import ALGORITHMS
from search_spaces import default_hparams

DATASET, SHAPE, CLASSES = "ColoredMNIST", (2, 28, 28), 2
# Set for the benchmark: every penalty on from the first step, one discriminator step per
# generator step (DANN's default d_steps_per_g_step is 1 already).
ANNEALS = {"penalty_anneal_iters": 0, "irm_penalty_anneal_iters": 0,
           "vrex_penalty_anneal_iters": 0}


def build(name: str, domains: int, batch_size: int, device: torch.device):
    """The algorithm ``name`` with its default hparams (anneals 0, the given batch size)."""
    hparams = default_hparams(name, DATASET)
    hparams.update({k: v for k, v in ANNEALS.items() if k in hparams}, batch_size=batch_size)
    torch.manual_seed(0)
    return ALGORITHMS[name](SHAPE, CLASSES, domains, hparams).to(device)


def minibatches(domains: int, batch_size: int, device: torch.device, seed: int = 0):
    """Fixed random minibatches, one per domain."""
    gen = torch.Generator().manual_seed(seed)
    return [(torch.rand(batch_size, *SHAPE, generator=gen).to(device),
             torch.randint(0, CLASSES, (batch_size,), generator=gen).to(device))
            for _ in range(domains)]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def step_times(names, domains, batch_size, device, warmup, rounds) -> dict[str, list[float]]:
    """Per algorithm, the wall time of each timed update (round-robin, see the module doc)."""
    algorithms = {name: build(name, domains, batch_size, device) for name in names}
    batches = minibatches(domains, batch_size, device)
    for algorithm in algorithms.values():
        for _ in range(warmup):
            algorithm.update(batches)
    times: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(rounds):
        for name, algorithm in algorithms.items():
            _sync(device)
            start = time.perf_counter()
            algorithm.update(batches)
            _sync(device)
            times[name].append(time.perf_counter() - start)
    return times


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_memory(name, domains, batch_size, device, steps) -> float:
    """Peak memory of ``steps`` updates in bytes (CUDA: allocated; CPU: resident, this process)."""
    algorithm = build(name, domains, batch_size, device)
    batches = minibatches(domains, batch_size, device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        for _ in range(steps):
            algorithm.update(batches)
        torch.cuda.synchronize(device)
        return float(torch.cuda.max_memory_allocated(device) - base)
    # ru_maxrss would count the import peak; a sampler thread sees the updates' own peak.
    base, peak, done = _rss_bytes(), [0], threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], _rss_bytes())
            time.sleep(0.0005)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        for _ in range(steps):
            algorithm.update(batches)
    finally:
        done.set()
        sampler.join()
    return float(max(peak[0], _rss_bytes()) - base)


def cpu_peak_memory(name, domains, batch_size, steps, threads) -> float:
    """:func:`peak_memory` on CPU in a fresh subprocess (freed memory is not always returned to
    the system, so one process per algorithm keeps them from inflating each other's base)."""
    code = (f"import torch, json, sys; torch.set_num_threads({threads}); "
            f"sys.path.insert(0, {os.path.dirname(os.path.abspath(__file__))!r}); "
            f"import algorithm_cost as c; print(json.dumps(c.peak_memory({name!r}, {domains}, "
            f"{batch_size}, torch.device('cpu'), {steps})))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    return float(json.loads(done.stdout.strip().splitlines()[-1]))


def format_table(times, memory, device, domains, batch_size) -> str:
    """Median step time and peak memory per algorithm, with ratios to ERM."""
    erm_time = statistics.median(times["ERM"])
    erm_mem = memory["ERM"]
    unit = "allocated" if device.type == "cuda" else "resident"
    header = (f"{'algorithm':<10}{'step ms':>10}{'x ERM':>8}{'peak MiB':>11}{'x ERM':>8}")
    lines = [f"{DATASET} MNIST CNN, {domains} domains x {batch_size}, {device.type}, "
             f"peak {unit} memory of the updates", header, "-" * len(header)]
    for name in times:
        med = statistics.median(times[name])
        mem = memory[name]
        lines.append(f"{name:<10}{1000 * med:>10.1f}{med / erm_time:>8.2f}"
                     f"{mem / 2**20:>11.1f}{mem / erm_mem:>8.2f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--algorithms", nargs="+", default=list(ALGORITHMS),
                        choices=list(ALGORITHMS))
    parser.add_argument("--domains", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--memory-steps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    args = parser.parse_args(argv)
    if min(args.domains, args.batch_size, args.rounds, args.memory_steps, args.threads) < 1 \
            or args.warmup < 0 or args.domains < 2:
        parser.error("--domains must be >= 2; --batch-size, --rounds, --memory-steps and "
                     "--threads >= 1; --warmup >= 0")
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    names = ["ERM"] + [n for n in args.algorithms if n != "ERM"]
    times = step_times(names, args.domains, args.batch_size, device, args.warmup, args.rounds)
    if device.type == "cuda":
        memory = {n: peak_memory(n, args.domains, args.batch_size, device, args.memory_steps)
                  for n in names}
    else:
        memory = {n: cpu_peak_memory(n, args.domains, args.batch_size, args.memory_steps,
                                     args.threads) for n in names}
    print(format_table(times, memory, device, args.domains, args.batch_size))


if __name__ == "__main__":
    main()
