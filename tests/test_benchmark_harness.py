"""The fair benchmark harness (benchmarks/run.py) end to end on one small table of the suite: one
process per framework, one JSONL file per framework, the Markdown summary's numbers, resume, the
failures it must record (a run killed at its timeout, a framework that is not installed), and the
rules over seeds: normalized per seed, win/tie/loss, the paired bootstrap interval."""

import importlib.util
import json
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def harness(out: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--datasets", "penguins", "--out", str(out), *args],
        cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False,
    )


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def table(markdown: str, heading: str) -> dict[str, dict[str, str]]:
    """The Markdown table under ``## heading`` as {first cell: {column: cell}}."""
    block = markdown.split(f"## {heading}\n", 1)[1].strip().split("\n\n", 1)[0]
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in block.splitlines()]
    header, body = rows[0], rows[2:]
    return {row[0]: dict(zip(header, row, strict=True)) for row in body}


def test_suite_run_records_scores_and_summarizes_them(tmp_path):
    done = harness(tmp_path, "--budget", "10", "--seeds", "0", "--frameworks", "automl,rf,const")
    assert done.returncode == 0, done.stderr
    assert "[3/3] penguins seed 0 const" in done.stderr

    records = {f: read_jsonl(tmp_path / f"{f}.jsonl") for f in ("automl", "rf", "const")}
    assert all(len(r) == 1 for r in records.values()), "one file per framework, one line per run"
    automl, rf, const = (records[f][0] for f in ("automl", "rf", "const"))
    for r in (automl, rf, const):
        assert r["error"] is None, r["error"]
        assert (r["dataset"], r["task"], r["metric"], r["budget"], r["seed"]) == ("penguins", "multiclass", "neg_log_loss", 10, 0)
        assert (r["n_train"], r["n_test"]) == (258, 86)
        assert r["value"] > 0 and r["score"] == -r["value"]  # log loss, and its greater-is-better score
        assert r["fit_seconds"] >= 0 and r["predict_seconds"] >= 0 and r["wall_seconds"] > r["fit_seconds"]
        assert r["peak_rss_mb"] > 50, "the run's process tree was sampled"
        assert r["startup_seconds"] > 0 and r["n_jobs"] == -1
    assert len({r["split"] for r in (automl, rf, const)}) == 1, "every framework scored the same test rows"
    assert automl["fit_seconds"] <= 10 * 1.05 + 5
    assert automl["fit_total_seconds"] >= automl["fit_seconds"]  # the fit call alone, without the imports
    assert 0 < automl["cores_busy"] <= 2.05 and 0 < rf["cores_busy"] <= 2.05
    # automl's saved run, loaded in a new process to predict the test split, and its size on disk
    assert automl["fresh_predict_seconds"] > 0 and automl["model_bytes"] > 1000 and automl["warm_predict_seconds"] > 0
    assert "model_bytes" not in rf  # a baseline, not saved
    assert automl["saved"]["model"] and automl["saved"]["predict_ms"] > 0
    assert const["value"] == pytest.approx(1.0492, abs=1e-3)  # the class priors' log loss on this split
    assert rf["value"] < const["value"]

    markdown = (tmp_path / "summary_10s.md").read_text()
    assert markdown == done.stdout
    assert "2 cores (every framework on all of them" in markdown and "rf: n_jobs=-1" in markdown
    scores = table(markdown, "Test scores (mean ± sd over seeds)")["penguins"]
    assert scores["rf"] == f"{rf['value']:.4g}" and scores["const"] == f"{const['value']:.4g}"
    normalized = table(markdown, "Normalized scores (mean over seeds; lowest and highest seed)")["penguins"]
    expected = (automl["score"] - const["score"]) / (rf["score"] - const["score"])
    assert (normalized["rf"], normalized["const"]) == ("1.000", "0.000")
    assert normalized["automl"] == f"{expected:.3f}"
    per_framework = table(markdown, "Per framework (medians over runs; cores busy: mean)")
    assert per_framework["rf"]["mean normalized"] == "1.000"
    assert per_framework["automl"]["failures"] == "0"
    assert per_framework["automl"]["fit/budget max"] == f"{automl['fit_seconds'] / 10:.2f}"
    assert per_framework["automl"]["size MB"] == f"{automl['model_bytes'] / 1e6:.2f}"
    assert per_framework["automl"]["cores busy"] == f"{automl['cores_busy']:.2f}"
    versus = table(markdown, "automl against each framework")
    for other, reference in (("rf", 1.0), ("const", 0.0)):
        counts = [int(versus[other][k]) for k in ("wins", "ties", "losses")]
        assert sum(counts) == 1
        outcome = "ties" if abs(expected - reference) <= 0.005 else "wins" if expected > reference else "losses"
        assert versus[other][outcome] == "1"
    assert table(markdown, "What automl saved")["penguins"]["seed 0"].startswith(automl["saved"]["model"])

    # run again: nothing left to run, the records stay, the summary is written again
    (tmp_path / "summary_10s.md").unlink()
    again = harness(tmp_path, "--budget", "10", "--seeds", "0", "--frameworks", "automl,rf,const")
    assert again.returncode == 0, again.stderr
    assert "resuming: 3 of 3 runs already in" in again.stderr
    assert {f: read_jsonl(tmp_path / f"{f}.jsonl") for f in records} == records
    rewritten = (tmp_path / "summary_10s.md").read_text()
    assert rewritten.split("\n", 3)[3] == markdown.split("\n", 3)[3]  # all but the command line
    refused = harness(tmp_path, "--automl-options", '{"portfolio": false}')
    assert refused.returncode == 2 and "name the variant with --variant" in refused.stderr


