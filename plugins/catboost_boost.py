"""CatBoost gradient-boosted (oblivious) trees for every task, built in behind the ``boost`` extra.

Found when CatBoost is installed (``pip install 'automl-select[boost]'``); otherwise ``automl
models`` lists it as not installed and ``fit_best`` leaves it out. CatBoost is imported when a
model is fitted, never when the plugin loads.

Each fit holds out a seeded tenth of its rows (stratified for classification) and stops when
their loss has not improved for ``EARLY_STOPPING_ROUNDS`` rounds, keeping the best iteration, so
``iterations`` is a cap; a callback ends boosting when ``ModelContext.time_limit`` runs out,
keeping the trees built. CatBoost writes no ``catboost_info/`` folder and prints nothing.

The search space is the one CatBoost's authors tuned (Prokhorenkova et al., "CatBoost: unbiased
boosting with categorical features", 2018, appendix) and Grinsztajn et al. (2022) reuse: depth,
learning rate, L2 leaf regularization, Bayesian bagging temperature, split-score randomness.

Categories arrive ordinal-coded, as for the other trees, and CatBoost splits on the codes as on
numbers: the estimator is handed one float matrix and is not told which of its columns were
categories (their positions depend on each fold's missing-value indicators).
"""

from __future__ import annotations

import numpy as np
from automl.plugins._boosting import (
    EARLY_STOPPING_ROUNDS,
    EarlyStoppedBoosting,
    boosting_spec,
    threads,
)
from sklearn.base import is_classifier
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

import automl

__all__ = ["DEFAULT_PARAMS", "EarlyStoppedCatBoost", "automl_models"]

#: The first trial: CatBoost's own defaults (depth 6, L2 3, Bayesian bagging at temperature 1,
#: random strength 1) with a fixed learning rate that suits a cap of 500 early-stopped rounds.
#: A round costs about leaves x columns x borders, however few the rows: on 142 rows x 30
#: columns with one thread, 1,000 rounds took 1.4 s at depth 4, 3.9 s at 6, 13 s at 8, 38 s at 10.
DEFAULT_PARAMS = {
    "iterations": 500, "learning_rate": 0.08, "depth": 6, "l2_leaf_reg": 3.0,
    "bagging_temperature": 1.0, "random_strength": 1.0,
}


def _search_space(trial, context):
    return {
        "iterations": trial.suggest_int("iterations", 50, 1000, log=True),
        "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.3, log=True),
        "depth": trial.suggest_int("depth", 4, 10),
        "l2_leaf_reg": trial.suggest_float("l2_leaf_reg", 1.0, 10.0, log=True),
        "bagging_temperature": trial.suggest_float("bagging_temperature", 0.0, 1.0),
        "random_strength": trial.suggest_float("random_strength", 1.0, 20.0, log=True),
    }


def _build(params, context):
    from catboost import CatBoostClassifier, CatBoostRegressor

    cls = CatBoostRegressor if context.task == "regression" else CatBoostClassifier
    booster = cls(
        **params,
        bootstrap_type="Bayesian",  # the bagging that bagging_temperature tunes
        random_state=context.seed,
        thread_count=threads(context),
        allow_writing_files=False,  # no catboost_info/ folder in the working directory
        verbose=False,
    )
    return EarlyStoppedCatBoost(booster, max_seconds=context.time_limit)


class _Deadline:
    """A CatBoost callback that ends boosting, keeping the trees built, once time is up."""

    def __init__(self, deadline):
        self.deadline = deadline

    def after_iteration(self, info) -> bool:
        return not self.deadline.passed()  # False stops training


class EarlyStoppedCatBoost(EarlyStoppedBoosting):
    """Fit a CatBoost estimator with early stopping on a held-out slice of the rows it is given,
    ending boosting early when ``max_seconds`` have passed (``automl.plugins._boosting``). With
    early stopping the model is cut back to its best iteration.

    :param estimator: an unfitted ``CatBoostClassifier`` or ``CatBoostRegressor``; its
        ``random_state`` also seeds the held-out slice.
    :param max_seconds: seconds ``fit`` may take (the trees built by then are kept), or None.

    ``n_estimators_`` tells how many trees the model uses.
    """

    @staticmethod
    def _grown(model) -> int:
        return model.tree_count_

    def _boost(self, model, X, y, *, held_out, deadline, **fit_params) -> None:
        callbacks = self._callbacks(fit_params, deadline, _Deadline)
        if held_out is not None:
            X, X_valid, y, y_valid = held_out
            fit_params.update(eval_set=(X_valid, y_valid), early_stopping_rounds=EARLY_STOPPING_ROUNDS, use_best_model=True)
        model.fit(X, y, callbacks=callbacks or None, **fit_params)

    def _fit(self, X, y, **fit_params):
        # CatBoost checks its input less than scikit-learn does (it would fit labels of the wrong
        # length, or a continuous target as classes): the same checks as scikit-learn's own models
        X, y = validate_data(self, X, y, ensure_all_finite="allow-nan")
        if is_classifier(self.estimator):
            check_classification_targets(y)
            if len(np.unique(y)) < 2:
                raise ValueError(f"CatBoost needs at least 2 classes to fit a classifier; got 1: {y[0]!r}")
        super()._fit(X, y, **fit_params)

    def predict(self, X):
        # CatBoost gives a classifier's labels as a column; scikit-learn expects a vector
        return np.ravel(super().predict(self._checked(X)))

    @available_if(lambda self: hasattr(self.estimator, "predict_proba"))  # classifiers only
    def predict_proba(self, X):
        return super().predict_proba(self._checked(X))

    def _checked(self, X):
        check_is_fitted(self, "estimator_")
        return validate_data(self, X, ensure_all_finite="allow-nan", reset=False)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = False  # CatBoost takes scipy's sparse matrices, not its sparse arrays
        return tags


@automl.hookimpl
def automl_models():
    return [boosting_spec(
        "catboost", search_space=_search_space, build=_build, defaults=DEFAULT_PARAMS,
        cost=5.0,  # slower than the other boosting models on small tables (see DEFAULT_PARAMS)
        description="gradient-boosted oblivious trees with early stopping (CatBoost)",
        requires=("catboost",),
    )]
