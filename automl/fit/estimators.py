"""scikit-learn estimators around ``fit_best``: ``AutoMLClassifier`` and ``AutoMLRegressor``.

They take ``fit_best``'s parameters, run the search in ``fit``, and delegate prediction to the
refit winner, so they work in ``clone``, ``cross_val_score`` and ``Pipeline``. Unlike
``fit_best`` they write no run directory unless ``save=True``, and, as scikit-learn estimators
do, show no progress unless ``verbose=1``.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils.validation import check_is_fitted

from .api import fit_best

__all__ = ["AutoMLClassifier", "AutoMLRegressor"]


class _AutoMLEstimator(BaseEstimator):
    _task = "auto"

    def __init__(
        self,
        *,
        metric=None,
        time_budget=60.0,
        n_trials=None,
        cv="auto",
        models=None,
        plugins=(),
        seed=0,
        n_jobs=1,
        storage=None,
        path=None,
        test_size=None,
        save=False,
        verbose=0,
        ensemble=True,
    ):
        self.metric = metric
        self.time_budget = time_budget
        self.n_trials = n_trials
        self.cv = cv
        self.models = models
        self.plugins = plugins
        self.seed = seed
        self.n_jobs = n_jobs
        self.storage = storage
        self.path = path
        self.test_size = test_size
        self.save = save
        self.verbose = verbose
        self.ensemble = ensemble

    def fit(self, X, y):
        """Search for the best model on ``X``, ``y``; the result is kept in ``result_``."""
        self.result_ = fit_best(
            X, y, task=self._task, metric=self.metric, time_budget=self.time_budget,
            n_trials=self.n_trials, cv=self.cv, models=self.models, plugins=self.plugins,
            seed=self.seed, n_jobs=self.n_jobs, storage=self.storage, path=self.path,
            test_size=self.test_size, save=self.save, verbose=self.verbose, ensemble=self.ensemble,
        )
        self.n_features_in_ = len(self.result_.manifest["columns"])
        return self

    @property
    def model_(self):
        """The winning pipeline, refit on all the data."""
        check_is_fitted(self, "result_")
        return self.result_.model

    def predict(self, X):
        check_is_fitted(self, "result_")
        return self.result_.predict(X)

    @property
    def leaderboard_(self):
        check_is_fitted(self, "result_")
        return self.result_.leaderboard


class AutoMLClassifier(ClassifierMixin, _AutoMLEstimator):
    """Binary or multiclass classification by AutoML search; parameters as :func:`automl.fit_best`."""

    _task = "classification"

    def fit(self, X, y):
        super().fit(X, y)
        # from the manifest, not the model: unpickling a Keras winner here would import TensorFlow
        self.classes_ = np.asarray(self.result_.manifest["classes"])
        return self

    def predict_proba(self, X):
        check_is_fitted(self, "result_")
        return self.result_.predict_proba(X)


class AutoMLRegressor(RegressorMixin, _AutoMLEstimator):
    """Regression by AutoML search; parameters as :func:`automl.fit_best`."""

    _task = "regression"
