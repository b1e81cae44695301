"""Driver cost of a sweep from 1k to 100k trials: the chunked engine vs the one-Tuner grid.

    python benchmarks/sweep_scale.py                # dry runs + real one-step trials
    python benchmarks/sweep_scale.py --skip-real    # planning/dispatch dry runs only
    python benchmarks/sweep_scale.py --tables 1b 4  # only the real CLI's start and main job

Three tables, each measured side by side in one run:

1. Planning/dispatch dry run of the engine's real code path at 1k, 10k and 100k planned trials
   (no training): the sweep driver's chunk plan (``sweep_chunks``), then for every chunk its
   searcher (``make_searcher``) asked for jobs until it says FINISHED, each job checked against
   the records as a resume does. Each size runs in a fresh process: time to the first job,
   total time, time per trial, peak resident memory.
2. The old engine's cost before its first trial: ``tune.grid_search(jobs)`` over the whole
   job list, expanded by Tune's BasicVariantGenerator (what the old driver did), at 500, 1k and
   2k jobs, extrapolated as a quadratic to 10k and 100k (measuring those would take hours).
   Besides, the real CLI is started with the same plan and timed until its first trial writes
   records (Python start, imports, Ray start, chunk driver, Tuner and actor start included).
3. Real one-step trials on a local Ray: the new engine and the old one (the commit before the
   new engine, checked out into a temporary folder with ``git worktree``), the same sweep:
   wall time, driver overhead per trial, sweep folder bytes per finished trial.
4. The README's main job, ``python -m fishr_tune.run`` (48 embedded trials of 300 steps), on
   both engines one after the other: wall time, the trials' own time, the engine's overhead per
   trial, the mean training step, and the largest accuracy difference between the two engines'
   matching checkpoints (the same trials must give the same numbers).

Absolute times are noisy on a shared machine; compare within a table.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OLD_COMMIT = "9cc8c8a"  # the one-Tuner engine (grid_search, Tune snapshots, kept checkpoints)
STUDIES_PER_SEED = 6  # colored_digits x {ERM, Fishr} x 3 test envs
SAMPLES = 20  # DomainBed's hparams per study


def sizes_config(n_trials: int, output: str, **kw):
    """A sweep of about ``n_trials`` trials on the embedded dataset (20 hparams per study)."""
    from fishr_tune.sweep.config import SweepConfig

    seeds = max(1, round(n_trials / (STUDIES_PER_SEED * SAMPLES)))
    return SweepConfig(datasets=["colored_digits"], algorithms=["ERM", "Fishr"],
                       num_samples=SAMPLES, trial_seeds=seeds, steps=1, checkpoint_freq=1,
                       output=output, name="scale", **kw).resolved()


def dry_run(n_trials: int) -> dict:
    """One size of table 1, in this (fresh) process."""
    start = time.perf_counter()
    from fishr_tune.sweep.chunk import make_searcher, sweep_chunks
    from fishr_tune.sweep.trainable import trial_settings

    imported = time.perf_counter()
    with tempfile.TemporaryDirectory() as output:
        config = sizes_config(n_trials, output)
        settings = trial_settings(config)
        chunks = sweep_chunks(config)
        first, jobs = None, 0
        for chunk in chunks:
            searcher = make_searcher(config, chunk, settings)
            while True:
                suggestion = searcher.suggest(f"t{jobs}")
                if suggestion == "FINISHED":
                    break
                jobs += 1
                if first is None:
                    first = time.perf_counter() - imported
        total = time.perf_counter() - imported
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"planned": len(chunks) and jobs, "chunks": len(chunks), "import_s": imported - start,
            "first_job_s": first, "total_s": total, "us_per_trial": total / jobs * 1e6,
            "peak_rss_mb": peak_mb}


def first_trial_latency(n_trials: int) -> dict:
    """Seconds from starting ``python -m fishr_tune.run`` (``n_trials`` planned one-step trials,
    a fresh local Ray) until Tune has handed the first trials to Ray (the chunk driver's
    ``Ledger.DISPATCHED`` line: trials created, actors requested), and until the first trial
    writes its records (Ray's worker start and the worker's torch import included); then the
    run is killed."""
    import signal
    import threading

    from fishr_tune.sweep.chunk import Ledger

    seeds = max(1, round(n_trials / (STUDIES_PER_SEED * SAMPLES)))
    with tempfile.TemporaryDirectory() as output:
        cmd = [sys.executable, "-m", "fishr_tune.run", "--num-samples", str(SAMPLES),
               "--trial-seeds", str(seeds), "--steps", "1", "--checkpoint-freq", "1",
               "--output", output, "--name", "first", "--num-cpus", "2"]
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                env=dict(os.environ, PYTHONPATH=ROOT), start_new_session=True)
        lines: list[tuple[float, str]] = []

        def read() -> None:  # drained continuously, so the run never blocks on a full pipe
            for line in proc.stdout:
                lines.append((time.perf_counter() - start, line))

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        records = os.path.join(output, "first", "records")
        try:
            while not (os.path.isdir(records) and os.listdir(records)):
                if proc.poll() is not None or time.perf_counter() - start > 600:
                    raise RuntimeError(f"no trial started ({n_trials} planned): "
                                       + "".join(line for _, line in lines[-20:]))
                time.sleep(0.05)
            latency = time.perf_counter() - start
        finally:
            os.killpg(proc.pid, signal.SIGKILL)  # the run's own process group only
            proc.wait()
            reader.join(timeout=10)
    dispatched = next((t for t, line in lines if Ledger.DISPATCHED in line), None)
    return {"planned": seeds * STUDIES_PER_SEED * SAMPLES, "dispatched_s": dispatched,
            "first_trial_s": latency}


def old_grid_cost(n_jobs: int) -> dict:
    """Table 2: the old driver's grid over ``n_jobs`` job dicts, to its first trial."""
    from ray import tune
    from ray.tune.search import BasicVariantGenerator

    from fishr_tune.sweep.plan import plan_studies

    seeds = max(1, round(n_jobs / (STUDIES_PER_SEED * SAMPLES)))
    studies = plan_studies(["ColoredDigits"], ["ERM", "Fishr"], seeds)
    # The old plan's job dicts, exactly as its random_jobs built them.
    jobs = [{"study": s.as_dict(), "hparams_seed": hs, "trial_index": i}
            for s in studies for i, hs in enumerate(range(1, SAMPLES + 1))][:n_jobs]
    tune.register_trainable("f", lambda config: None)
    searcher = BasicVariantGenerator()
    start = time.process_time()
    searcher.add_configurations({"scale": {"run": "f", "config": {"job": tune.grid_search(jobs)},
                                           "num_samples": 1}})
    searcher.next_trial()
    return {"jobs": len(jobs), "cpu_s": time.process_time() - start}


