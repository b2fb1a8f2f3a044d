"""The weighted ensemble a saved run's model may be: an average of refit pipelines' predictions."""

from __future__ import annotations

import contextvars
import functools
import hashlib
import math
import os
import pickle
import threading
import time

import numpy as np
import sklearn
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, clone
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import _num_samples, check_is_fitted

from ..data.preprocess import TablePreprocessor

__all__ = ["ENSEMBLE", "WeightedEnsembleClassifier", "WeightedEnsembleRegressor", "make_ensemble", "align_class_columns"]

#: The ensemble's name on the leaderboard and in the manifest (never a plugin's model name).
ENSEMBLE = "ensemble"
#: Below this many rows, the members may predict side by side, one per core. Each built-in then
#: predicts in one thread (``automl.plugins._anytime.PARALLEL_PREDICT_ROWS``, the same number), so
#: the cores would otherwise take turns idling; from this many rows on, each member spreads its
#: own work over the cores, and members side by side would fight for them (segmentation's four
#: members on 578 rows: 32 to 34 ms side by side against 29.5 in turn).
CONCURRENT_ROWS = 300
#: ...when the members took at least this long in the last call: starting a thread and handing
#: it work costs about 0.1 ms, more than two linear members take on a few rows.
MIN_SIDE_BY_SIDE_SECONDS = 0.001
#: Once both ways are timed for a batch size, the way not taken is timed again every this many calls.
RETIME_EVERY = 16


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

    #: What is derived from the fitted members on first use: never pickled, dropped by a refit.
    _DERIVED = ("_shared_steps", "_pacing")

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
        for derived in self._DERIVED:  # refit: the last fit's are stale
            self.__dict__.pop(derived, None)
        return self

    def _members_on(self, X):
        """(model, input) for every member: a member's own model and its preprocessing's output
        when that preprocessing can be shared, else the member's whole pipeline and ``X``.

        Members fitted on the same schema check and convert ``X`` once; members whose fitted
        preprocessing is the same (same schema, encoding and fitted values: the usual case, as
        the members are refit on the same rows) transform it once. On a small batch that
        preprocessing is most of each member's prediction time.
        """
        check_is_fitted(self, "estimators_")
        if "_shared_steps" not in self.__dict__:  # also after unpickling
            self._shared_steps = [_shareable_steps(member) for member in self.estimators_]
        if sklearn.get_config()["transform_output"] != "default":  # the pipelines' own output handling
            return [(member, X) for member in self.estimators_]
        rows, coerced, prepared, pairs = _num_samples(X), {}, {}, []
        for member, steps in zip(self.estimators_, self._shared_steps):
            if steps is None:
                pairs.append((member, X))
                continue
            preprocessor, model, schema, fitted = steps
            if fitted not in prepared:
                if schema not in coerced:
                    coerced[schema] = preprocessor.coerce_columns(X)
                prepared[fitted] = preprocessor.transform_columns(coerced[schema], rows)
            pairs.append((model, prepared[fitted]))
        return pairs

    def _member_outputs(self, X, predict) -> list[np.ndarray]:
        """``predict(model, input)`` for every member, in the members' order.

        On fewer than ``CONCURRENT_ROWS`` rows, when the last call's members took
        ``MIN_SIDE_BY_SIDE_SECONDS`` or more, the members may run side by side on the process's
        cores, the costliest first: ``_Pacing`` times both ways and keeps the faster (the first
        call runs them in turn, the second side by side). Each output is kept in its member's
        place, so the weighted sum is the same whichever thread ran what.
        """
        pairs = self._members_on(X)
        pacing, rows = self.__dict__.get("_pacing"), _num_samples(X)
        if pacing is None or len(pacing.member_seconds) != len(pairs):  # also after unpickling
            pacing = self._pacing = _Pacing([0.0] * len(pairs))
        workers = min(len(pairs), _cores()) if rows < CONCURRENT_ROWS else 1
        if workers < 2:
            return _run_members(pairs, predict, 1, pacing.member_seconds)
        side_by_side = pacing.side_by_side(rows) and sum(pacing.member_seconds) >= MIN_SIDE_BY_SIDE_SECONDS
        started = time.perf_counter()
        outputs = _run_members(pairs, predict, workers if side_by_side else 1, pacing.member_seconds)
        pacing.timed(rows, side_by_side, time.perf_counter() - started)
        return outputs

    def __getstate__(self):
        state = dict(super().__getstate__())  # a copy: it can be the instance's own __dict__
        for derived in self._DERIVED:  # pickles stay as they were
            state.pop(derived, None)
        return state


