"""Wrappers that let a tree ensemble stop growing when its time runs out.

Not a plugin itself (it registers no hook): a helper for the tree-ensemble plugins.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import math
import os
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from sklearn.base import BaseEstimator, clone, is_classifier
from sklearn.ensemble._forest import BaseForest
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import _num_samples, check_is_fitted

from automl.plugins._compact_trees import PackedTrees

__all__ = ["PARALLEL_PREDICT_ROWS", "TimeLimitedBoosting", "TimeLimitedEnsemble", "prediction_threads"]

FIRST_STEP = 8
#: From this many rows on, the first batch is one member: on a large table a batch of 8 deep
#: trees can take longer than the whole time limit, and only a batch's end can stop the fit.
LARGE_TABLE_ROWS = 50_000
#: From this many rows on, a prediction runs on every core the process may use; below, in one
#: thread, where handing work to threads costs more than they save. A saved ensemble's members
#: take turns, and each library's idle threads spin a while and hold cores the next one needs:
#: on 2 cores, mpg's six-member ensemble predicted 100 rows in 12.6 ms in one thread against
#: 16.1 in two; from 250 to 1,351 rows (five suite ensembles) two threads were as fast or faster
#: (phoneme's 1,351 rows: 27 against 37 ms).
PARALLEL_PREDICT_ROWS = 300


class TimeLimitedEnsemble(BaseEstimator):
    """Fit ``estimator`` (a warm-startable ensemble such as a random forest) tree batch by tree
    batch, stopping before ``max_seconds`` would be passed.

    Trees are the same as in one plain ``fit`` with the same ``random_state`` (scikit-learn's
    warm start draws seeds in the same order); only their number may be smaller when time runs
    out. ``n_estimators_`` tells how many were grown.

    :param estimator: an unfitted ensemble with ``n_estimators`` and ``warm_start`` parameters.
    :param max_seconds: time for ``fit``; None grows all ``n_estimators`` trees in one go.
    """

    #: the estimator's parameter that sets how many members (trees, iterations) it grows
    size_parameter = "n_estimators"
    #: members in the first batch on a large table (LARGE_TABLE_ROWS)
    large_table_first_step = 1

    def __init__(self, estimator=None, max_seconds: float | None = None):
        self.estimator = estimator
        self.max_seconds = max_seconds

    @staticmethod
    def _grown(model) -> int:
        """How many members a fitted ``model`` holds."""
        return len(model.estimators_)

    def _threads(self):
        """The thread limits around the estimator's fit: none here."""
        return contextlib.nullcontext()

    def _prediction_threads(self, X):
        """The thread limits around a prediction of ``X`` by a model other than a forest: none
        here (``_predictor`` sets a model's ``n_jobs``)."""
        return contextlib.nullcontext()

    def fit(self, X, y, **fit_params):
        with self._threads():
            self._fit(X, y, **fit_params)
        return self

    def _fit(self, X, y, **fit_params):
        model = clone(self.estimator)
        total = model.get_params()[self.size_parameter]
        if self.max_seconds is None or not math.isfinite(self.max_seconds):
            model.fit(X, y, **fit_params)
        else:
            deadline = time.monotonic() + self.max_seconds
            first = self.large_table_first_step if _num_samples(X) >= LARGE_TABLE_ROWS else FIRST_STEP
            built, step = 0, min(first, total)
            while True:
                started = time.monotonic()
                model.set_params(**{self.size_parameter: built + step, "warm_start": True})
                with warnings.catch_warnings():
                    # the warning is about warm starts on other data; ours always see the same rows
                    warnings.filterwarnings("ignore", message=".*not recommended for warm_start.*")
                    model.fit(X, y, **fit_params)
                grown = self._grown(model)
                stopped = grown < built + step  # the model ended early itself (early stopping)
                per_member = (time.monotonic() - started) / max(1, grown - built)
                built = grown
                left = deadline - time.monotonic()
                if stopped or built >= total or left < per_member:
                    break
                # grow geometrically (few refits) but never past the time that is left
                step = max(1, min(total - built, 2 * step, int(left / per_member)))
            model.set_params(warm_start=False)
        self._adopt(model)

    def _adopt(self, model) -> None:
        """Keep the fitted ``model``, and the attributes scikit-learn looks for on this wrapper."""
        self.estimator_ = model
        self.n_estimators_ = self._grown(model)
        for attribute in ("classes_", "n_classes_", "n_features_in_", "feature_names_in_", "n_iter_"):
            if hasattr(model, attribute):
                setattr(self, attribute, getattr(model, attribute))

    def _predictor(self, X):
        """The fitted model, or a shallow copy of it whose ``n_jobs`` is the threads ``X``'s rows
        call for (a copy, so that requests served side by side never see each other's setting).
        A forest does not need it: ``_forest_average`` takes its threads itself."""
        check_is_fitted(self, "estimator_")
        model = self.estimator_
        threads = prediction_threads(_num_samples(X))
        if getattr(model, "n_jobs", None) is not None and model.n_jobs != threads:
            model = copy.copy(model)
            model.n_jobs = threads
        return model

    def predict(self, X):
        check_is_fitted(self, "estimator_")
        forest = self.estimator_
        if _is_single_output_forest(forest):
            if not is_classifier(forest):
                return _forest_average(forest, X, "predict")
            return forest.classes_.take(np.argmax(_forest_average(forest, X, "predict_proba"), axis=1), axis=0)
        model = self._predictor(X)
        with self._prediction_threads(X):
            return model.predict(X)

    @available_if(lambda self: hasattr(self.estimator, "predict_proba"))  # classifiers only
    def predict_proba(self, X):
        check_is_fitted(self, "estimator_")
        if _is_single_output_forest(self.estimator_):
            return _forest_average(self.estimator_, X, "predict_proba")
        model = self._predictor(X)
        with self._prediction_threads(X):
            return model.predict_proba(X)

    def score(self, X, y, sample_weight=None):
        """Accuracy (classifiers) or R² (regressors), as the wrapped model defines it."""
        check_is_fitted(self, "estimator_")
        with self._threads():
            return self.estimator_.score(X, y, sample_weight=sample_weight)

    @property
    def feature_importances_(self):
        check_is_fitted(self, "estimator_")
        return self.estimator_.feature_importances_

    def __getstate__(self):
        # a forest's trees pickle in their compact form (a saved forest is 3 to 6 times smaller,
        # with the same predictions); unpickling gives back scikit-learn's trees
        state = dict(super().__getstate__())  # a copy: it can be the instance's own __dict__
        if _is_forest_of_trees(state.get("estimator_")):
            state["estimator_"] = _with_packed_trees(state["estimator_"])
        return state

    def __sklearn_tags__(self):
        # a classifier when it wraps one, so scorers ask it for probabilities
        tags = self.estimator.__sklearn_tags__()
        tags.non_deterministic = False
        return tags


