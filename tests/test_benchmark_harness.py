"""The benchmark harness (benchmarks/run.py) end to end on one small table of the suite: one
process per framework, the JSONL records, the Markdown summary's numbers, resume, and the
failures it must record (a run killed at its timeout, a framework that is not installed)."""

import importlib.util
import json
import math
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


@pytest.fixture
def summary_module(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT))
    from benchmarks import _summary

    return _summary


def test_suite_run_records_scores_and_summarizes_them(tmp_path):
    done = harness(tmp_path, "--budget", "10", "--frameworks", "automl,rf,const")
    assert done.returncode == 0, done.stderr
    assert "[3/3] penguins const" in done.stderr

    records = read_jsonl(tmp_path / "suite_10s.jsonl")
    assert [r["framework"] for r in records] == ["automl", "rf", "const"]
    for r in records:
        assert r["error"] is None, r["error"]
        assert (r["dataset"], r["task"], r["metric"], r["budget"]) == ("penguins", "multiclass", "neg_log_loss", 10)
        assert (r["n_train"], r["n_test"]) == (258, 86)
        assert r["value"] > 0 and r["score"] == -r["value"]  # log loss, and its greater-is-better score
        assert r["fit_seconds"] >= 0 and r["predict_seconds"] >= 0 and r["wall_seconds"] > r["fit_seconds"]
    assert len({r["split"] for r in records}) == 1, "every framework scored the same test rows"
    automl, rf, const = records
    assert automl["fit_seconds"] <= 10 * 1.05 + 5
    # automl's saved run, loaded in a new process to predict the test split, and its size on disk
    assert automl["fresh_predict_seconds"] > 0 and automl["model_bytes"] > 1000 and automl["warm_predict_seconds"] > 0
    assert "model_bytes" not in rf  # a baseline, not saved
    assert automl["saved"]["model"] and automl["saved"]["predict_ms"] > 0
    assert const["value"] == pytest.approx(1.0492, abs=1e-3)  # the class priors' log loss on this split
    assert rf["value"] < const["value"]

    markdown = (tmp_path / "suite_10s.md").read_text()
    assert markdown == done.stdout
    scores = table(markdown, "Test scores")["penguins"]
    assert scores["rf"].strip("*") == f"{rf['value']:.4g}" and scores["const"] == f"{const['value']:.4g}"
    normalized = table(markdown, "Normalized scores")["penguins"]
    expected = (automl["score"] - const["score"]) / (rf["score"] - const["score"])
    assert (normalized["rf"], normalized["const"]) == ("1.000", "0.000")
    assert normalized["automl"] == f"{expected:.3f}"
    per_framework = table(markdown, "Per framework")
    assert per_framework["rf"]["mean normalized score"] == "1.000 (1 datasets)"
    assert per_framework["const"]["mean normalized score"] == "0.000 (1 datasets)"
    assert per_framework["automl"]["failures"] == "0"
    assert per_framework["automl"]["fit/budget max"] == f"{automl['fit_seconds'] / 10:.2f}"
    prediction = table(markdown, "Prediction of the test split")["penguins"]
    assert prediction["automl size MB"] == f"{automl['model_bytes'] / 1e6:.2f}"
    assert prediction["automl fresh load+predict s"] == f"{automl['fresh_predict_seconds']:.3f}"
    versus = table(markdown, "automl against each framework")
    for other, reference in (("rf", 1.0), ("const", 0.0)):
        counts = [int(versus[other][k]) for k in ("wins", "ties", "losses")]
        assert sum(counts) == 1
        outcome = "ties" if abs(expected - reference) <= 0.005 else "wins" if expected > reference else "losses"
        assert versus[other][outcome] == "1"

    # --resume: nothing left to run, the records stay, the summary is written again
    (tmp_path / "suite_10s.md").unlink()
    again = harness(tmp_path, "--budget", "10", "--frameworks", "automl,rf,const", "--resume")
    assert again.returncode == 0, again.stderr
    assert "resuming: 3 of 3 runs already in" in again.stderr
    assert read_jsonl(tmp_path / "suite_10s.jsonl") == records
    rewritten = (tmp_path / "suite_10s.md").read_text()
    for heading in ("Test scores", "Normalized scores", "Per framework", "automl against each framework"):
        assert table(rewritten, heading) == table(markdown, heading)
    refused = harness(tmp_path, "--budget", "10", "--frameworks", "rf")
    assert refused.returncode == 2 and "pass --resume to continue it or --overwrite" in refused.stderr