class WeightedEnsembleClassifier(ClassifierMixin, _WeightedEnsemble):
    """Averages its members' class probabilities (a class a member never saw counts as 0)."""

    def fit(self, X, y):
        self.classes_ = np.unique(np.asarray(y))
        return super().fit(X, y)

    def predict_proba(self, X) -> np.ndarray:
        classes = list(self.classes_)
        with _one_blas_thread():
            outputs = self._member_outputs(X, lambda model, Z: aligned_proba(model, Z, classes))
        return sum(w * values for values, w in zip(outputs, self.weights))

    def predict(self, X) -> np.ndarray:
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


class WeightedEnsembleRegressor(RegressorMixin, _WeightedEnsemble):
    """Averages its members' predictions."""

    def predict(self, X) -> np.ndarray:
        with _one_blas_thread():
            outputs = self._member_outputs(X, lambda model, Z: np.asarray(model.predict(Z), dtype=np.float64))
        return sum(w * values for values, w in zip(outputs, self.weights))


def _run_members(pairs, predict, workers: int, member_seconds: list[float]) -> list:
    """``predict(model, input)`` of every (model, input) pair, on ``workers`` threads (the
    calling one and helpers), the costliest first by ``member_seconds``, which it updates; a
    member's error is raised in the calling thread, as it would be in turn."""
    order = iter(sorted(range(len(pairs)), key=lambda i: -member_seconds[i]))
    taking, outputs, failures = threading.Lock(), [None] * len(pairs), []
    config = sklearn.get_config()  # scikit-learn's settings are per thread: the caller's for all

    def work() -> None:
        with sklearn.config_context(**config):
            while not failures:
                with taking:
                    i = next(order, None)
                if i is None:
                    return
                started = time.perf_counter()
                try:
                    outputs[i] = predict(*pairs[i])
                except BaseException as error:  # re-raised in the caller's thread
                    failures.append((i, error))
                    return
                member_seconds[i] = time.perf_counter() - started

    helpers = []
    for _ in range(workers - 1):
        # its own copy of the caller's context variables (numpy's errstate lives in one)
        helper = threading.Thread(target=contextvars.copy_context().run, args=(work,), name="automl-ensemble", daemon=True)
        try:
            helper.start()
        except RuntimeError:  # no thread to be had (a process at its limit): fewer helpers
            break
        helpers.append(helper)
    work()
    for helper in helpers:
        helper.join()
    if failures:
        raise min(failures, key=lambda failure: failure[0])[1]
    return outputs


class _Pacing:
    """Whether an ensemble's members run side by side or in turn, by batch size (rows to the
    next power of two): in turn, then side by side, then in turn again (the first call also
    pays one-off costs), and from then on the faster way, the other timed again every
    ``RETIME_EVERY`` calls. Either way gives the same numbers; only the time differs, and by
    the members: side by side, mpg's five members predicted 100 rows in 5.3 ms instead of 9.0,
    but vehicle's (a multiclass histogram boosting, whose Python loop over its trees holds the
    interpreter between short native steps) 14.4 ms instead of 11.4, and a single row was
    slower for all six suite ensembles timed (2 cores).

    ``member_seconds``: each member's time in the last call, which orders the work."""

    def __init__(self, member_seconds: list[float]):
        self.member_seconds = member_seconds
        self.seconds: dict[tuple[int, bool], float] = {}
        self.calls: dict[int, int] = {}

    def side_by_side(self, rows: int) -> bool:
        size = int(rows).bit_length()
        call = self.calls[size] = self.calls.get(size, 0) + 1
        if call <= 3:
            return call == 2
        faster = self.seconds.get((size, True), math.inf) < self.seconds.get((size, False), math.inf)
        return faster != (call % RETIME_EVERY == 0)

    def timed(self, rows: int, side_by_side: bool, seconds: float) -> None:
        self.seconds[int(rows).bit_length(), side_by_side] = seconds