class TimeLimitedBoosting(TimeLimitedEnsemble):
    """Fit ``estimator`` (a histogram gradient boosting model) in batches of boosting
    iterations, stopping before ``max_seconds`` would be passed or when its own early
    stopping ends it.

    The iterations are those of one plain ``fit`` with the same ``random_state`` (the same
    validation split; feature subsampling continues one random stream); only their number may
    be smaller when time runs out. ``n_iter_`` (and ``n_estimators_``) tell how many were run.

    :param estimator: an unfitted ``HistGradientBoostingClassifier`` or ``...Regressor``.
    :param max_seconds: time for ``fit``; None runs ``max_iter`` iterations (or until early
        stopping) in one go.
    :param n_threads: OpenMP threads for ``fit``, or None for as many as the process allows.
        Boosting runs thousands of short parallel steps: on a small table, more threads gain
        little, and on a busy machine each step waits for the slowest thread. Predictions take
        ``prediction_threads`` (one thread for a few rows, every core for a batch).
    """

    size_parameter = "max_iter"
    # an iteration is quick however large the table, and each batch bins the table again
    large_table_first_step = FIRST_STEP

    def __init__(self, estimator=None, max_seconds: float | None = None, n_threads: int | None = None):
        self.estimator = estimator
        self.max_seconds = max_seconds
        self.n_threads = n_threads

    @staticmethod
    def _grown(model) -> int:
        return model.n_iter_

    def _threads(self):
        if self.n_threads is None:
            return contextlib.nullcontext()
        return _openmp().limit(limits=self.n_threads, user_api="openmp")

    def _prediction_threads(self, X):
        return _openmp().limit(limits=prediction_threads(_num_samples(X)), user_api="openmp")


