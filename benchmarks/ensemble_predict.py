"""How a saved ensemble's members predict: in turn, side by side, and as ``_Pacing`` chooses.

    python -m benchmarks.ensemble_predict [--datasets mpg:2,vehicle:0,titanic:0] [--budget 30]

Per dataset and seed (``name:seed``, from benchmarks/data, see suite.json): fit_best on the
harness's seeded 75/25 split (``benchmarks._bench_one.split``) with the budget and that seed (a
30 s search saves an ensemble or a single model depending on timing: the defaults are runs that
saved ensembles in the suite's records), then predict batches of the test rows
(the first 1, 20 and 100 rows, and all of them) with the saved model. Each way starts from a fresh
copy of the model (pickled and read back) and is timed as the median of ``--calls`` calls after
five warm-up calls: "in turn" with the members forced in turn, "side by side" with them forced
side by side (below ``CONCURRENT_ROWS``), "adaptive" as shipped. A second table times the
preprocessing of the test split (one fitted ``TablePreprocessor``, ordinal encoding) with the
categorical levels converted a column at a time, as shipped, and value by value, as before.
Results go to benchmarks/results/ensemble_predict.md. Nothing else should run meanwhile.
"""

from __future__ import annotations

import argparse
import os
import pickle
import platform
import statistics
import time
from pathlib import Path
from unittest import mock

import numpy as np
import pandas as pd

import automl
from automl.data import preprocess
from automl.data.preprocess import TablePreprocessor
from automl.data.schema import infer_schema
from automl.store import ensemble as ensembles
from benchmarks._bench_one import load_suite, split

RESULTS = Path(__file__).resolve().parent / "results"
ROWS = (1, 20, 100, None)  # None: the whole test split
WARM_UP = 5


def _median_ms(predict, X, calls: int) -> float:
    for _ in range(WARM_UP):
        predict(X)
    seconds = []
    for _ in range(calls):
        started = time.perf_counter()
        predict(X)
        seconds.append(time.perf_counter() - started)
    return 1000 * statistics.median(seconds)


def _ways():
    """(name, patches) of the three ways an ensemble's members can be run."""
    return [
        ("in turn", [mock.patch.object(ensembles, "MIN_SIDE_BY_SIDE_SECONDS", float("inf"))]),
        ("side by side", [mock.patch.object(ensembles._Pacing, "side_by_side", lambda self, rows: True),
                          mock.patch.object(ensembles, "MIN_SIDE_BY_SIDE_SECONDS", 0.0)]),
        ("adaptive", []),
    ]


def _member_rows(name: str, entry: dict, seed: int, args) -> list[str]:
    X_train, X_test, y_train, _, _ = split(entry, seed)
    result = automl.fit_best(X_train, y_train, time_budget=args.budget, seed=seed, verbose=0)
    saved = pickle.dumps(result.model)
    method = "predict" if entry["task"] == "regression" else "predict_proba"
    members = ", ".join(type(m.steps[-1][1]).__name__ for m in getattr(result.model, "estimators_", []))
    lines = []
    for rows in sorted({len(X_test) if r is None else min(r, len(X_test)) for r in ROWS}):
        X = X_test.iloc[:rows]
        times = []
        for _, patches in _ways():
            model = pickle.loads(saved)
            for patch in patches:
                patch.start()
            try:
                times.append(_median_ms(getattr(model, method), X, args.calls))
            finally:
                for patch in patches:
                    patch.stop()
        lines.append(f"| {name}:{seed} | {result.model_name} ({members or 'one model'}) | {len(X)} | "
                     + " | ".join(f"{t:.2f}" for t in times) + " |")
    return lines


def _value_by_value(series: pd.Series) -> np.ndarray:
    """The categorical conversion as it was before the column-at-once one."""
    values = series.to_numpy(dtype=object, na_value=None)
    text = np.array([preprocess.level_text(v) for v in values], dtype=object)
    text[pd.isna(values)] = preprocess.MISSING_CATEGORY
    return text


def _preprocessing_row(name: str, entry: dict, args) -> str:
    X_train, X_test, _, _, _ = split(entry, args.seed)
    fitted = TablePreprocessor(infer_schema(X_train), "ordinal").fit(X_train)
    column_at_once = _median_ms(fitted.transform, X_test, args.calls)
    with mock.patch.object(preprocess, "_category_text", _value_by_value):
        value_by_value = _median_ms(fitted.transform, X_test, args.calls)
    categorical = sum(c.kind == "categorical" for c in fitted.columns)
    return f"| {name} | {len(X_test)} | {categorical} | {value_by_value:.2f} | {column_at_once:.2f} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="mpg:2,vehicle:0,titanic:0", help="name:seed, comma-separated")
    parser.add_argument("--preprocessing-datasets", default="adult,diamonds,titanic")
    parser.add_argument("--budget", type=float, default=30.0)
    parser.add_argument("--seed", type=int, default=0, help="the preprocessing tables' split")
    parser.add_argument("--calls", type=int, default=40)
    parser.add_argument("--output", type=Path, default=RESULTS / "ensemble_predict.md")
    args = parser.parse_args()
    suite = load_suite()

    lines = [
        "# An ensemble's members: in turn, side by side, adaptive", "",
        f"`python -m benchmarks.ensemble_predict --datasets {args.datasets} --preprocessing-datasets "
        f"{args.preprocessing_datasets} --budget {args.budget:g} --seed {args.seed} --calls {args.calls}`", "",
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
        f"median ms of {args.calls} calls after {WARM_UP} warm-up calls, each way from a fresh copy of the saved model.", "",
        "| dataset | saved | rows | in turn | side by side | adaptive |", "|---|---|---:|---:|---:|---:|",
    ]
    for item in args.datasets.split(","):
        name, _, seed = item.partition(":")
        lines += _member_rows(name, suite[name], int(seed or 0), args)
    lines += ["", "Preprocessing of the test split (ordinal encoding), median ms:", "",
              "| dataset | rows | categorical columns | value by value | column at once |", "|---|---:|---:|---:|---:|"]
    for name in args.preprocessing_datasets.split(","):
        lines.append(_preprocessing_row(name, suite[name], args))
    args.output.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
