"""What the early-stopped gradient-boosting built-ins (``lightgbm``, ``catboost``, ``xgboost``)
share: the seeded validation slice each fit holds out of its own rows, the deadline their
time-limit callbacks check, and the threads a fit takes.

Not a plugin itself (it registers no hook). It imports no boosting library: each subclass
imports its own inside ``fit``.
"""

from __future__ import annotations

import math
import time

import numpy as np
from automl.plugins._anytime import TimeLimitedEnsemble
from sklearn.base import clone, is_classifier
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import train_test_split
from sklearn.utils.validation import _num_samples

import automl

__all__ = [
    "BOOST_EXTRA",
    "EARLY_STOPPING_ROUNDS",
    "MIN_ROWS_FOR_EARLY_STOPPING",
    "ROWS_PER_THREAD",
    "VALIDATION_FRACTION",
    "Deadline",
    "EarlyStoppedBoosting",
    "boosting_spec",
    "threads",
]

#: Boosting stops once the held-out rows' loss has not improved for this many rounds.
EARLY_STOPPING_ROUNDS = 50
#: The share of a fit's rows held out for early stopping...
VALIDATION_FRACTION = 0.1
#: ...when it has at least this many rows; a smaller fit boosts every round it is allowed.
MIN_ROWS_FOR_EARLY_STOPPING = 500
#: One OpenMP thread per this many rows, up to ``ModelContext.n_jobs`` (as for the boosting built-in).
ROWS_PER_THREAD = 10_000


#: How to get the libraries of the built-ins behind the optional extra (catboost, xgboost).
BOOST_EXTRA = "pip install 'automl-select[boost]'"


def boosting_spec(name: str, *, search_space, build, defaults: dict, cost: float, description: str,
                  requires: tuple[str, ...] = ()) -> automl.ModelSpec:
    """The ModelSpec of a gradient-boosting built-in: every task, ordinal-coded categories (trees
    need neither scaling nor one-hot columns); a library in ``requires`` comes with the extra."""
    return automl.ModelSpec(
        name=name,
        tasks={"binary", "multiclass", "regression"},
        search_space=search_space,
        build=build,
        default_params=defaults,
        preprocessing="ordinal",
        cost=cost,
        description=description,
        requires=requires,
        install_hint=BOOST_EXTRA if requires else "",
    )


def threads(context) -> int:
    """The threads one fit takes: one per ``ROWS_PER_THREAD`` rows, at least 1, at most ``context.n_jobs``."""
    return max(1, min(context.n_jobs, context.n_samples // ROWS_PER_THREAD))


class Deadline:
    """The moment a fit's time is up, ``seconds`` from when it is made."""

    def __init__(self, seconds: float):
        self.deadline = time.monotonic() + seconds

    def passed(self) -> bool:
        return time.monotonic() > self.deadline


class EarlyStoppedBoosting(TimeLimitedEnsemble):
    """Fit a gradient-boosting estimator with early stopping on a held-out slice of the rows it is
    given, ending boosting early (keeping the rounds built) when ``max_seconds`` have passed.
    Predictions, scores and tags are the wrapped model's (``automl.plugins._anytime``).

    The slice is a seeded ``VALIDATION_FRACTION`` of the rows (the estimator's ``random_state``
    seeds it), stratified for classification; it is held out from ``MIN_ROWS_FOR_EARLY_STOPPING``
    rows on, and only when every class has enough rows for both sides. A subclass says how its
    library boosts (``_boost``) and counts the rounds its model uses (``_grown``).

    :param estimator: an unfitted model of the subclass's library.
    :param max_seconds: seconds ``fit`` may take (the rounds built by then are kept), or None.

    ``n_estimators_`` tells how many boosting rounds the model uses.
    """

    def _fit(self, X, y, **fit_params):
        model = clone(self.estimator)
        deadline = None
        if self.max_seconds is not None and math.isfinite(self.max_seconds):
            deadline = Deadline(self.max_seconds)
        self._boost(model, X, y, held_out=self._held_out(X, y), deadline=deadline, **fit_params)
        self._adopt(model)

    def score(self, X, y, sample_weight=None):
        """Accuracy (classifiers, on the labels as given) or R² (regressors), as scikit-learn's
        mixins define them (CatBoost's own ``score`` takes no weights)."""
        metric = accuracy_score if is_classifier(self.estimator) else r2_score
        return metric(y, self.predict(X), sample_weight=sample_weight)

    def _boost(self, model, X, y, *, held_out, deadline: Deadline | None, **fit_params) -> None:
        """Fit ``model`` on ``X, y``; with ``held_out`` (``X, X_valid, y, y_valid``, as
        ``train_test_split`` gives them) on its first two and stopping early on the others;
        with ``deadline``, ending boosting once it has passed."""
        raise NotImplementedError

    @staticmethod
    def _callbacks(fit_params: dict, deadline: Deadline | None, on_time) -> list:
        """The callbacks passed to ``fit`` (taken out of ``fit_params``), then ``on_time(deadline)``
        (the library's callback that ends boosting once the deadline has passed) when there is one."""
        callbacks = list(fit_params.pop("callbacks", None) or [])
        if deadline is not None:
            callbacks.append(on_time(deadline))
        return callbacks

    def _held_out(self, X, y):
        """The rows split for early stopping, or None: too few rows, or a class too rare to split."""
        if y is None or _num_samples(y) < MIN_ROWS_FOR_EARLY_STOPPING:
            return None  # no target: let the library say so
        stratify = None
        if is_classifier(self.estimator):
            _, counts = np.unique(np.asarray(y), return_counts=True)
            if counts.min() * VALIDATION_FRACTION < 1:
                return None  # a class would be missing from one side
            stratify = y
        seed = self.estimator.get_params().get("random_state")
        return train_test_split(X, y, test_size=VALIDATION_FRACTION, random_state=seed, stratify=stratify)
