"""A wrapper that lets a bagged ensemble stop growing when its time runs out.

Not a plugin itself (it registers no hook): a helper for the tree-ensemble plugins.
"""

from __future__ import annotations

import math
import time
import warnings

from sklearn.base import BaseEstimator, clone
from sklearn.utils.validation import check_is_fitted

__all__ = ["TimeLimitedEnsemble"]

FIRST_STEP = 8


class TimeLimitedEnsemble(BaseEstimator):
    """Fit ``estimator`` (a warm-startable ensemble such as a random forest) tree batch by tree
    batch, stopping before ``max_seconds`` would be passed.

    Trees are the same as in one plain ``fit`` with the same ``random_state`` (scikit-learn's
    warm start draws seeds in the same order); only their number may be smaller when time runs
    out. ``n_estimators_`` tells how many were grown.

    :param estimator: an unfitted ensemble with ``n_estimators`` and ``warm_start`` parameters.
    :param max_seconds: time for ``fit``; None grows all ``n_estimators`` trees in one go.
    """

    def __init__(self, estimator=None, max_seconds: float | None = None):
        self.estimator = estimator
        self.max_seconds = max_seconds

    def fit(self, X, y, **fit_params):
        model = clone(self.estimator)
        total = model.get_params()["n_estimators"]
        if self.max_seconds is None or not math.isfinite(self.max_seconds):
            model.fit(X, y, **fit_params)
        else:
            deadline = time.monotonic() + self.max_seconds
            built, step = 0, min(FIRST_STEP, total)
            while True:
                started = time.monotonic()
                model.set_params(n_estimators=built + step, warm_start=True)
                with warnings.catch_warnings():
                    # the warning is about warm starts on other data; ours always see the same rows
                    warnings.filterwarnings("ignore", message=".*not recommended for warm_start.*")
                    model.fit(X, y, **fit_params)
                built += step
                per_tree = (time.monotonic() - started) / step
                left = deadline - time.monotonic()
                if built >= total or left < per_tree:
                    break
                # grow geometrically (few refits) but never past the time that is left
                step = max(1, min(total - built, 2 * step, int(left / per_tree)))
            model.set_params(warm_start=False)
        self.estimator_ = model
        self.n_estimators_ = len(model.estimators_)
        for attribute in ("classes_", "n_classes_", "n_features_in_", "feature_names_in_"):
            if hasattr(model, attribute):
                setattr(self, attribute, getattr(model, attribute))
        return self

    def predict(self, X):
        check_is_fitted(self, "estimator_")
        return self.estimator_.predict(X)

    def predict_proba(self, X):
        check_is_fitted(self, "estimator_")
        return self.estimator_.predict_proba(X)

    @property
    def feature_importances_(self):
        check_is_fitted(self, "estimator_")
        return self.estimator_.feature_importances_

    def __sklearn_tags__(self):
        # a classifier when it wraps one, so scorers ask it for probabilities
        tags = self.estimator.__sklearn_tags__()
        tags.non_deterministic = False
        return tags