def folder_bytes(path: str) -> int:
    """Apparent size of every file under ``path``."""
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path)
               for f in files)


def real_run(code_root: str, n_trials: int, output: str) -> dict:
    """Table 3: one sweep of ``n_trials`` one-step trials, in a fresh process of ``code_root``."""
    seeds = max(1, round(n_trials / (STUDIES_PER_SEED * 2)))
    script = f"""
import json, resource, sys, time
t0 = time.time()
from fishr_tune.sweep.config import SweepConfig
from fishr_tune.sweep.driver import run_sweep
config = SweepConfig(datasets=["colored_digits"], algorithms=["ERM", "Fishr"], num_samples=2,
                     trial_seeds={seeds}, steps=1, checkpoint_freq=1, output={output!r},
                     name="real")
outcome = run_sweep(config, num_cpus=2)
df = outcome.records
trial_s = float(df.groupby("trial_id")["elapsed_s"].max().sum())
print("RESULT", json.dumps({{"wall_s": time.time() - t0, "trials": int(df["trial_id"].nunique()),
      "ok": outcome.counts["ok"], "sum_trial_s": trial_s,
      "driver_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""
    env = dict(os.environ, PYTHONPATH=code_root)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=env, cwd=code_root, timeout=3600)
    line = [ln for ln in done.stdout.splitlines() if ln.startswith("RESULT ")]
    if not line:
        raise RuntimeError(done.stdout[-2000:] + done.stderr[-2000:])
    result = json.loads(line[0][7:])
    result["bytes_per_trial"] = folder_bytes(os.path.join(output, "real")) / result["trials"]
    # Two slots: the wall time beyond the trials' own time, per trial.
    result["overhead_s_per_trial"] = (result["wall_s"] - result["sum_trial_s"] / 2) / \
        result["trials"]
    return result


def table(rows: list[dict], columns: list[tuple[str, str, str]]) -> str:
    """A Markdown table of ``rows`` (columns: header, key, format)."""
    lines = ["| " + " | ".join(h for h, _, _ in columns) + " |",
             "|" + "---|" * len(columns)]
    for row in rows:
        cells = []
        for _, key, fmt in columns:
            value = row.get(key)
            cells.append("-" if value is None else (fmt.format(value) if fmt else str(value)))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def in_fresh_process(function: str, arg: int) -> dict:
    """Run ``function(arg)`` of this module in a new interpreter (clean peak memory)."""
    code = (f"import json, sys; sys.path.insert(0, {ROOT!r}); "
            f"sys.path.insert(0, {os.path.dirname(os.path.abspath(__file__))!r}); "
            f"import sweep_scale; print('RESULT', json.dumps(sweep_scale.{function}({arg})))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=ROOT), timeout=7200)
    line = [ln for ln in done.stdout.splitlines() if ln.startswith("RESULT ")]
    if not line:
        raise RuntimeError(done.stdout[-2000:] + done.stderr[-2000:])
    return json.loads(line[0][7:])


def dry_tables(opts) -> None:
    """Tables 1 and 2."""
    rows = [dict(in_fresh_process("dry_run", n), size=n) for n in opts.sizes]
    base = rows[0]["us_per_trial"]
    for row in rows:
        row["ratio"] = row["us_per_trial"] / base
    print("## 1. New engine: planning/dispatch dry run (real code path, no training)\n")
    print(table(rows, [("planned trials", "planned", ""), ("chunks", "chunks", ""),
                       ("first job s", "first_job_s", "{:.3f}"), ("total s", "total_s", "{:.2f}"),
                       ("us / trial", "us_per_trial", "{:.0f}"),
                       ("vs smallest", "ratio", "{:.2f}x"),
                       ("peak RSS MB", "peak_rss_mb", "{:.0f}"),
                       ("imports s", "import_s", "{:.1f}")]))

    old = [in_fresh_process("old_grid_cost", n) for n in opts.old_sizes]
    # Quadratic fit through the origin on the measured points: cpu = a n + b n^2.
    import numpy as np

    n = np.array([r["jobs"] for r in old], dtype=float)
    y = np.array([r["cpu_s"] for r in old])
    a, b = np.linalg.lstsq(np.stack([n, n * n], 1), y, rcond=None)[0]
    for size in opts.sizes:
        if size > n.max():
            old.append({"jobs": size, "cpu_s": a * size + b * size * size, "note": "extrapolated"})
    for row in old:
        row.setdefault("note", "measured")
        row["us_per_trial"] = row["cpu_s"] / row["jobs"] * 1e6
    print("\n## 2. Old engine: grid expansion before the first trial (driver CPU)\n")
    print(table(old, [("jobs", "jobs", ""), ("CPU s to first trial", "cpu_s", "{:.1f}"),
                      ("us / trial", "us_per_trial", "{:.0f}"), ("", "note", "")]))


def default_run(code_root: str, output: str) -> dict:
    """Table 4: the README's main job as a user runs it, from ``code_root``."""
    import pandas as pd

    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "fishr_tune.run", "--output", output,
                           "--name", "default"], capture_output=True, text=True, cwd=code_root,
                          env=dict(os.environ, PYTHONPATH=code_root), timeout=3600)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(done.stdout[-2000:] + done.stderr[-2000:])
    df = pd.read_parquet(os.path.join(output, "default", "records"))
    trial_s = float(df.groupby("trial_id")["elapsed_s"].max().sum())
    return {"wall_s": wall, "trials": int(df["trial_id"].nunique()), "sum_trial_s": trial_s,
            "overhead_s_per_trial": (wall - trial_s / 2) / df["trial_id"].nunique(),
            "step_ms": 1000 * float(df["step_time"].mean()), "records": df}


