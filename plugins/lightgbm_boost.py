"""LightGBM gradient-boosted trees for every task, built in.

Each fit holds out a seeded tenth of its rows (stratified for classification) and stops boosting
when their loss has not improved for ``EARLY_STOPPING_ROUNDS`` rounds, so ``n_estimators`` is a
cap rather than a guess; a callback ends boosting when ``ModelContext.time_limit`` runs out,
keeping the trees built. LightGBM is imported when a model is built, not when the plugin loads.
The search space follows the ranges that tuned-GBDT studies draw from (FLAML's, AutoGluon's and
Optuna's LightGBM tuner): leaves, learning rate, leaf size, column and row subsampling, L1 and L2.
"""

from __future__ import annotations

import math
import time

import numpy as np
from sklearn.base import clone, is_classifier
from sklearn.model_selection import train_test_split
from sklearn.utils.validation import _num_samples

import automl
from automl.plugins._anytime import TimeLimitedEnsemble

__all__ = ["EarlyStoppedLGBM", "automl_models"]

#: Boosting stops once the held-out rows' loss has not improved for this many rounds.
EARLY_STOPPING_ROUNDS = 50
#: The share of a fit's rows held out for early stopping...
VALIDATION_FRACTION = 0.1
#: ...when it has at least this many rows; a smaller fit boosts all ``n_estimators`` rounds.
MIN_ROWS_FOR_EARLY_STOPPING = 500
#: One OpenMP thread per this many rows, up to ``ModelContext.n_jobs`` (as for the boosting built-in).
ROWS_PER_THREAD = 10_000

#: The first trial: a smaller learning rate than LightGBM's default with early stopping, light
#: column subsampling; sound on most tables when no other trial runs.
DEFAULT_PARAMS = {
    "n_estimators": 1000, "learning_rate": 0.05, "num_leaves": 31, "min_child_samples": 20,
    "colsample_bytree": 0.9, "subsample": 1.0, "reg_alpha": 1e-3, "reg_lambda": 1e-3,
}


def _search_space(trial, context):
    return {
        "n_estimators": trial.suggest_int("n_estimators", 50, 2000, log=True),
        "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.3, log=True),
        "num_leaves": trial.suggest_int("num_leaves", 4, 256, log=True),
        "min_child_samples": trial.suggest_int("min_child_samples", 2, 100, log=True),
        "colsample_bytree": trial.suggest_float("colsample_bytree", 0.4, 1.0),
        "subsample": trial.suggest_float("subsample", 0.5, 1.0),
        "reg_alpha": trial.suggest_float("reg_alpha", 1e-3, 10.0, log=True),
        "reg_lambda": trial.suggest_float("reg_lambda", 1e-3, 10.0, log=True),
    }


def _build(params, context):
    from lightgbm import LGBMClassifier, LGBMRegressor

    cls = LGBMRegressor if context.task == "regression" else LGBMClassifier
    booster = cls(
        **params,
        subsample_freq=1,  # row subsampling (bagging) only happens with a frequency above 0
        random_state=context.seed,
        n_jobs=max(1, min(context.n_jobs, context.n_samples // ROWS_PER_THREAD)),
        deterministic=True, force_row_wise=True,  # the same trees for the same seed, every run
        verbose=-1,  # LightGBM prints warnings to standard output otherwise
    )
    return EarlyStoppedLGBM(booster, max_seconds=context.time_limit)


class _Deadline:
    """A LightGBM callback that ends boosting, keeping the trees built, once time is up."""

    order = 100  # after LightGBM's own callbacks

    def __init__(self, seconds: float):
        self.deadline = time.monotonic() + seconds

    def __call__(self, env) -> None:
        if time.monotonic() > self.deadline:
            from lightgbm.callback import EarlyStopException

            # every tree built so far is kept (with early stopping: at most its patience past the best)
            raise EarlyStopException(env.iteration, env.evaluation_result_list)


class EarlyStoppedLGBM(TimeLimitedEnsemble):
    """Fit a LightGBM estimator with early stopping on a held-out slice of the rows it is given,
    ending boosting early when ``max_seconds`` have passed. Predictions, scores and tags are the
    wrapped model's, as for the other time-limited tree models (``automl.plugins._anytime``).

    :param estimator: an unfitted ``LGBMClassifier`` or ``LGBMRegressor``; its ``random_state``
        also seeds the held-out slice.
    :param max_seconds: seconds ``fit`` may take (the trees built by then are kept), or None.

    ``n_estimators_`` tells how many boosting rounds the model uses.
    """

    @staticmethod
    def _grown(model) -> int:
        return model.best_iteration_ or model.n_estimators_

    def _fit(self, X, y, **fit_params):
        from lightgbm import early_stopping

        model = clone(self.estimator)
        callbacks = list(fit_params.pop("callbacks", None) or [])
        if self.max_seconds is not None and math.isfinite(self.max_seconds):
            callbacks.append(_Deadline(self.max_seconds))
        held_out = self._held_out(X, y)
        if held_out is not None:
            X, X_valid, y, y_valid = held_out
            fit_params["eval_set"] = [(X_valid, y_valid)]
            callbacks.append(early_stopping(EARLY_STOPPING_ROUNDS, first_metric_only=True, verbose=False))
        model.fit(X, y, callbacks=callbacks, **fit_params)
        self._adopt(model)

    def _held_out(self, X, y):
        """The rows split for early stopping, or None: too few rows, or a class too rare to split."""
        if y is None or _num_samples(y) < MIN_ROWS_FOR_EARLY_STOPPING:
            return None  # no target: let LightGBM say so
        stratify = None
        if is_classifier(self.estimator):
            _, counts = np.unique(np.asarray(y), return_counts=True)
            if counts.min() * VALIDATION_FRACTION < 1:
                return None  # a class would be missing from one side
            stratify = y
        seed = self.estimator.get_params().get("random_state")
        return train_test_split(X, y, test_size=VALIDATION_FRACTION, random_state=seed, stratify=stratify)


@automl.hookimpl
def automl_models():
    return [
        automl.ModelSpec(
            name="lightgbm",
            tasks={"binary", "multiclass", "regression"},
            search_space=_search_space,
            build=_build,
            default_params=DEFAULT_PARAMS,
            preprocessing="ordinal",  # trees need neither scaling nor one-hot columns
            cost=3.0,  # as histogram gradient boosting
            description="gradient-boosted trees with early stopping (LightGBM)",
        )
    ]
