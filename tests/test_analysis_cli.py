"""The analysis CLIs on hand-made Parquet sweeps: formats, bad input (one line, exit 2, records
untouched), selected hparams, random-vs-Bayesian comparison, sensitivity, the sweep summary."""

import csv
import hashlib
import io
import json
import os
import types

import numpy as np
import pytest

from analysis import compare, hparams, report, sensitivity
from fishr_tune.records import records_path, write_records


def trial(trial_id, test_env, hparams_seed, trial_index, val, test, search="random",
          trial_seed=0, algorithm="Fishr", lr=1e-3, lam=100.0):
    """One single-test-env ColoredDigits trial of two checkpoints; its best validation is
    ``val`` (step 10), where the test env's in-split accuracy is ``test``."""
    out = []
    for step, v, t in ((0, val / 2, 0.1), (10, val, test)):
        row = {"trial_id": trial_id, "dataset": "ColoredDigits", "algorithm": algorithm,
               "test_envs": [test_env], "hparams_seed": hparams_seed, "trial_seed": trial_seed,
               "seed": 0, "step": step, "status": "ok", "search": search,
               "trial_index": trial_index, "args": "{}",
               "hparams": json.dumps({"lr": lr, "lambda": lam, "ema": 0.95,
                                      "penalty_anneal_iters": 5, "batch_size": 32,
                                      "resnet_dropout": 0.0}, sort_keys=True)}
        for env in range(3):
            row[f"env{env}_in_acc"] = t if env == test_env else 0.5
            row[f"env{env}_out_acc"] = 0.5 if env == test_env else v
        out.append(row)
    return out


def write_sweep(folder, trials):
    for t in trials:
        write_records(t, records_path(str(folder), t[0]["trial_id"]))
    return str(folder)


@pytest.fixture(scope="module")
def sweeps(tmp_path_factory):
    """A random and a Bayesian sweep over the same 6 studies (test env x trial seed), 4 trials
    each: per study, random's best val is 0.60 (3rd trial), Bayes reaches 0.60 + 0.01 * s at
    its 2nd trial (s = study number 1..6), with test accuracy 0.30 vs 0.30 + 0.02 * s."""
    root = tmp_path_factory.mktemp("sweeps")
    rnd, bay = [], []
    s = 0
    for seed in (0, 1):
        for env in range(3):
            s += 1
            for i, (v, t) in enumerate([(.40, .1), (.50, .2), (.60, .3), (.55, .9)]):
                rnd.append(trial(f"r{s}-{i}", env, i + 1, i, v, t, trial_seed=seed,
                                 lr=10 ** -(i + 2), lam=10.0 ** i))
            gain = 0.01 * s
            for i, (v, t) in enumerate([(.45, .1), (.60 + gain, .30 + 2 * gain), (.5, .2),
                                        (.3, .9)]):
                bay.append(trial(f"b{s}-{i}", env, None, i, v, t, search="bayes",
                                 trial_seed=seed))
    return write_sweep(root / "random", rnd), write_sweep(root / "bayes", bay)


def run_cli(main, argv, capsys):
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def digest(folder):
    h = hashlib.md5()
    for dirpath, _, files in sorted(os.walk(folder)):
        for name in sorted(files):
            with open(os.path.join(dirpath, name), "rb") as f:
                h.update(name.encode() + f.read())
    return h.hexdigest()


def test_report_formats(sweeps, capsys):
    rnd, _ = sweeps
    before = digest(rnd)
    code, text, _ = run_cli(report.main, [rnd], capsys)
    assert code == 0 and text.startswith("Total records: 48")
    assert "-------- Dataset: ColoredDigits, model selection method: training-domain " \
           "validation set" in text
    # IID picks the 0.60 trial in every study: test 0.3 for every env and seed.
    assert "Fishr                 30.0 +/- 0.0          30.0 +/- 0.0          30.0 +/- 0.0" \
           "          30.0" in text
    code, md, _ = run_cli(report.main, [rnd, "--format", "markdown", "--selection", "oracle"],
                          capsys)
    assert "| Algorithm | +90% | +80% | -90% | Avg |" in md and "±" in md
    code, tex, _ = run_cli(report.main, [rnd, "--format", "latex", "--selection", "training"],
                           capsys)
    assert "\\toprule" in tex and "30.0 $\\pm$ 0.0" in tex and "\\textbf{+90\\%}" in tex
    assert tex.rstrip().endswith("\\end{document}")
    code, out, _ = run_cli(report.main, [rnd, sweeps[1], "--format", "csv"], capsys)
    rows = list(csv.DictReader(io.StringIO(out)))
    assert list(rows[0]) == ["selection", "dataset", "algorithm", "test_env", "mean", "se",
                             "n_trial_seeds"]
    # 3 methods x (3 envs + dataset Avg + overall Avg) rows for Fishr.
    assert len(rows) == 15
    avg = [r for r in rows if r["selection"] == "training" and r["test_env"] == "Avg"
           and r["dataset"] == "ColoredDigits"][0]
    # Two sweeps pool into the same groups (as DomainBed would): Bayes's better runs win.
    assert float(avg["mean"]) == pytest.approx(30 + 200 * np.mean(0.01 * np.arange(1, 7)))
    assert avg["n_trial_seeds"] == "2"
    assert digest(rnd) == before  # records never modified


