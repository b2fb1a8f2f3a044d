"""LightGBM gradient-boosted trees for every task, built in.

Each fit holds out a seeded tenth of its rows (stratified for classification) and stops boosting
when their loss has not improved for ``EARLY_STOPPING_ROUNDS`` rounds, so ``n_estimators`` is a
cap rather than a guess; a callback ends boosting when ``ModelContext.time_limit`` runs out,
keeping the trees built. LightGBM is imported when a model is built, not when the plugin loads.
The search space follows the ranges that tuned-GBDT studies draw from (FLAML's, AutoGluon's and
Optuna's LightGBM tuner): leaves, learning rate, leaf size, column and row subsampling, L1 and L2.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.base import is_classifier
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted

from automl.plugins._anytime import prediction_threads
from automl.plugins._boosting import (
    EARLY_STOPPING_ROUNDS,
    MIN_ROWS_FOR_EARLY_STOPPING,
    VALIDATION_FRACTION,
    Deadline,
    EarlyStoppedBoosting,
    boosting_spec,
    threads,
)

import automl

__all__ = ["DEFAULT_PARAMS", "MIN_ROWS_FOR_EARLY_STOPPING", "VALIDATION_FRACTION", "EarlyStoppedLGBM", "automl_models"]

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
        n_jobs=threads(context),
        deterministic=True, force_row_wise=True,  # the same trees for the same seed, every run
        verbose=-1,  # LightGBM prints warnings to standard output otherwise
    )
    return EarlyStoppedLGBM(booster, max_seconds=context.time_limit)


class _Deadline:
    """A LightGBM callback that ends boosting, keeping the trees built, once time is up."""

    order = 100  # after LightGBM's own callbacks

    def __init__(self, deadline: Deadline):
        self.deadline = deadline

    def __call__(self, env) -> None:
        if self.deadline.passed():
            from lightgbm.callback import EarlyStopException

            # every tree built so far is kept (with early stopping: at most its patience past the best)
            raise EarlyStopException(env.iteration, env.evaluation_result_list)


class EarlyStoppedLGBM(EarlyStoppedBoosting):
    """Fit a LightGBM estimator with early stopping on a held-out slice of the rows it is given,
    ending boosting early when ``max_seconds`` have passed (``automl.plugins._boosting``).

    :param estimator: an unfitted ``LGBMClassifier`` or ``LGBMRegressor``; its ``random_state``
        also seeds the held-out slice.
    :param max_seconds: seconds ``fit`` may take (the trees built by then are kept), or None.

    ``n_estimators_`` tells how many boosting rounds the model uses.
    """

    @staticmethod
    def _grown(model) -> int:
        return model.best_iteration_ or model.n_estimators_

    def predict(self, X):
        values = self._booster_values(X)
        if values is None:
            return super().predict(X)
        if not is_classifier(self.estimator_):
            return values
        return self.classes_.take(np.argmax(self._probabilities(values), axis=1), axis=0)

    @available_if(lambda self: is_classifier(self.estimator))
    def predict_proba(self, X):
        values = self._booster_values(X)
        return super().predict_proba(X) if values is None else self._probabilities(values)

    def _booster_values(self, X):
        """The booster's own prediction of ``X`` (a regression's values, a binary model's
        positive-class probability, a multiclass model's probabilities), on ``prediction_threads``
        threads; None when ``X`` is not a 2-D float array of the fitted width (the wrapper then
        checks and converts it, and raises what it raises).

        The same numbers as the scikit-learn wrapper's prediction, which calls the same booster
        (with its best iteration), without the wrapper's input checks and parameter copies: on
        100 rows those are 0.4 to 2 ms, a fifth to a half of the whole prediction.
        """
        check_is_fitted(self, "estimator_")
        if not (isinstance(X, np.ndarray) and X.ndim == 2 and X.dtype.kind == "f"):
            return None
        if X.shape[1] != self.estimator_.n_features_in_ or X.shape[0] == 0:
            return None
        return self.estimator_.booster_.predict(X, num_threads=prediction_threads(X.shape[0]))

    @staticmethod
    def _probabilities(values: np.ndarray) -> np.ndarray:
        return values if values.ndim == 2 else np.column_stack((1.0 - values, values))

    def _boost(self, model, X, y, *, held_out, deadline, **fit_params) -> None:
        from lightgbm import early_stopping

        callbacks = self._callbacks(fit_params, deadline, _Deadline)
        if held_out is not None:
            X, X_valid, y, y_valid = held_out
            fit_params["eval_set"] = [(X_valid, y_valid)]
            callbacks.append(early_stopping(EARLY_STOPPING_ROUNDS, first_metric_only=True, verbose=False))
        with warnings.catch_warnings():
            # LightGBM 4.7 deprecates eval_set for eval_X / eval_y, but its classifier does not
            # label-encode eval_y (lightgbm-org/LightGBM#7400): early stopping would score the
            # held-out rows against the wrong labels. eval_set stays until that is fixed.
            warnings.filterwarnings("ignore", message="The argument 'eval_set' is deprecated", category=FutureWarning)
            model.fit(X, y, callbacks=callbacks, **fit_params)


@automl.hookimpl
def automl_models():
    return [boosting_spec(
        "lightgbm", search_space=_search_space, build=_build, defaults=DEFAULT_PARAMS,
        cost=3.0,  # as histogram gradient boosting
        description="gradient-boosted trees with early stopping (LightGBM)",
    )]