def test_timeouts_and_missing_frameworks_are_recorded_as_failures(tmp_path):
    hangs = tmp_path / "hanging-python"
    hangs.write_text("#!/bin/sh\nexec sleep 60\n")
    hangs.chmod(0o755)
    done = harness(tmp_path, "--budget", "5", "--seeds", "0", "--frameworks", "const", "--python", f"const={hangs}",
                   "--timeout", "1")
    assert done.returncode == 0, done.stderr
    if not importlib.util.find_spec("autogluon"):  # and a framework that is not installed
        done = harness(tmp_path, "--budget", "5", "--seeds", "0", "--frameworks", "autogluon")
        assert done.returncode == 0, done.stderr

    const = read_jsonl(tmp_path / "const.jsonl")[0]
    assert const["error"] == "timeout: killed after 1 s"
    assert const["score"] is None and 1 <= const["wall_seconds"] < 10
    assert const["interpreter"] == str(hangs)
    if (tmp_path / "autogluon.jsonl").exists():
        autogluon = read_jsonl(tmp_path / "autogluon.jsonl")[0]
        assert autogluon["score"] is None
        assert "autogluon.tabular not importable" in autogluon["error"]
        assert "--python autogluon=" in autogluon["error"]
    markdown = (tmp_path / "summary_5s.md").read_text()
    assert "- penguins / const / seed 0 (5 s): timeout: killed after 1 s" in markdown
    assert table(markdown, "Test scores (mean ± sd over seeds)")["penguins"]["const"] == "failed"


@pytest.fixture
def records_module(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT))
    from benchmarks import _records

    return _records


def _record(dataset, framework, seed, score, error=None, variant=None):
    r = {"dataset": dataset, "framework": framework, "task": "binary", "metric": "roc_auc", "budget": 60.0,
         "seed": seed, "score": score, "value": score, "error": error, "fit_seconds": 30.0, "predict_seconds": 0.1}
    return r | ({"variant": variant} if variant else {})


