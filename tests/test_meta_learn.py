"""The offline meta-learning of the portfolio: the score matrix on a corpus (resumable), and the
greedy portfolio chosen from it, which fit_best then starts from."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes, make_classification

import automl
from automl.search.portfolio import Portfolio

ROOT = Path(__file__).resolve().parent.parent
MODELS = "logistic_regression,ridge,random_forest"


@pytest.fixture
def benchmarks(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT))
    from benchmarks import meta_learn, portfolio

    return meta_learn, portfolio


def _corpus(folder: Path) -> Path:
    """Three small tables in the suite's format: two binary, one regression."""
    folder.mkdir()
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    tables = {"cancer": (X.iloc[:, :8].assign(target=y), "binary")}
    Xs, ys = make_classification(n_samples=300, n_features=6, random_state=0)
    tables["synthetic"] = (pd.DataFrame(Xs, columns=[f"f{i}" for i in range(6)]).assign(target=ys), "binary")
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    tables["diabetes"] = (X.assign(target=y), "regression")
    suite = []
    for name, (frame, task) in tables.items():
        frame.to_csv(folder / f"{name}.csv.gz", index=False)
        metric = "roc_auc" if task == "binary" else "neg_root_mean_squared_error"
        suite.append({"name": name, "file": f"{name}.csv.gz", "target": "target", "task": task, "metric": metric,
                      "rows": len(frame), "features": frame.shape[1] - 1, "source": "scikit-learn"})
    (folder / "suite.json").write_text(json.dumps(suite))
    return folder


def _module(name: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", f"benchmarks.{name}", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)


def test_scores_every_candidate_resumes_and_chooses_a_portfolio_fit_best_uses(tmp_path, benchmarks):
    corpus, out = _corpus(tmp_path / "corpus"), tmp_path / "meta"
    done = _module("meta_learn", "--corpus", str(corpus), "--out", str(out), "--models", MODELS, "--candidates", "2")
    assert done.returncode == 0, done.stderr
    candidates = json.loads((out / "candidates.json").read_text())
    assert sorted(candidates) == ["binary", "regression"]
    assert sorted(candidates["binary"]) == ["logistic_regression", "random_forest"]
    assert candidates["binary"]["logistic_regression"][0] == {"C": 1.0, "class_weight": None}, "the default first"
    assert all(len(v) == 3 for task in candidates.values() for v in task.values())
    scores = [json.loads(line) for line in (out / "scores.jsonl").read_text().splitlines()]
    assert len(scores) == 2 * 6 + 1 * 6  # each binary table x 2 models x 3, the regression x 2 models x 3
    assert all(r["error"] is None and r["fit_seconds"] > 0 and r["predict_ms_per_1000"] > 0 for r in scores)
    binary = [r for r in scores if r["task"] == "binary"]
    assert all(0.5 < r["score"] <= 1 for r in binary) and {r["metric"] for r in binary} == {"roc_auc"}
    with (out / "scores.jsonl").open("a") as sink:
        sink.write('{"dataset": "cancer", "mod')  # a line cut short by a kill
    again = _module("meta_learn", "--corpus", str(corpus), "--out", str(out), "--models", MODELS, "--candidates", "2")
    assert again.returncode == 0, again.stderr
    assert "skipping a damaged line" in again.stderr
    meta_learn, _ = benchmarks
    assert meta_learn.read_scores(out / "scores.jsonl") == scores, "resumed: nothing ran twice, the damaged line left out"

    written = tmp_path / "portfolio.json"
    chosen = _module("portfolio", "--scores", str(out), "--size", "3", "--folds", "2", "--write", str(written))
    assert chosen.returncode == 0, chosen.stderr
    portfolio = Portfolio.resolve(written)
    assert portfolio.provenance["tables"] == {"binary": 2, "regression": 1} and "benchmarks.portfolio" in portfolio.provenance["command"]
    # each model's defaults first (2 models), then 3 learned entries
    assert [len(portfolio.tasks[t]) for t in ("binary", "regression")] == [5, 5]
    first_two = {model: params for model, params in portfolio.tasks["binary"][:2]}
    assert first_two == {m: drawn[0] for m, drawn in candidates["binary"].items()}
    assert all(params not in [p for _, p in portfolio.tasks["binary"][:2]] for _, params in portfolio.tasks["binary"][2:])
    assert "## binary: 2 datasets" in (out / "portfolio.md").read_text()
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    result = automl.fit_best(X, y, models=["logistic_regression", "random_forest"], n_trials=2, cv=3,
                             time_budget=None, save=False, verbose=0, portfolio=written)
    assert result.manifest["portfolio"]["entries"] == 5


def test_greedy_adds_the_largest_gain_per_cost_and_breaks_near_ties_by_cost(benchmarks):
    _, portfolio = benchmarks
    values = np.array([[1.0, 0.0, 0.5], [0.0, 1.0, 0.5]])
    order = portfolio.greedy(values, cost=np.array([3.0, 2.0, 1.0]), size=3)
    assert order == [2, 1, 0]  # the same gain at a third of the cost first; then gain per cost
    assert portfolio.curve(values, order) == [0.5, 0.75, 1.0]
    assert portfolio.greedy(values, cost=np.array([1.0, 1.0, 1.0]), size=2) == [0, 1], "equal: the first"
    gains = np.array([[1.0, 0.0, 0.9], [1.0, 0.0, 0.9]])
    assert portfolio.greedy(gains, cost=np.array([1.05, 1.0, 1.0]), size=1) == [0], "more gain for a little more cost"
    assert portfolio.greedy(gains, cost=np.array([5.0, 1.0, 1.0]), size=1) == [2], "nearly as much for a fifth"
    assert portfolio.greedy(gains, cost=np.array([5.0, 1.0, 1.0]), size=3) == [2, 0, 1], "then the cheapest"
    spent = portfolio.OVERHEAD
    assert portfolio.curve_by_cost(gains, [2, 0], np.array([5.0, 1.0, 1.0]), budgets=(0.5, 1 + spent, 7.0)) == [
        0.0, 0.9, 1.0]


def test_normalized_scores_are_best_one_median_zero_failures_zero(benchmarks):
    _, portfolio = benchmarks
    scores = np.array([[0.9, 0.8, 0.7, np.nan], [-3.0, -1.0, -2.0, -2.0]])
    values = portfolio._normalized(scores)
    np.testing.assert_allclose(values[0], [1.0, 0.0, 0.0, 0.0])
    np.testing.assert_allclose(values[1], [0.0, 1.0, 0.0, 0.0])


def test_held_out_tables_are_a_seeded_draw_per_task(benchmarks):
    meta_learn, _ = benchmarks
    entries = [{"name": f"{task}{i}", "task": task} for task in ("binary", "regression") for i in range(20)]
    aside = meta_learn.held_out(entries)
    assert aside == meta_learn.held_out(list(reversed(entries)))
    assert sum(n.startswith("binary") for n in aside) == 3 and len(aside) == 6
    assert meta_learn.held_out(entries[:2]) == set(), "a corpus of two tables keeps both"