def accuracy_gap(a, b) -> float:
    """Largest |difference| of any env accuracy between matching checkpoints of two sweeps."""
    key = ["algorithm", "trial_seed", "hparams_seed", "step"]
    a = a.assign(envs=a["test_envs"].map(tuple))
    b = b.assign(envs=b["test_envs"].map(tuple))
    accs = [c for c in a.columns if c.endswith("_acc") and c in b.columns]
    both = a.merge(b, on=key + ["envs"], suffixes=("_a", "_b"))
    if len(both) != len(a) or len(a) != len(b):
        raise RuntimeError(f"the two sweeps' checkpoints differ ({len(a)}, {len(b)}, "
                           f"{len(both)} matched)")
    return max(float((both[f"{c}_a"] - both[f"{c}_b"]).abs().max()) for c in accs)


def with_old_engine(body):
    """Run ``body(old_root, tmp)`` with the old engine checked out in a temporary worktree."""
    with tempfile.TemporaryDirectory() as tmp:
        old_root = os.path.join(tmp, "old")
        subprocess.run(["git", "-C", ROOT, "worktree", "add", "--detach", old_root, OLD_COMMIT],
                       check=True, capture_output=True)
        try:
            return body(old_root, tmp)
        finally:
            subprocess.run(["git", "-C", ROOT, "worktree", "remove", "--force", old_root],
                           capture_output=True)