def prediction_threads(rows: int) -> int:
    """Threads a prediction of ``rows`` rows runs on: from ``PARALLEL_PREDICT_ROWS`` rows on,
    every core this process may use (its CPU affinity), at most ``OMP_NUM_THREADS`` when that is
    set (as in a trial process, where the workers share out the cores); else one."""
    if rows < PARALLEL_PREDICT_ROWS:
        return 1
    try:
        cores = max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    limit = os.environ.get("OMP_NUM_THREADS", "")
    return min(cores, int(limit)) if limit.isdigit() and int(limit) > 0 else cores


def _is_forest_of_trees(model) -> bool:
    return isinstance(model, BaseForest) and PackedTrees.packable(getattr(model, "estimators_", []))


def _with_packed_trees(forest):
    """A shallow copy of ``forest`` whose ``estimators_`` pickle packed (``forest`` is untouched)."""
    packed = copy.copy(forest)
    packed.estimators_ = PackedTrees(forest.estimators_)
    return packed


def _is_single_output_forest(model) -> bool:
    return isinstance(model, BaseForest) and getattr(model, "n_outputs_", None) == 1


def _forest_average(forest, X, method: str) -> np.ndarray:
    """The mean of the forest's trees' ``method`` (``predict`` or ``predict_proba``) on ``X``, on
    ``prediction_threads`` threads (whatever the forest's ``n_jobs``), each summing a contiguous
    share of the trees; the shares are added in order, so the result does not depend on the
    threads' timing.

    What scikit-learn's own forest prediction computes, without its joblib pool: on 2 cores that
    pool's start and polling (10 ms sleeps) cost 13 ms for one row and 300 trees, three times
    the trees' own work, and its threads add into one array in whatever order they finish.
    """
    X = forest._validate_X_predict(X)  # scikit-learn's own checks and float32 conversion
    # Each tree's low-level predict: what DecisionTree*.predict(_proba) returns for one output
    # (a (rows, classes) array; for a regression, one column), without the per-tree fitted and
    # width checks that the forest has made once (a third of the time on 100 rows).
    trees = [tree.tree_ for tree in forest.estimators_]
    shares = np.array_split(np.arange(len(trees)), min(prediction_threads(X.shape[0]), len(trees)))

    def share_sum(indices) -> np.ndarray:
        total = trees[indices[0]].predict(X).astype(np.float64)
        for i in indices[1:]:
            total += trees[i].predict(X)
        return total

    # a tree's prediction releases the GIL: the other shares run in the pool meanwhile
    first, rest = shares[0], shares[1:]
    others = [_prediction_pool(len(rest)).submit(share_sum, share) for share in rest] if rest else []
    sums = [share_sum(first)] + [future.result() for future in others]
    total = sums[0]
    for part in sums[1:]:
        total += part
    total /= len(trees)
    return total[:, 0] if method == "predict" else total


_pool: ThreadPoolExecutor | None = None
_pool_workers = 0
_pool_lock = threading.Lock()


def _prediction_pool(workers: int) -> ThreadPoolExecutor:
    """The process's pool of forest-prediction threads (the calling thread sums the first share
    itself), with at least ``workers`` threads.

    Kept between predictions: starting the threads of a new pool for every call cost 1 to 3 ms,
    as much as a small forest's whole prediction of 100 rows. Its idle threads wait on a queue
    (no CPU) and end with the process. Requests served side by side share it: their shares
    queue, and each call still adds up its own shares in order.
    """
    global _pool, _pool_workers
    with _pool_lock:
        if _pool is None or _pool_workers < workers:
            if _pool is not None:
                _pool.shutdown(wait=False)  # its running shares finish; new ones go to the new pool
            _pool, _pool_workers = ThreadPoolExecutor(workers, thread_name_prefix="automl-predict"), workers
        return _pool


def _forget_pool_after_fork() -> None:
    # a forked child has none of the parent's threads: its pool object would wait for ever
    global _pool, _pool_workers, _pool_lock
    _pool, _pool_workers, _pool_lock = None, 0, threading.Lock()


os.register_at_fork(after_in_child=_forget_pool_after_fork)


@functools.cache
def _openmp():
    """One controller per process (making one scans the loaded libraries, ~5 ms), made once
    scikit-learn's OpenMP code is loaded (by the time a boosting model is fitted or used)."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()