def _one_blas_thread():
    """A context in which BLAS (the linear and neural members' matrix products) runs on one thread.

    Members take turns: after a BLAS product, OpenBLAS's idle threads keep spinning for a while,
    and the next member's OpenMP threads (boosting, forests) wait for cores they hold. On 2 cores,
    vehicle's ensemble (a logistic regression, a Keras network's NumPy form, two histogram
    boostings; 212 rows) predicted in 20 ms with one BLAS thread, 40 to 48 ms with two; no other
    suite ensemble was slower.
    """
    if _per_thread_blas():
        return _blas().limit(limits=1)  # OpenMP's thread counts are per thread: each sets its own
    return _ONE_BLAS_THREAD


@functools.cache
def _per_thread_blas() -> bool:
    return all(getattr(lib, "threading_layer", None) == "openmp" for lib in _blas().lib_controllers)


class _ProcessBlasLimit:
    """One BLAS thread while any thread of the process is inside, the caller's setting back when
    the last one leaves.

    OpenBLAS on its own threads (not OpenMP's) has one thread count for the process. Limits
    nested by hand in several threads would undo one another: a prediction entering while
    another holds the limit would save 1 as the setting to restore, and leave BLAS on one thread
    after both. So the threads share one count; the first in sets the limit and the last out
    restores it. threadpoolctl lets only the thread that last set OpenBLAS's threads set them
    until it lets go, so each step lets go at once (unless the thread holds a threadpoolctl
    limit of its own): the last out may be another thread than the first in. A threadpoolctl
    limit held in another thread meanwhile wins over this one, as threadpoolctl has it.
    """

    def __init__(self):
        self._reset()
        if hasattr(os, "register_at_fork"):  # a child forked mid-prediction starts afresh
            os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._inside = 0
        self._limiter = None

    def __enter__(self) -> None:
        with self._lock:
            if self._inside == 0:
                try:
                    self._limiter = _blas().limit(limits=1)
                finally:
                    _release_blas_control()
            self._inside += 1

    def __exit__(self, *exc_info) -> None:
        with self._lock:
            self._inside -= 1
            if self._inside == 0:
                limiter, self._limiter = self._limiter, None
                try:
                    limiter.restore_original_limits()
                finally:
                    _release_blas_control()


def _release_blas_control() -> None:
    """Let any thread set OpenBLAS's threads next, if this one held that and holds no
    threadpoolctl limit of its own (see ``_ProcessBlasLimit``)."""
    import threadpoolctl

    # before threadpoolctl 3.8 any thread could set them: nothing to release
    release = getattr(getattr(threadpoolctl, "OpenBLASController", None), "clear_controlling_thread", None)
    if release is not None and getattr(threadpoolctl.CONTROLLING_THREAD_OWNERSHIP, "count", 0) <= 0:
        release()


_ONE_BLAS_THREAD = _ProcessBlasLimit()


def _cores() -> int:
    """The threads scikit-learn's OpenMP code takes in this process: its physical cores (within
    its CPU affinity and quota), at most ``OMP_NUM_THREADS`` when that is set (as in a trial
    process, where the workers share out the cores) or when the caller limited OpenMP's threads."""
    from sklearn.utils._openmp_helpers import _openmp_effective_n_threads

    return _openmp_effective_n_threads()


@functools.cache
def _blas():
    # one controller per process: making one scans the loaded libraries (~5 ms); by the first
    # prediction, numpy's and scipy's BLAS are both loaded
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController().select(user_api="blas")


def _shareable_steps(member):
    """(preprocessor, model, schema key, fitted key) of an automl model pipeline (a
    ``TablePreprocessor`` then the model, with no output settings of its own), or None. The keys
    are digests of the pickled schema and of the pickled fitted preprocessor: equal digests, the
    same output for the same input."""
    if not isinstance(member, Pipeline) or len(member.steps) != 2:
        return None
    preprocessor, model = member.steps[0][1], member.steps[1][1]
    if not isinstance(preprocessor, TablePreprocessor) or not hasattr(preprocessor, "transformer_"):
        return None
    if any(getattr(step, "_sklearn_output_config", None) for step in (member, preprocessor)):
        return None
    return preprocessor, model, _digest(preprocessor.columns), _digest(preprocessor)


def _digest(value) -> bytes:
    return hashlib.sha256(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)).digest()


def make_ensemble(task: str, estimators: list, weights: list[float]) -> _WeightedEnsemble:
    """An unfitted weighted ensemble of ``estimators`` for ``task``."""
    cls = WeightedEnsembleRegressor if task == "regression" else WeightedEnsembleClassifier
    return cls(estimators=list(estimators), weights=[float(w) for w in weights])
