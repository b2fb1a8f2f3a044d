"""Wall time of fit_best against its budget when a plugin's fit hangs.

    python -m benchmarks.hanging_plugin [--budget 30]

A plugin whose estimator sleeps for an hour in fit runs beside the built-in models on the
breast-cancer table. The promise: fit_best returns within budget * 1.05 + 5 s, and the other
models still get their trials.
"""

from __future__ import annotations

import argparse
import sys
import time

from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.datasets import load_breast_cancer

import automl


class Hang(ClassifierMixin, BaseEstimator):
    def fit(self, X, y):
        time.sleep(3600)

    def predict(self, X):
        raise AssertionError("never fitted")


@automl.hookimpl
def automl_models():
    return [automl.ModelSpec("hang", {"binary"}, lambda trial, ctx: {}, lambda params, ctx: Hang())]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=30.0)
    args = parser.parse_args()
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    started = time.monotonic()
    result = automl.fit_best(X, y, time_budget=args.budget, plugins=[sys.modules[__name__]], save=False)
    elapsed = time.monotonic() - started
    print(f"budget {args.budget:g} s: fit_best returned after {elapsed:.2f} s "
          f"(promise: {args.budget * 1.05 + 5:.1f} s); winner {result.model_name}")
    print(result.leaderboard[["model", "score", "trials", "complete", "failed", "status"]].to_string(index=False))


if __name__ == "__main__":
    main()
