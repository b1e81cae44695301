"""Reads of a record file that a live trial keeps replacing: how many fail, per reader.

    python benchmarks/live_record_reads.py               # 10 s per reader
    python benchmarks/live_record_reads.py --seconds 3

One subprocess rewrites a trial's records file (1 to 40 rows) with ``write_records`` again and
again, as a trial does at every checkpoint but with no training in between. Meanwhile each
reader in turn polls the file (or its folder) for ``--seconds``. The table counts reads and
failed reads, and checks every successful read for one whole version (steps 0..n-1). Failures
come from a rename falling between two opens of the same path, so they depend on timing: what
matters is zero or not zero, side by side in one run.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap
import time

import pyarrow.parquet as pq

from fishr_tune.errors import CLIParser, exit_status
from fishr_tune.records import read_file_table, read_records_table, records_path

COLUMNS = ["status", "step", "env1_in_acc"]

REWRITER = textwrap.dedent("""
    import os, sys
    from fishr_tune.records import write_records
    path, stop, n = sys.argv[1], sys.argv[2], 0
    while not os.path.exists(stop):
        n += 1
        rows = [{"trial_id": "live", "step": s, "status": "running", "env0_in_acc": 0.5,
                 "env1_in_acc": 0.51} for s in range(n % 40 + 1)]
        write_records(rows, path)
        if n == 1:
            print("writing", flush=True)
    print(n)
""")


def readers(path: str, folder: str) -> dict:
    """Name -> a function reading the live file's steps (the ways a user or the engine reads)."""
    return {
        "pq.read_table(file)": lambda: pq.read_table(path, columns=COLUMNS),
        "records.read_file_table(file)": lambda: read_file_table(path, columns=COLUMNS),
        "records.read_records_table(folder)": lambda: read_records_table(folder),
    }


def poll(read, seconds: float) -> tuple[int, int]:
    """Reads and failed reads of ``read`` for ``seconds``; a torn but parsed read counts too."""
    reads = failed = 0
    deadline = time.time() + seconds
    while time.time() < deadline:
        reads += 1
        try:
            steps = read().column("step").to_pylist()
            if steps != list(range(len(steps))):
                failed += 1
        except OSError:
            failed += 1
    return reads, failed


def main(argv=None) -> int:
    """Print the table."""
    p = CLIParser(prog="benchmarks/live_record_reads.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=10.0, help="polling time per reader")
    args = p.parse_args(argv)
    if args.seconds <= 0:
        p.error("--seconds must be > 0")
    with tempfile.TemporaryDirectory() as folder:
        path, stop = records_path(folder, "live"), os.path.join(folder, "stop")
        writer = subprocess.Popen([sys.executable, "-c", REWRITER, path, stop],
                                  stdout=subprocess.PIPE, text=True)
        try:
            assert writer.stdout.readline() == "writing\n"
            rows = [(name, *poll(read, args.seconds))
                    for name, read in readers(path, os.path.join(folder, "records")).items()]
        finally:
            open(stop, "w").close()
            rewrites = int(writer.communicate(timeout=60)[0])
    print(f"{rewrites} rewrites of one record file during {len(rows) * args.seconds:.0f} s\n")
    print("| reader | reads | failed | failed % |")
    print("|---|---|---|---|")
    for name, reads, failed in rows:
        print(f"| `{name}` | {reads} | {failed} | {100 * failed / reads:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(exit_status(main))
