"""LightGBM's DART boosting for automl-select: binary, multiclass and regression.

DART drops a random share of the trees built so far while it adds each new one (dropout for
boosting): slower than plain boosting, and a model family that automl's built-in ``lightgbm``
(plain gradient boosting) does not search.

Installed, this module is found through the ``automl.plugins`` entry-point group (see
``pyproject.toml``); ``automl models`` then lists ``lightgbm_dart`` and ``fit_best`` tunes it.
LightGBM itself is imported when a model is built, not when the plugin is loaded, so
``automl models`` stays fast.
"""

from __future__ import annotations

import math
import time

from sklearn.base import BaseEstimator, clone
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted

import automl

__all__ = ["TimeLimitedLGBM", "search_space", "build", "DEFAULT_PARAMS", "automl_models"]
__version__ = "0.2.0"

#: The first trial: LightGBM's defaults with a smaller learning rate, more trees and mild
#: row/column subsampling; a sound model on most tables even when no other trial runs.
DEFAULT_PARAMS = {
    "n_estimators": 200,
    "learning_rate": 0.05,
    "num_leaves": 31,
    "min_child_samples": 20,
    "subsample": 0.8,
    "colsample_bytree": 0.8,
    "reg_lambda": 1.0,
}


def search_space(trial, context):
    """Draw one configuration; the keys are ``LGBMClassifier``/``LGBMRegressor`` arguments."""
    return {
        # fewer, larger steps or more, smaller ones: the two are tuned together
        "n_estimators": trial.suggest_int("n_estimators", 50, 1000, log=True),
        "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.3, log=True),
        "num_leaves": trial.suggest_int("num_leaves", 4, 256, log=True),
        "min_child_samples": trial.suggest_int("min_child_samples", 2, 100, log=True),
        "subsample": trial.suggest_float("subsample", 0.5, 1.0),
        "colsample_bytree": trial.suggest_float("colsample_bytree", 0.3, 1.0),
        "reg_lambda": trial.suggest_float("reg_lambda", 1e-3, 10.0, log=True),
    }


def build(params, context):
    """An unfitted LightGBM model for ``context.task``, stopped in time by ``TimeLimitedLGBM``."""
    from lightgbm import LGBMClassifier, LGBMRegressor

    cls = LGBMRegressor if context.task == "regression" else LGBMClassifier
    booster = cls(
        **params,
        boosting_type="dart",
        subsample_freq=1,  # row subsampling (bagging) only happens with a frequency > 0
        random_state=context.seed,
        n_jobs=context.n_jobs,
        verbose=-1,  # LightGBM prints warnings to stdout by default
    )
    return TimeLimitedLGBM(booster, max_seconds=context.time_limit)


class _Deadline:
    """A LightGBM callback that ends boosting, keeping the trees built, once time is up."""

    order = 100  # after LightGBM's own callbacks

    def __init__(self, seconds: float):
        self.deadline = time.monotonic() + seconds

    def __call__(self, env) -> None:
        if time.monotonic() > self.deadline:
            from lightgbm.callback import EarlyStopException

            # "best iteration" = every iteration so far: prediction uses all trees built
            raise EarlyStopException(env.iteration, env.evaluation_result_list)


class TimeLimitedLGBM(BaseEstimator):
    """Fit a LightGBM estimator, ending boosting early when ``max_seconds`` have passed.

    :param estimator: an unfitted ``LGBMClassifier`` or ``LGBMRegressor``.
    :param max_seconds: seconds ``fit`` may take (the trees built by then are kept), or None
        for all ``n_estimators`` rounds.

    ``n_estimators_`` tells how many boosting rounds were run.
    """

    def __init__(self, estimator=None, max_seconds: float | None = None):
        self.estimator = estimator
        self.max_seconds = max_seconds

    def fit(self, X, y, **fit_params):
        model = clone(self.estimator)
        callbacks = list(fit_params.pop("callbacks", None) or [])
        if self.max_seconds is not None and math.isfinite(self.max_seconds):
            callbacks.append(_Deadline(self.max_seconds))
        model.fit(X, y, callbacks=callbacks, **fit_params)
        self.estimator_ = model
        self.n_estimators_ = model.n_estimators_
        for attribute in ("classes_", "n_classes_", "n_features_in_", "feature_names_in_"):
            if hasattr(model, attribute):
                setattr(self, attribute, getattr(model, attribute))
        return self

    def predict(self, X):
        check_is_fitted(self, "estimator_")
        return self.estimator_.predict(X)

    @available_if(lambda self: hasattr(self.estimator, "predict_proba"))
    def predict_proba(self, X):
        check_is_fitted(self, "estimator_")
        return self.estimator_.predict_proba(X)

    def score(self, X, y, sample_weight=None):
        """Accuracy (classifiers) or R² (regressors), as the wrapped model defines it."""
        check_is_fitted(self, "estimator_")
        return self.estimator_.score(X, y, sample_weight=sample_weight)

    @property
    def feature_importances_(self):
        check_is_fitted(self, "estimator_")
        return self.estimator_.feature_importances_

    def __sklearn_tags__(self):
        # a classifier or a regressor, accepting missing values, as the LightGBM model it wraps
        return self.estimator.__sklearn_tags__()


@automl.hookimpl
def automl_models():
    return [
        automl.ModelSpec(
            name="lightgbm_dart",
            tasks={"binary", "multiclass", "regression"},
            search_space=search_space,
            build=build,
            default_params=DEFAULT_PARAMS,
            preprocessing="ordinal",  # trees need neither scaling nor one-hot columns
            cost=3.0,  # between logistic regression (1) and a random forest (5)
            description="DART boosted trees, dropout for boosting (LightGBM)",
        )
    ]
