"""Retraining with a warm start against retraining cold, on new data, in the same run.

    python -m benchmarks.warm_start [--datasets phoneme,segmentation] [--budget 40]

Per dataset (from benchmarks/data, see suite.json):
1. the "previous" run: fit_best on a seeded 60 % of the rows, with the budget, saved;
2. the "new" data is all the rows. A cold run and a warm run (warm_start= the previous run)
   each get the same budget and seed, one after the other.
An observer plugin stamps every finished trial with the seconds since its run began, so each
run's best-so-far CV score is known over time. Reported per run: the time to reach the previous
run's CV score and the time to reach the cold run's final score (within 0.1 % of its
magnitude), the final score, and the trials run. Results go to benchmarks/results/warm_start.md.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import tempfile
import time
from pathlib import Path

import pandas as pd

import automl
from automl import hookimpl

DATA = Path(__file__).resolve().parent / "data"
RESULTS = Path(__file__).resolve().parent / "results"
PREVIOUS_SHARE = 0.6
TOLERANCE = 0.001


class _BestOverTime:
    """Observer: (seconds since the run started, best CV score so far) at each finished trial."""

    def __init__(self):
        self.points: list[tuple[float, float]] = []
        self._started = 0.0
        self._best = -math.inf

    @hookimpl
    def automl_run_started(self):
        self._started = time.monotonic()

    @hookimpl
    def automl_trial_completed(self, record):
        if record.score is not None:
            self._best = max(self._best, record.score)
        self.points.append((time.monotonic() - self._started, self._best))

    def time_to_reach(self, score: float) -> float | None:
        margin = TOLERANCE * max(abs(score), 1e-9)
        return next((t for t, best in self.points if best >= score - margin), None)


def _fit(X, y, budget, path, warm_start=None):
    observer = _BestOverTime()
    result = automl.fit_best(X, y, time_budget=budget, seed=0, path=path, warm_start=warm_start, plugins=[observer])
    return result, observer


def _seconds(value: float | None) -> str:
    return "not reached" if value is None else f"{value:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="phoneme,segmentation")
    parser.add_argument("--budget", type=float, default=40.0)
    args = parser.parse_args()
    suite = {entry["name"]: entry for entry in json.loads((DATA / "suite.json").read_text())}

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.datasets.split(","):
            entry = suite[name]
            table = pd.read_csv(DATA / entry["file"])
            y, X = table.pop(entry["target"]), table
            older = X.sample(frac=PREVIOUS_SHARE, random_state=0).index
            previous, _ = _fit(X.loc[older], y.loc[older], args.budget, Path(tmp) / f"{name}-previous")
            cold, cold_curve = _fit(X, y, args.budget, Path(tmp) / f"{name}-cold")
            warm, warm_curve = _fit(X, y, args.budget, Path(tmp) / f"{name}-warm", warm_start=previous.path)
            for label, result, curve in (("cold", cold, cold_curve), ("warm", warm, warm_curve)):
                rows.append({
                    "dataset": name, "rows": len(X), "metric": result.metric, "run": label,
                    "previous_score": previous.score, "final_score": result.score, "model": result.model_name,
                    "to_previous": curve.time_to_reach(previous.score), "to_cold_final": curve.time_to_reach(cold.score),
                    "trials": len(result.trials), "seconds": result.manifest["seconds"],
                })
                print(f"{name} {label}: {result.model_name} {result.score:.4f}, previous score reached at "
                      f"{_seconds(rows[-1]['to_previous'])} s, cold final at {_seconds(rows[-1]['to_cold_final'])} s",
                      flush=True)

    lines = [
        "# Warm-start retraining vs. cold retraining",
        "",
        f"`python -m benchmarks.warm_start --datasets {args.datasets} --budget {args.budget:g}`, "
        f"{time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, Python {platform.python_version()}, all built-in models.",
        "",
        f"The previous run saw a seeded {PREVIOUS_SHARE:.0%} of the rows; cold and warm retrain on all rows with the "
        f"same budget and seed. Times are seconds from the start of the call until the best CV score so far reaches "
        f"the target (within {TOLERANCE:.1%} of its magnitude); they include the worker's start-up and the first trials.",
        "",
        "| dataset | metric | run | final CV score (model) | previous run's score | to previous score, s | to cold final score, s | trials | seconds |",
        "|---|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['dataset']} ({r['rows']:,} rows) | {r['metric']} | {r['run']} | {r['final_score']:.4f} ({r['model']}) "
            f"| {r['previous_score']:.4f} | {_seconds(r['to_previous'])} | {_seconds(r['to_cold_final'])} "
            f"| {r['trials']} | {r['seconds']:.1f} |"
        )
    lines.append("")
    for name in args.datasets.split(","):
        cold, warm = (next(r for r in rows if r["dataset"] == name and r["run"] == k) for k in ("cold", "warm"))
        if cold["to_cold_final"] is not None and warm["to_cold_final"] is not None:
            lines.append(
                f"- {name}: the warm run reached the cold run's final score in {warm['to_cold_final']:.1f} s, "
                f"{warm['to_cold_final'] / cold['to_cold_final']:.0%} of the cold run's {cold['to_cold_final']:.1f} s."
            )
        else:
            lines.append(f"- {name}: the warm run did not reach the cold run's final score within the budget.")
    lines.append("")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "warm_start.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