def test_report_bad_input_is_one_line_and_exit_2(sweeps, tmp_path, capsys):
    rnd, _ = sweeps
    empty = tmp_path / "empty"
    empty.mkdir()
    corrupt = tmp_path / "corrupt"
    write_sweep(corrupt, [trial("ok", 0, 1, 0, .5, .5)])
    (corrupt / "records" / "bad.parquet").write_bytes(b"not parquet at all")
    foreign = tmp_path / "foreign"
    write_sweep(foreign, [trial("ok", 0, 1, 0, .5, .5)])
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"x": [1, 2]}), str(foreign / "records" / "other.parquet"))
    cases = [([str(tmp_path / "missing")], "does not exist"), ([str(empty)], "no records"),
             ([str(corrupt)], "bad.parquet is not a readable Parquet"),
             ([str(foreign)], "other.parquet is not a fishr_tune record file"),
             ([rnd, "--selection", "best"], "unknown selection"),
             ([rnd, "--format", "html"], "unknown format"),
             ([rnd, "--dataset", "PACS"], "no records of dataset PACS"),
             ([rnd, "--dataset", "nosuch"], "unknown dataset"),
             ([rnd, "--algorithm", "ERM"], "no records of algorithm ERM"),
             ([rnd, "--algorithm", "nosuch"], "unknown algorithm")]
    for argv, message in cases:
        code, out, err = run_cli(report.main, argv, capsys)
        assert code == 2 and message in err and err.count("\n") == 1 and out == "", argv


def test_selected_hparams(sweeps, capsys):
    rnd, _ = sweeps
    code, out, _ = run_cli(hparams.main, [rnd, "--format", "csv", "--test-env", "1",
                                          "--selection", "training"], capsys)
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and len(rows) == 2 and {r["trial_seed"] for r in rows} == {"0", "1"}
    for r in rows:  # the third trial (hparams seed 3, lr 1e-4) at step 10
        assert (r["hparams_seed"], r["step"]) == ("3", "10")
        assert float(r["val_acc"]) == pytest.approx(60) and float(r["test_acc"]) == \
            pytest.approx(30)
        assert json.loads(r["hparams"])["lr"] == pytest.approx(1e-4)
    code, text, _ = run_cli(hparams.main, [rnd, "--test-env", "0"], capsys)
    assert "training-domain validation set | ColoredDigits | Fishr | test env 0" in text
    assert "oracle" in text and "val 60.0, test 30.0" in text
    assert run_cli(hparams.main, [rnd, "--test-env", "3"], capsys)[0] == 2
    assert run_cli(hparams.main, [rnd, "--test-env", "-1"], capsys)[0] == 2


def test_compare_random_with_bayes(sweeps, tmp_path, capsys):
    rnd, bay = sweeps
    from analysis.loading import load_records

    result = compare.compare(load_records(rnd), load_records(bay), budgets=(1, 2, 3))
    assert len(result["shared"]) == 6 and result["full"] == 4
    by_k = {r["budget"]: r for r in result["rows"]}
    gains = 0.01 * np.arange(1, 7)
    # k = 2: random's best is 0.50 (test 0.2); bayes 0.60 + gain (test 0.30 + 2 gain).
    med_a, med_b, gain, se, p = by_k[2]["val"]
    assert med_a == pytest.approx(0.5) and med_b == pytest.approx(np.median(0.6 + gains))
    assert gain == pytest.approx(np.mean(0.1 + gains))
    assert se == pytest.approx(np.std(0.1 + gains, ddof=1) / np.sqrt(6))
    assert p == pytest.approx(0.03125)  # exact two-sided Wilcoxon, 6 positive differences
    # k = 4: random 0.60 (test 0.3), bayes 0.60 + gain (test 0.30 + 2 gain).
    assert by_k[4]["val"][2] == pytest.approx(np.mean(gains))
    assert by_k[4]["test"][2] == pytest.approx(np.mean(2 * gains))
    # Bayes reaches random's best at its 2nd trial; random never reaches Bayes's best.
    assert result["reach"]["second"] == [2] * 6 and result["reach"]["first"] == [None] * 6
    code, out, _ = run_cli(compare.main, [rnd, bay, "--plot", str(tmp_path / "c.png")], capsys)
    assert code == 0 and "| 4 | 60.00 |" in out and "6/6 studies within 4 trials" in out
    assert os.path.getsize(tmp_path / "c.png") > 10000 and os.path.exists(tmp_path / "c.pdf")


def test_compare_needs_a_shared_study(sweeps, tmp_path, capsys):
    other = write_sweep(tmp_path / "other", [trial("x", 0, 1, 0, .5, .5, trial_seed=9)])
    code, _, err = run_cli(compare.main, [sweeps[0], other], capsys)
    assert code == 2 and "no study" in err and err.count("\n") == 1


def test_sensitivity(sweeps, tmp_path, capsys):
    assert ("lambda", True) in sensitivity.numeric_hparams("Fishr", "ColoredDigits")
    assert ("ema", False) in sensitivity.numeric_hparams("Fishr", "ColoredDigits")
    code, out, _ = run_cli(sensitivity.main, [sweeps[0], "--algorithm", "fishr", "--plot",
                                              str(tmp_path / "s.png")], capsys)
    assert code == 0 and "24 trials" in out
    # lr = 10^-(i+2) falls as val rises over trials 0..2, then trial 3 (lr 1e-5, val .55).
    row = [line for line in out.splitlines() if line.startswith("| lr |")][0]
    assert row.split("|")[2].strip() == "log"
    assert os.path.exists(tmp_path / "s.png") and os.path.exists(tmp_path / "s.pdf")
    assert run_cli(sensitivity.main, [sweeps[0], "--algorithm", "ERM"], capsys)[0] == 2


def test_sweep_summary_uses_the_report(sweeps, capsys):
    from analysis.loading import load_records
    from fishr_tune.run import print_summary

    records = load_records(sweeps[0])
    outcome = types.SimpleNamespace(counts={"trials": 24, "ok": 24, "error": 0, "diverged": 0},
                                    wall_time_s=1.0, records_dir="x", records=records)
    print_summary(outcome)
    out = capsys.readouterr().out
    assert report.selection_report(records) in out
