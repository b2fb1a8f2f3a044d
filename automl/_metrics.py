"""Choosing and checking the metric, and scoring stored predictions with it. Scores follow
scikit-learn: greater is better."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.metrics import get_scorer, get_scorer_names
from sklearn.utils.metaestimators import available_if

from ._exceptions import InputError

__all__ = ["DEFAULT_METRICS", "ReplayClassifier", "ReplayRegressor", "resolve_scorer"]

DEFAULT_METRICS = {
    "binary": "roc_auc",
    "multiclass": "neg_log_loss",
    "regression": "neg_root_mean_squared_error",
}

# scikit-learn scorers that compare numbers, not labels.
_REGRESSION = {
    "explained_variance", "r2", "neg_max_error", "d2_absolute_error_score",
    "neg_mean_absolute_error", "neg_mean_squared_error", "neg_root_mean_squared_error",
    "neg_mean_squared_log_error", "neg_root_mean_squared_log_error",
    "neg_median_absolute_error", "neg_mean_absolute_percentage_error",
    "neg_mean_poisson_deviance", "neg_mean_gamma_deviance",
}
# Label-comparing scorers that are defined for two classes only (no averaging).
_BINARY_ONLY = {
    "roc_auc", "average_precision", "f1", "precision", "recall", "jaccard",
    "positive_likelihood_ratio", "neg_negative_likelihood_ratio",
}
# Clustering scores compare partitions, not predictions: never a sound model-selection metric.
_CLUSTERING = {
    "adjusted_mutual_info_score", "adjusted_rand_score", "completeness_score",
    "fowlkes_mallows_score", "homogeneity_score", "mutual_info_score",
    "normalized_mutual_info_score", "rand_score", "v_measure_score",
}


def resolve_scorer(metric: str | None, task: str):
    """Return ``(metric_name, scorer)`` for ``task``; clear errors for unknown or unsuited names."""
    name = DEFAULT_METRICS[task] if metric is None else metric
    if not isinstance(name, str):
        raise InputError(f"metric must be a scikit-learn scorer name (a string), got {type(name).__name__}")
    valid = [n for n in get_scorer_names() if _suits(n, task)]
    if name not in get_scorer_names():
        raise InputError(f"unknown metric {name!r}; valid metrics for task {task!r}: {', '.join(valid)}")
    if not _suits(name, task):
        raise InputError(
            f"metric {name!r} does not suit task {task!r}; use one of: {', '.join(valid)}"
        )
    return name, get_scorer(name)


def _suits(name: str, task: str) -> bool:
    if name in _CLUSTERING:
        return False
    if task == "regression":
        return name in _REGRESSION
    if name in _REGRESSION:
        return False
    if task == "multiclass":
        return name not in _BINARY_ONLY and not name.endswith("_samples")
    return not name.endswith("_samples")


class Replay(BaseEstimator):
    """Stands in for the fold models when scoring all out-of-fold predictions at once: asked
    about rows (``X`` holds their positions), it answers with what was predicted for them."""

    def __init__(self, predictions=None, scores=None, kind=None):
        self.predictions = predictions
        self.scores = scores
        self.kind = kind

    def predict(self, X):
        return self.predictions[np.asarray(X)[:, 0]]

    @available_if(lambda self: self.kind == "probability")
    def predict_proba(self, X):
        return self.scores[np.asarray(X)[:, 0]]

    @available_if(lambda self: self.kind == "decision")
    def decision_function(self, X):
        return self.scores[np.asarray(X)[:, 0]]


class ReplayClassifier(ClassifierMixin, Replay):
    pass


class ReplayRegressor(RegressorMixin, Replay):
    pass