def main() -> None:
    """Run the three tables and print them."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--old-sizes", type=int, nargs="+", default=[500, 1000, 2000])
    parser.add_argument("--real-trials", type=int, nargs="+", default=[24, 48])
    parser.add_argument("--skip-real", action="store_true", help="tables 1 and 2 only")
    parser.add_argument("--skip-dry", action="store_true", help="tables 1b and 3 only")
    parser.add_argument("--tables", nargs="+", default=["1", "2", "1b", "3", "4"],
                        choices=["1", "2", "1b", "3", "4"], help="which tables to measure")
    opts = parser.parse_args()
    tables = set(opts.tables)
    if opts.skip_dry:
        tables -= {"1", "2"}
    if opts.skip_real:
        tables -= {"1b", "3", "4"}

    if tables & {"1", "2"}:
        dry_tables(opts)
    if "1b" in tables:
        latency = [first_trial_latency(n) for n in opts.sizes]
        print("\n## 1b. New engine, real CLI from its start (fresh local Ray, 2 CPUs)\n")
        print(table(latency, [("planned trials", "planned", ""),
                              ("s to first trials handed to Ray", "dispatched_s", "{:.1f}"),
                              ("s to first trial's records", "first_trial_s", "{:.1f}")]))
    if "3" in tables:
        def real_tables(old_root, tmp):
            rows = []
            for n_trials in opts.real_trials:
                for label, root in (("new (chunks)", ROOT), ("old (one Tuner)", old_root)):
                    output = os.path.join(tmp, f"out-{label[:3]}-{n_trials}")
                    rows.append(dict(real_run(root, n_trials, output), engine=label))
                    shutil.rmtree(output, ignore_errors=True)
            return rows

        real = with_old_engine(real_tables)
        print("\n## 3. Real one-step trials, local Ray with 2 CPUs\n")
        print(table(real, [("engine", "engine", ""), ("trials", "trials", ""), ("ok", "ok", ""),
                           ("wall s", "wall_s", "{:.1f}"),
                           ("overhead s / trial", "overhead_s_per_trial", "{:.2f}"),
                           ("driver peak RSS MB", "driver_rss_mb", "{:.0f}"),
                           ("sweep folder bytes / trial", "bytes_per_trial", "{:.0f}")]))
    if "4" in tables:
        def default_tables(old_root, tmp):
            return [dict(default_run(root, os.path.join(tmp, f"default-{label[:3]}")),
                         engine=label)
                    for label, root in (("new (chunks)", ROOT), ("old (one Tuner)", old_root))]

        rows = with_old_engine(default_tables)
        gap = accuracy_gap(rows[0]["records"], rows[1]["records"])
        print("\n## 4. The README's main job, python -m fishr_tune.run (48 trials x 300 steps)\n")
        print(table(rows, [("engine", "engine", ""), ("trials", "trials", ""),
                           ("wall s", "wall_s", "{:.0f}"),
                           ("sum of trial s", "sum_trial_s", "{:.0f}"),
                           ("overhead s / trial", "overhead_s_per_trial", "{:.2f}"),
                           ("mean step ms", "step_ms", "{:.1f}")]))
        print(f"\nlargest accuracy difference between the engines' matching checkpoints: "
              f"{gap:.2g}")

if __name__ == "__main__":
    main()
