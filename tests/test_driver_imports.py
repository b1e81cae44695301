"""The sweep and chunk drivers never import torch: they plan, validate, check local data folders
and hand out jobs without it (torch loads in the trial workers only). Importing it would cost
every sweep and every chunk driver seconds of start-up (benchmarks/sweep_scale.py, table 1b)."""

import json
import os
import subprocess
import sys

from fishr_tune.datasets import get_spec

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

DRIVER_PATH = r"""
import json, sys
from fishr_tune import run, submit  # both CLIs parse and validate flags without torch
from fishr_tune.sweep.chunk import Ledger, make_searcher, sweep_chunks
from fishr_tune.sweep.driver import check_local_data, prepare
from fishr_tune.sweep.trainable import job_trial_id, sweep_trainable, trial_settings

output, data_dir = sys.argv[1], sys.argv[2]
ids = {}
for search in ("random", "bayes"):
    opts = run.build_parser().parse_args(
        ["--dataset", "colored_digits", "officehome", "--algorithms", "ERM", "Fishr", "IRM",
         "--search", search, "--num-samples", "3", "--trial-seeds", "2", "--test-env-pairs",
         "--data-dir", data_dir, "--output", output, "--name", search])
    config = prepare(run.config_from_args(opts), resume=False)
    check_local_data(config)
    config.save()
    chunks = sweep_chunks(config)
    settings = trial_settings(config)
    searcher = make_searcher(config, chunks[0], settings)
    jobs = [searcher.suggest(f"t{i}")["job"] for i in range(3)]
    from fishr_tune.sweep.plan import Job
    ids[search] = [job_trial_id(Job.from_dict(j), settings) for j in jobs]
Ledger("chunk-00000")
print("RESULT", json.dumps({"torch": "torch" in sys.modules, "ids": ids,
                            "chunks": len(chunks)}))
"""


def test_sweep_and_chunk_drivers_never_import_torch(tmp_path):
    data_dir = tmp_path / "data"
    (data_dir / get_spec("officehome").folder).mkdir(parents=True)
    done = subprocess.run([sys.executable, "-c", DRIVER_PATH, str(tmp_path / "out"),
                           str(data_dir)], capture_output=True, text=True, cwd=ROOT,
                          env=dict(os.environ, PYTHONPATH=ROOT), timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.split("RESULT ", 1)[1])
    assert result["torch"] is False
    # The driver still computed real trial ids (what resume looks records up by).
    for search in ("random", "bayes"):
        ids = result["ids"][search]
        assert len(set(ids)) == 3 and all(len(i) == 16 for i in ids)
