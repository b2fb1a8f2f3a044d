"""XGBoost gradient-boosted trees (histogram method) for every task, built in behind the
``boost`` extra.

Found when XGBoost is installed (``pip install 'automl-select[boost]'``); otherwise ``automl
models`` lists it as not installed and ``fit_best`` leaves it out. XGBoost is imported when a
model is fitted, never when the plugin loads.

Each fit holds out a seeded tenth of its rows (stratified for classification) and stops when
their loss has not improved for ``EARLY_STOPPING_ROUNDS`` rounds (predictions then use the best
round), so ``n_estimators`` is a cap; a ``TrainingCallback`` ends boosting when
``ModelContext.time_limit`` runs out, keeping the trees built.

The search space draws from the ranges of Grinsztajn et al. (2022, "Why do tree-based models
still outperform deep learning on tabular data?") and FLAML's: depth, learning rate, leaf weight,
row and column subsampling, L1 and L2 on leaf weights, and the split-loss threshold ``gamma``.

Categories arrive ordinal-coded, as for the other trees (XGBoost's own categorical splits need
the category columns named, which the float matrix it is handed does not do).
"""

from __future__ import annotations

from automl.plugins._boosting import (
    EARLY_STOPPING_ROUNDS,
    EarlyStoppedBoosting,
    boosting_spec,
    threads,
)
from sklearn.base import is_classifier
from sklearn.preprocessing import LabelEncoder
from sklearn.utils.multiclass import check_classification_targets

import automl

__all__ = ["DEFAULT_PARAMS", "EarlyStoppedXGB", "automl_models"]

#: The first trial: XGBoost's defaults (depth 6, leaf weight 1, L2 1) with a smaller learning
#: rate for up to 1,000 early-stopped rounds and light row and column subsampling; L1 and gamma
#: at the bottom of their log scales (XGBoost's 0).
DEFAULT_PARAMS = {
    "n_estimators": 1000, "learning_rate": 0.05, "max_depth": 6, "min_child_weight": 1.0,
    "subsample": 0.8, "colsample_bytree": 0.8, "reg_alpha": 1e-3, "reg_lambda": 1.0, "gamma": 1e-3,
}


def _search_space(trial, context):
    return {
        "n_estimators": trial.suggest_int("n_estimators", 50, 1000, log=True),
        "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.3, log=True),
        "max_depth": trial.suggest_int("max_depth", 2, 10),
        "min_child_weight": trial.suggest_float("min_child_weight", 1.0, 100.0, log=True),
        "subsample": trial.suggest_float("subsample", 0.5, 1.0),
        "colsample_bytree": trial.suggest_float("colsample_bytree", 0.4, 1.0),
        "reg_alpha": trial.suggest_float("reg_alpha", 1e-3, 10.0, log=True),
        "reg_lambda": trial.suggest_float("reg_lambda", 1e-3, 10.0, log=True),
        "gamma": trial.suggest_float("gamma", 1e-3, 5.0, log=True),
    }


def _build(params, context):
    from xgboost import XGBClassifier, XGBRegressor

    cls = XGBRegressor if context.task == "regression" else XGBClassifier
    booster = cls(
        **params,
        tree_method="hist",
        random_state=context.seed,
        n_jobs=threads(context),
        verbosity=0,
    )
    return EarlyStoppedXGB(booster, max_seconds=context.time_limit)


def _deadline_callback(deadline):
    """An XGBoost callback that ends boosting, keeping the trees built, once ``deadline`` has passed."""
    from xgboost.callback import TrainingCallback

    class _Deadline(TrainingCallback):
        def after_iteration(self, model, epoch, evals_log) -> bool:
            return deadline.passed()  # True stops training

    return _Deadline()


class EarlyStoppedXGB(EarlyStoppedBoosting):
    """Fit an XGBoost estimator with early stopping on a held-out slice of the rows it is given,
    ending boosting early when ``max_seconds`` have passed (``automl.plugins._boosting``).
    A classifier takes any labels (XGBoost itself only takes 0 to k-1).

    :param estimator: an unfitted ``XGBClassifier`` or ``XGBRegressor``; its ``random_state``
        also seeds the held-out slice.
    :param max_seconds: seconds ``fit`` may take (the trees built by then are kept), or None.

    ``n_estimators_`` tells how many boosting rounds the model uses.
    """

    @staticmethod
    def _grown(model) -> int:
        try:
            return model.best_iteration + 1  # early stopping: predictions use the rounds up to the best
        except AttributeError:
            return model.get_booster().num_boosted_rounds()

    def _fit(self, X, y, **fit_params):
        if not is_classifier(self.estimator):
            return super()._fit(X, y, **fit_params)
        check_classification_targets(y)
        labels = LabelEncoder().fit(y)
        super()._fit(X, labels.transform(y), **fit_params)
        self.classes_ = labels.classes_
        return None

    def _boost(self, model, X, y, *, held_out, deadline, **fit_params) -> None:
        params = model.get_params()
        own = {name: params[name] for name in ("callbacks", "early_stopping_rounds")}
        callbacks = list(own["callbacks"] or [])
        if deadline is not None:
            callbacks.append(_deadline_callback(deadline))
        stopping = None
        if held_out is not None:
            X, X_valid, y, y_valid = held_out
            fit_params["eval_set"] = [(X_valid, y_valid)]
            stopping = EARLY_STOPPING_ROUNDS
        model.set_params(callbacks=callbacks or None, early_stopping_rounds=stopping)
        try:
            model.fit(X, y, verbose=False, **fit_params)
        finally:
            model.set_params(**own)  # the deadline is this fit's own: the model pickles without it

    def predict(self, X):
        predicted = super().predict(X)
        return self.classes_[predicted] if is_classifier(self.estimator) else predicted

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = False  # one target: one column of labels or values
        if tags.classifier_tags is not None:
            tags.classifier_tags.multi_label = False
        return tags


@automl.hookimpl
def automl_models():
    return [boosting_spec(
        "xgboost", search_space=_search_space, build=_build, defaults=DEFAULT_PARAMS,
        cost=3.0,  # as the other histogram boosting models
        description="gradient-boosted trees with early stopping (XGBoost, histogram method)",
        requires=("xgboost",),
    )]