def test_timeouts_and_missing_frameworks_are_recorded_as_failures(tmp_path):
    hangs = tmp_path / "hanging-python"
    hangs.write_text("#!/bin/sh\nexec sleep 60\n")
    hangs.chmod(0o755)
    done = harness(tmp_path, "--budget", "5", "--frameworks", "const", "--python", f"const={hangs}", "--timeout", "1")
    assert done.returncode == 0, done.stderr
    if not importlib.util.find_spec("autogluon"):  # and a framework that is not installed, added with --resume
        done = harness(tmp_path, "--budget", "5", "--frameworks", "autogluon", "--resume")
        assert done.returncode == 0, done.stderr

    records = {r["framework"]: r for r in read_jsonl(tmp_path / "suite_5s.jsonl")}
    assert records["const"]["error"] == "timeout: killed after 1 s"
    assert records["const"]["score"] is None and 1 <= records["const"]["wall_seconds"] < 10
    assert records["const"]["interpreter"] == str(hangs)
    if "autogluon" in records:
        assert records["autogluon"]["score"] is None
        assert "autogluon.tabular not importable" in records["autogluon"]["error"]
        assert "--python autogluon=" in records["autogluon"]["error"]
    markdown = (tmp_path / "suite_5s.md").read_text()
    assert "- penguins / const (5 s): timeout: killed after 1 s" in markdown
    assert table(markdown, "Test scores")["penguins"]["const"] == "failed"


def test_normalized_scores_ties_and_failures(summary_module):
    def record(dataset, framework, score, error=None):
        return {"dataset": dataset, "framework": framework, "task": "binary", "metric": "roc_auc", "budget": 60.0,
                "score": score, "value": score, "error": error, "fit_seconds": 30.0, "predict_seconds": 0.1}

    raw = [
        record("a", "automl", 0.9), record("a", "flaml", 0.899), record("a", "rf", 0.9), record("a", "const", 0.5),
        record("b", "automl", 0.7), record("b", "flaml", None, "boom"), record("b", "rf", 0.8), record("b", "const", 0.5),
        record("c", "automl", 0.8), record("c", "flaml", 0.9), record("c", "rf", 0.7), record("c", "const", 0.5),
        record("d", "automl", 0.8), record("d", "flaml", 0.9), record("d", "rf", None, "crashed"), record("d", "const", 0.5),
        record("c", "flaml", 0.6),  # a later record (a rerun with --resume) replaces the earlier one
    ]
    records = summary_module.Records(raw)
    assert records.normalized("a", "flaml", 60.0) == pytest.approx(0.9975)  # within 0.005 of automl's 1: a tie
    assert records.normalized("b", "flaml", 60.0) == 0.0  # failed: counts as the constant predictor
    assert records.normalized("b", "automl", 60.0) == pytest.approx(2 / 3)
    assert records.normalized("c", "flaml", 60.0) == pytest.approx(0.5)
    assert records.normalized("d", "automl", 60.0) is None  # no rf: nothing to normalize by
    assert summary_module.wins_ties_losses(records, "flaml", 60.0) == (2, 1, 0)
    stats = summary_module.framework_stats(records, "flaml", 60.0)
    assert stats["failures"] == 1 and stats["mean_normalized"] == pytest.approx((0.9975 + 0 + 0.5) / 3)
    assert stats["fit_budget_median"] == 0.5
    assert not math.isnan(summary_module.framework_stats(records, "automl", 60.0)["mean_normalized"])
