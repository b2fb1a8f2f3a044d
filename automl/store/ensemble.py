"""The weighted ensemble a saved run's model may be: an average of refit pipelines' predictions."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, clone
from sklearn.utils.validation import check_is_fitted

__all__ = ["ENSEMBLE", "WeightedEnsembleClassifier", "WeightedEnsembleRegressor", "make_ensemble", "align_class_columns"]

#: The ensemble's name on the leaderboard and in the manifest (never a plugin's model name).
ENSEMBLE = "ensemble"


def aligned_proba(model, X, classes) -> np.ndarray:
    return align_class_columns(np.asarray(model.predict_proba(X), dtype=np.float64), model.classes_, classes)


def align_class_columns(values: np.ndarray, own, classes) -> np.ndarray:
    """Per-class columns ``values`` (in the order of ``own``) in the order of ``classes``; a
    class that a model never saw (a fold or sample that lacked it) gets a column of zeros."""
    own, classes = list(own), list(classes)
    if values.ndim != 2 or own == classes:
        return values
    aligned = np.zeros((len(values), len(classes)))
    index = {c: j for j, c in enumerate(classes)}
    for j, c in enumerate(own):
        aligned[:, index[c]] = values[:, j]
    return aligned


class _WeightedEnsemble(BaseEstimator):
    """A weighted average of fitted models' predictions; ``fit`` fits a clone of each.

    :param estimators: unfitted estimators (automl's model pipelines).
    :param weights: one non-negative weight per estimator, summing to 1.
    """

    def __init__(self, estimators=None, weights=None):
        self.estimators = estimators
        self.weights = weights

    def fit(self, X, y):
        if not self.estimators or len(self.estimators) != len(self.weights or ()):
            raise ValueError("an ensemble needs one weight per estimator, and at least one estimator")
        self.estimators_ = [clone(e).fit(X, y) for e in self.estimators]
        for attribute in ("n_features_in_", "feature_names_in_"):
            if hasattr(self.estimators_[0], attribute):
                setattr(self, attribute, getattr(self.estimators_[0], attribute))
        return self


class WeightedEnsembleClassifier(ClassifierMixin, _WeightedEnsemble):
    """Averages its members' class probabilities (a class a member never saw counts as 0)."""

    def fit(self, X, y):
        self.classes_ = np.unique(np.asarray(y))
        return super().fit(X, y)

    def predict_proba(self, X) -> np.ndarray:
        check_is_fitted(self, "estimators_")
        classes = list(self.classes_)
        return sum(w * aligned_proba(e, X, classes) for e, w in zip(self.estimators_, self.weights))

    def predict(self, X) -> np.ndarray:
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


class WeightedEnsembleRegressor(RegressorMixin, _WeightedEnsemble):
    """Averages its members' predictions."""

    def predict(self, X) -> np.ndarray:
        check_is_fitted(self, "estimators_")
        return sum(w * np.asarray(e.predict(X), dtype=np.float64) for e, w in zip(self.estimators_, self.weights))


def make_ensemble(task: str, estimators: list, weights: list[float]) -> _WeightedEnsemble:
    """An unfitted weighted ensemble of ``estimators`` for ``task``."""
    cls = WeightedEnsembleRegressor if task == "regression" else WeightedEnsembleClassifier
    return cls(estimators=list(estimators), weights=[float(w) for w in weights])