def test_normalized_per_seed_and_the_win_tie_loss_rule(records_module):
    raw = []
    for seed in (0, 1, 2):
        raw += [_record(d, "rf", seed, 0.8) for d in "abcd"] + [_record(d, "const", seed, 0.5) for d in "abcd"]
    # a: automl ahead on 2 of 3 seeds by 0.1 normalized, behind on one by 0.03: a win
    raw += [_record("a", "automl", s, v) for s, v in ((0, 0.83), (1, 0.83), (2, 0.791))]
    raw += [_record("a", "flaml", s, 0.8) for s in (0, 1, 2)]
    # b: a mean ahead by more than the margin, but behind on 2 of 3 seeds: a tie
    raw += [_record("b", "automl", s, v) for s, v in ((0, 0.89), (1, 0.799), (2, 0.799))]
    raw += [_record("b", "flaml", s, 0.8) for s in (0, 1, 2)]
    # c: behind on every seed: a loss; a failed seed counts as const (normalized 0)
    raw += [_record("c", "automl", s, 0.7) for s in (0, 1)] + [_record("c", "automl", 2, None, "boom")]
    raw += [_record("c", "flaml", s, 0.8) for s in (0, 1, 2)]
    # d: rf failed on seed 2: that seed has no normalized scores, the other two decide
    raw[raw.index(_record("d", "rf", 2, 0.8))] = _record("d", "rf", 2, None, "crashed")
    raw += [_record("d", "automl", s, 0.8) for s in (0, 1, 2)] + [_record("d", "flaml", s, 0.8) for s in (0, 1, 2)]
    raw += [_record("a", "automl", 0, 0.5, variant="slow")]  # a variant: a column of its own

    records = records_module.Records(raw)
    assert records.normalized("a", "automl", 60.0, 0) == pytest.approx(1.1)
    assert records.normalized("c", "automl", 60.0, 2) == 0.0
    assert records.seed_scores("d", "automl", 60.0) == {0: 1.0, 1: 1.0}
    assert records.normalized("a", "automl@slow", 60.0, 0) == 0.0
    outcome = {r.dataset: r.outcome for r in records_module.duels(records, "automl", "flaml", 60.0)}
    assert outcome == {"a": "win", "b": "tie", "c": "loss", "d": "tie"}
    tally = records_module.tally(records_module.duels(records, "automl", "flaml", 60.0))
    assert (tally["win"], tally["tie"], tally["loss"]) == (1, 2, 1)
    low, high = tally["interval"]
    assert low <= tally["mean_d"] <= high
    assert records.seed_spread("flaml", 60.0) == (1.0, 1.0)
    assert records.suite_mean("automl", 60.0) == pytest.approx(statistics.fmean(
        statistics.fmean(records.seed_scores(d, "automl", 60.0).values()) for d in "abcd"))


def test_bootstrap_interval_is_seeded_and_covers_the_mean(records_module):
    values = [0.01, -0.02, 0.03, 0.0, 0.05, -0.01]
    first = records_module.bootstrap_interval(values)
    assert first == records_module.bootstrap_interval(values)
    assert first[0] < statistics.fmean(values) < first[1]
    assert records_module.bootstrap_interval([0.02] * 5) == pytest.approx((0.02, 0.02))


def test_a_short_run_is_compared_with_the_peers_longer_runs(records_module, tmp_path):
    """automl at 15 s against FLAML at 15 s in the main table, and against FLAML at 60 s in its own."""
    from benchmarks._summary import suite_markdown

    files = records_module.RunFiles(tmp_path)
    for seed in (0, 1, 2):
        for dataset in "ab":
            for framework, score, budget in (("rf", 0.8, 60.0), ("const", 0.5, 60.0), ("automl", 0.83, 15.0),
                                             ("flaml", 0.8, 15.0), ("flaml", 0.86, 60.0)):
                files.append(_record(dataset, framework, seed, score) | {"budget": budget})
    markdown = suite_markdown(files, 15.0, None, "cmd", "env")
    assert table(markdown, "automl against each framework")["flaml"]["wins"] == "2"
    longer = table(markdown, "automl at 15 s against the peers at other budgets")
    assert set(longer) == {"flaml at 60 s"}
    row = longer["flaml at 60 s"]
    assert (row["datasets"], row["losses"], row["automl mean"], row["peer mean"]) == ("2", "2", "1.100", "1.200")
    assert float(row["mean d"]) == pytest.approx(-0.1)
