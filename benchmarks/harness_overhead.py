"""Harness overhead: an embedded sweep on Ray Tune vs DomainBed's one-process-per-trial launcher.

    python benchmarks/harness_overhead.py                    # 40 trials x 200 steps, 2 slots
    python benchmarks/harness_overhead.py --trials 8 --steps 100   # a quick look

The same trials run both ways, one after the other in this one run: ColoredDigits (embedded),
test env 2, trial seed 0, ERM with hparams seeds 1..N/2 then Fishr with hparams seeds 1..N/2
(DomainBed's loop order), ``--steps`` steps with a checkpoint every ``--checkpoint-freq``.

* fishr_tune: ``run_sweep`` with explicit jobs, 1 CPU per trial on a local Ray of ``--slots`` CPUs,
  in a fresh child process (so neither method inherits the other's imports or Ray). ``wall`` is
  the Ray start-up (``ray.init``, same options as ``fishr_tune.sweep.cluster.connect`` but
  ``address="local"`` so another user's ``ray start`` cluster is never joined) plus the whole
  ``run_sweep`` call. The child's process wall (Python start, imports of torch/ray,
  ``ray.shutdown``) is reported too.
* DomainBed-style: ``python -m fishr_tune.train ... --quiet``, one process per trial, ``--slots``
  at a time (DomainBed's ``multi_gpu`` launcher with that many workers). Each slot starts its next
  trial the moment the previous one exits (DomainBed's launcher polls every second instead; that
  idle time is *not* charged here). ``wall`` is the whole batch.

Both ways a trial runs with one torch thread (Ray sets ``OMP_NUM_THREADS=1`` for a 1-CPU actor and
the trainable calls ``torch.set_num_threads(1)``; the subprocesses get ``OMP_NUM_THREADS=1``), so
the two produce bit-identical accuracies and the slots do not oversubscribe the cores.

Per method: ``sum trial s`` = the sum over trials of ``elapsed_s`` at the trial's last checkpoint
(the trial's own training + evaluation seconds; note it also contains the trial's callbacks of
the earlier checkpoints: Parquet writes, and in the sweep the state ``torch.save`` and
``tune.report`` with a checkpoint), ``overhead s/trial`` = (wall x slots - sum trial s) / trials
and ``busy %`` = sum trial s / (wall x slots).

The ``trial window`` rows use, instead of the wall, the span from the first trial's start to the
last trial's end, derived from the records alone and the same way for both methods: a trial's
end is the modification time of its records file (its final ``ok`` write, right after its last
checkpoint), its start is that end minus its ``elapsed_s`` at the last checkpoint (the start of
its training loop, after its data and model are built). The window therefore leaves out start-up
and shut-down, but keeps every gap between trials (process/actor start-up, data and model set-up,
scheduling).

The overhead is also split into a per-trial part (mean idle time between consecutive trials of
one slot, from the same record times, trials assigned to slots by interval partitioning) and a
fixed per-sweep part (the rest), which gives the sweep size at which the amortised overhead
would reach the goal (an extrapolation, printed as such).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

GOAL_OVERHEAD_S = 0.25
GOAL_BUSY = 0.90
DATASET, TEST_ENV, TRIAL_SEED = "ColoredDigits", 2, 0
ALGORITHMS = ("ERM", "Fishr")
SWEEP_NAME = "harness"
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def trial_list(n_trials: int) -> list[tuple[str, int]]:
    """(algorithm, hparams_seed) of every trial: ERM 1..k, then Fishr 1..(n - k)."""
    per_alg = -(-n_trials // len(ALGORITHMS))
    return [(a, s) for a in ALGORITHMS for s in range(1, per_alg + 1)][:n_trials]


def single_thread_env() -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env["PYTHONPATH"] = REPO + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


# ---- fishr_tune: the sweep, in a child process -----------------------------------------------
def ray_child(opts: argparse.Namespace) -> None:
    """Run the sweep; write timings to ``<output>/ray_child.json``."""
    t_process = time.time()
    import ray

    from fishr_tune.sweep.config import SweepConfig
    from fishr_tune.sweep.driver import run_sweep
    from fishr_tune.sweep.plan import Study

    t_imported = time.time()
    jobs = [{"study": Study(DATASET, algorithm, (TEST_ENV,), TRIAL_SEED).as_dict(),
             "hparams_seed": seed, "trial_index": seed - 1}
            for algorithm, seed in trial_list(opts.trials)]
    config = SweepConfig(datasets=[DATASET], algorithms=list(ALGORITHMS), test_envs=[TEST_ENV],
                         trial_seeds=1, num_samples=len(jobs), steps=opts.steps,
                         checkpoint_freq=opts.checkpoint_freq, output=opts.output,
                         name=SWEEP_NAME, cpus_per_trial=1.0, jobs=jobs)
    os.environ.setdefault("RAY_DEDUP_LOGS", "1")
    start = time.time()
    ray.init(address="local", num_cpus=opts.slots, include_dashboard=False, log_to_driver=True,
             configure_logging=True, logging_level="WARNING")
    ray_up = time.time()
    outcome = run_sweep(config, num_cpus=opts.slots)
    end = time.time()
    ray.shutdown()
    done = time.time()
    result = {"process_start": t_process, "import_s": t_imported - t_process,
              "start": start, "ray_init_s": ray_up - start, "run_sweep_s": end - ray_up,
              "run_sweep_inner_s": outcome.wall_time_s, "end": end,
              "shutdown_s": done - end, "counts": outcome.counts,
              "sweep_dir": outcome.sweep_dir}
    with open(os.path.join(opts.output, "ray_child.json"), "w") as f:
        json.dump(result, f)


def run_fishr_tune(opts: argparse.Namespace, root: str) -> dict:
    output = os.path.join(root, "fishr_tune")
    os.makedirs(output)
    log = os.path.join(root, "fishr_tune.log")
    command = [sys.executable, os.path.abspath(__file__), "--ray-child", "--output", output,
               "--trials", str(opts.trials), "--steps", str(opts.steps),
               "--checkpoint-freq", str(opts.checkpoint_freq), "--slots", str(opts.slots)]
    t0 = time.time()
    with open(log, "w") as f:
        done = subprocess.run(command, stdout=f, stderr=subprocess.STDOUT, cwd=REPO,
                              env=single_thread_env(), check=False)
    process_wall = time.time() - t0
    if done.returncode != 0:
        with open(log) as f:
            tail = f.read()[-3000:]
        raise SystemExit(f"fishr_tune sweep failed (exit {done.returncode}); log {log}:\n{tail}")
    with open(os.path.join(output, "ray_child.json")) as f:
        child = json.load(f)
    child["process_wall_s"] = process_wall
    child["wall_s"] = child["end"] - child["start"]
    child["records_dir"] = os.path.join(output, SWEEP_NAME, "records")
    return child


# ---- DomainBed's way: one process per trial, `slots` at a time -------------------------------
def run_subprocesses(opts: argparse.Namespace, root: str) -> dict:
    output = os.path.join(root, "subprocess")
    queue = list(trial_list(opts.trials))
    lock = threading.Lock()
    failures: list[str] = []

    def worker():
        while True:
            with lock:
                if not queue:
                    return
                algorithm, seed = queue.pop(0)
            command = [sys.executable, "-m", "fishr_tune.train", "--dataset", DATASET,
                       "--algorithm", algorithm, "--test-envs", str(TEST_ENV),
                       "--hparams-seed", str(seed), "--trial-seed", str(TRIAL_SEED),
                       "--steps", str(opts.steps), "--checkpoint-freq", str(opts.checkpoint_freq),
                       "--output", output, "--quiet"]
            done = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                  text=True, cwd=REPO, env=single_thread_env(), check=False)
            if done.returncode != 0:
                with lock:
                    failures.append(f"{algorithm} {seed}: exit {done.returncode}: "
                                    f"{done.stderr.strip()[-500:]}")

    start = time.time()
    threads = [threading.Thread(target=worker) for _ in range(opts.slots)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    end = time.time()
    return {"start": start, "end": end, "wall_s": end - start, "failures": failures,
            "records_dir": os.path.join(output, "records")}


# ---- analysis -----------------------------------------------------------------------------
def trial_summary(records_dir: str):
    """Per trial: status, elapsed_s at the last checkpoint, end time, final accuracies."""
    import pandas as pd

    from fishr_tune.records import read_records

    records = read_records(records_dir)
    ends = {name[:-len(".parquet")]: os.stat(os.path.join(records_dir, name)).st_mtime
            for name in os.listdir(records_dir)
            if name.endswith(".parquet") and not name.startswith(".")}
    last = records.sort_values("step").groupby("trial_id").tail(1).set_index("trial_id")
    summary = pd.DataFrame({"status": last["status"], "elapsed_s": last["elapsed_s"],
                            "hparams_seed": last["hparams_seed"],
                            "algorithm": last["algorithm"]})
    summary["end"] = pd.Series(ends)
    summary["begin"] = summary["end"] - summary["elapsed_s"]
    acc_columns = sorted(c for c in records.columns if c.endswith("_acc"))
    accs = records.set_index(["trial_id", "step"])[acc_columns].sort_index()
    return summary, accs


def slot_gaps(summary, slots: int) -> list[float]:
    """Idle seconds between consecutive trials of one slot (records only, both methods alike).

    Trials are assigned to slots by interval partitioning: each trial goes to the slot that
    became free most recently before the trial began.
    """
    ends: list[float] = []
    gaps: list[float] = []
    for begin, end in sorted(zip(summary["begin"], summary["end"])):
        free = [i for i, e in enumerate(ends) if e <= begin]
        if len(ends) < slots and not free:
            ends.append(end)
            continue
        i = max(free, key=lambda j: ends[j]) if free else min(range(len(ends)),
                                                               key=lambda j: ends[j])
        gaps.append(begin - ends[i])
        ends[i] = end
    return gaps


def marginal_line(name: str, summary, wall: float, sum_trial: float, n: int, slots: int) -> str:
    gaps = slot_gaps(summary, slots)
    gap = sum(gaps) / len(gaps) if gaps else float("nan")
    fixed = wall * slots - sum_trial - len(gaps) * gap
    text = (f"{name}: idle between consecutive trials of a slot {gap:.3f} s/trial (mean of "
            f"{len(gaps)}); the rest, {fixed:.1f} slot-s, is fixed per sweep (start-up, the "
            f"first trial of each slot, the unequal end of the slots)")
    if gap < GOAL_OVERHEAD_S:
        text += (f"; at this rate the amortised overhead would reach {GOAL_OVERHEAD_S} s/trial "
                 f"from about {fixed / (GOAL_OVERHEAD_S - gap):.0f} trials (extrapolated)")
    return text


def row(method: str, n: int, wall: float, sum_trial: float, slots: int) -> str:
    overhead = (wall * slots - sum_trial) / n
    busy = sum_trial / (wall * slots)
    return (f"| {method} | {n} | {wall:.1f} | {sum_trial:.1f} | {overhead:.3f} "
            f"| {100 * busy:.1f} |")


def compare_accuracies(ray_accs, sub_accs) -> str:
    import numpy as np

    common = ray_accs.index.intersection(sub_accs.index)
    trials = {t for t, _ in common}
    a = ray_accs.loc[common]
    b = sub_accs.loc[common]
    diff = (a - b).abs().to_numpy()
    diff = diff[~np.isnan(diff)]
    same = [t for t in trials if np.array_equal(a.loc[t].to_numpy(), b.loc[t].to_numpy(),
                                                 equal_nan=True)]
    n_ray = len({t for t, _ in ray_accs.index})
    n_sub = len({t for t, _ in sub_accs.index})
    verdict = "MATCH" if len(same) == len(trials) == n_ray == n_sub else "DIFFER"
    return (f"accuracies {verdict}: {len(same)}/{len(trials)} common trials bit-identical at "
            f"every checkpoint ({n_ray} fishr_tune trials, {n_sub} subprocess trials, trial ids "
            f"{'identical' if n_ray == n_sub == len(trials) else 'NOT identical'}); "
            f"max |diff| {diff.max() if diff.size else float('nan'):.3g}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--checkpoint-freq", type=int, default=100)
    parser.add_argument("--slots", type=int, default=2, help="concurrent trials (1 CPU each)")
    parser.add_argument("--order", choices=("fishr_tune-first", "subprocess-first"),
                        default="fishr_tune-first")
    parser.add_argument("--output", default=None, help="keep everything here (default: a "
                        "temporary folder, removed at the end)")
    parser.add_argument("--ray-child", action="store_true", help=argparse.SUPPRESS)
    opts = parser.parse_args(argv)
    if opts.ray_child:
        ray_child(opts)
        return 0
    if opts.trials < 1 or opts.steps < 1 or opts.checkpoint_freq < 1 or opts.slots < 1:
        parser.error("--trials, --steps, --checkpoint-freq and --slots must be >= 1")

    root = opts.output or tempfile.mkdtemp(prefix="harness_overhead-")
    os.makedirs(root, exist_ok=True)
    if os.listdir(root):
        parser.error(f"--output {root} is not empty")
    print(f"Harness overhead: {opts.trials} trials ({DATASET}, test env {TEST_ENV}, trial seed "
          f"{TRIAL_SEED}, {' + '.join(ALGORITHMS)}, hparams seeds 1..{-(-opts.trials // 2)}), "
          f"{opts.steps} steps, checkpoint every {opts.checkpoint_freq}; {opts.slots} slots of "
          f"1 CPU on a {os.cpu_count()}-core machine; {opts.order}; work dir {root}", flush=True)
    runs = {}
    order = ["fishr_tune", "subprocess"]
    if opts.order == "subprocess-first":
        order.reverse()
    for method in order:
        t = time.time()
        runs[method] = run_fishr_tune(opts, root) if method == "fishr_tune" else \
            run_subprocesses(opts, root)
        print(f"  {method} done in {time.time() - t:.1f} s", flush=True)

    ray, sub = runs["fishr_tune"], runs["subprocess"]
    ray_trials, ray_accs = trial_summary(ray["records_dir"])
    sub_trials, sub_accs = trial_summary(sub["records_dir"])
    n, slots = opts.trials, opts.slots
    ray_sum, sub_sum = ray_trials["elapsed_s"].sum(), sub_trials["elapsed_s"].sum()
    ray_window = ray_trials["end"].max() - ray_trials["begin"].min()
    sub_window = sub_trials["end"].max() - sub_trials["begin"].min()

    print()
    print("| method | trials | wall s | sum trial s | overhead s/trial | busy % |")
    print("|---|---|---|---|---|---|")
    print(row("fishr_tune: Ray start + run_sweep", n, ray["wall_s"], ray_sum, slots))
    print(row("fishr_tune: whole process (+ imports, ray.shutdown)", n, ray["process_wall_s"],
              ray_sum, slots))
    print(row("fishr_tune: trial window (first start to last end)", n, ray_window, ray_sum,
              slots))
    print(row("DomainBed-style: 1 process per trial", n, sub["wall_s"], sub_sum, slots))
    print(row("DomainBed-style: trial window (first start to last end)", n, sub_window, sub_sum,
              slots))
    print()
    print(f"wall ratio DomainBed-style / fishr_tune (Ray start + run_sweep): "
          f"{sub['wall_s'] / ray['wall_s']:.2f}x; trial-window ratio "
          f"{sub_window / ray_window:.2f}x; sum-trial-time ratio fishr_tune / DomainBed-style "
          f"{ray_sum / sub_sum:.3f} (above 1: in-trial harness cost or machine noise)")
    to_first = ray_trials["begin"].min() - ray["start"] - ray["ray_init_s"]
    print(f"fishr_tune breakdown: python + imports {ray['import_s']:.1f} s, ray.init "
          f"{ray['ray_init_s']:.1f} s, run_sweep {ray['run_sweep_s']:.1f} s (of which before the "
          f"first trial's training loop {to_first:.1f} s, after the last trial's end "
          f"{ray['end'] - ray_trials['end'].max():.1f} s), ray.shutdown {ray['shutdown_s']:.1f} s")
    print(f"DomainBed-style: first training loop began "
          f"{sub_trials['begin'].min() - sub['start']:.1f} s after launch, last trial's records "
          f"{sub['end'] - sub_trials['end'].max():.1f} s before the batch ended")

    print(marginal_line("fishr_tune", ray_trials, ray["wall_s"], ray_sum, n, slots))
    print(marginal_line("DomainBed-style", sub_trials, sub["wall_s"], sub_sum, n, slots))
    ok_ray = int((ray_trials["status"] == "ok").sum())
    ok_sub = int((sub_trials["status"] == "ok").sum())
    print(f"ok trials: fishr_tune {ok_ray}/{n} (sweep counts {ray['counts']}), DomainBed-style "
          f"{ok_sub}/{n}" + (f"; failures: {sub['failures']}" if sub["failures"] else ""))
    print(compare_accuracies(ray_accs, sub_accs))
    overhead = (ray["wall_s"] * slots - ray_sum) / n
    busy = ray_sum / (ray["wall_s"] * slots)
    print(f"goal (Ray start + run_sweep): overhead {overhead:.3f} s/trial <= {GOAL_OVERHEAD_S}: "
          f"{'MET' if overhead <= GOAL_OVERHEAD_S else 'NOT MET'}; busy {100 * busy:.1f}% >= "
          f"{100 * GOAL_BUSY:.0f}%: {'MET' if busy >= GOAL_BUSY else 'NOT MET'}")
    if opts.output is None:
        shutil.rmtree(root, ignore_errors=True)
    return 0 if ok_ray == ok_sub == n else 1


if __name__ == "__main__":
    sys.exit(main())
