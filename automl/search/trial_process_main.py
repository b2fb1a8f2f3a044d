"""What runs inside a trial process: fit and score pipelines on the run's data.

The parent (``automl.search.trial_process``) sends requests over a pipe; each answer is ``("ok", value)``
or ``("error", message, traceback)``. A request that hangs, crashes the interpreter or eats
memory takes only this process down: the parent kills or replaces it and records why.
The parent never imports TensorFlow; a Keras model is built, trained and pickled here.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.util
import os
import signal
import sys
import time
import traceback

#: Rows each candidate is timed predicting: the leaderboard's ``predict_ms`` is per this many.
TIMED_ROWS = 1000

THREAD_VARIABLES = (
    "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS",
)


def limit_threads(threads: int) -> None:
    """Keep BLAS, OpenMP and TensorFlow to ``threads`` threads so workers share the cores."""
    for name in THREAD_VARIABLES:
        os.environ[name] = str(threads)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=threads)


@contextlib.contextmanager
def _native_stderr_hidden():
    """Send what native code writes to file descriptor 2 to /dev/null for the duration.

    Python's own errors still reach the parent: they travel over the pipe, not standard error.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        sys.stderr.flush()  # what Python wrote meanwhile goes where the native lines went
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


class _QuietTensorFlowImport(importlib.abc.MetaPathFinder):
    """Runs the first ``import tensorflow`` of this process, and TensorFlow's device probe, with
    native standard error hidden.

    TensorFlow's C++ start-up lines (the oneDNN notice, absl's "All log messages before
    absl::InitializeLog()", "Could not find cuda drivers", the "failed call to cuInit" error) are
    written before or beside the C++ logging that ``TF_CPP_MIN_LOG_LEVEL`` filters, so no
    variable hides them. A finder, rather than importing TensorFlow up front, because most workers
    never train a network and the import takes seconds. GPUs are left as they are: only the
    messages are hidden.
    """

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)  # once; the other finders locate the real package
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


class _QuietLoader(importlib.abc.Loader):
    """``loader``, with its module executed under :func:`_native_stderr_hidden`."""

    def __init__(self, loader):
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module) -> None:
        with _native_stderr_hidden():
            self._loader.exec_module(module)
            # the CUDA probe (and its cuInit error on a machine without a GPU) runs at the first
            # device query, not at import: make it happen here, while the lines are hidden
            module.config.list_physical_devices()

    def __getattr__(self, name):  # resource readers and the like: the real loader's
        return getattr(self._loader, name)


class _State:
    def __init__(self):
        self.X = self.y = self.search_rows = self.test_rows = self.folds = self.scorer = None
        self.classification = False
        #: every class, sorted, when the folds' validation predictions are sent back (ensembles)
        self.prediction_classes = None
        self.collect_predictions = False


def _set_data(state: _State, payload: bytes) -> None:
    from .payload import load_payload

    data = load_payload(payload)
    state.X, state.y = data["X"], data["y"]
    state.search_rows, state.test_rows = data["search_rows"], data["test_rows"]
    state.folds, state.scorer = data["folds"], data["scorer"]
    state.classification = data.get("classification", False)
    state.collect_predictions = data.get("collect_predictions", False)
    if state.collect_predictions and state.classification:
        import numpy as np

        state.prediction_classes = list(np.unique(state.y))


def _fit_fold(state: _State, payload: bytes, k: int) -> dict:
    """Fit the (unfitted) pipeline in ``payload`` on fold ``k``'s training rows, score the rest
    (and send back its predictions for them when the run collects them)."""
    import cloudpickle
    import numpy as np

    train, valid = state.folds[k]
    train, valid = state.search_rows[train], state.search_rows[valid]
    started = time.monotonic()
    model = cloudpickle.loads(payload)
    model.fit(state.X.iloc[train], state.y[train])
    fit_seconds = time.monotonic() - started
    rows = state.X.iloc[valid]
    score = float(state.scorer(model, rows, state.y[valid]))
    if not np.isfinite(score):
        raise ValueError(f"the score on fold {k} is {score} (the model's predictions are not usable)")
    answer = {"score": score, "fit_seconds": fit_seconds}
    if k == 0:  # once a trial: the model has just predicted these rows, so nothing is left to warm up
        answer["predict_ms"] = predict_ms(model, rows, state.classification)
    if state.collect_predictions:
        from .ensemble import fold_predictions

        answer["predictions"] = fold_predictions(model, rows, state.prediction_classes)
    answer["seconds"] = time.monotonic() - started
    return answer


def predict_ms(model, X, classification: bool) -> float:
    """Milliseconds ``model`` takes to predict ``TIMED_ROWS`` rows (those of ``X``, repeated as
    needed), by ``predict_proba`` for a classifier that has it (what an ensemble and log loss use);
    the quicker of two tries, as a hiccup of the machine only ever adds time."""
    import numpy as np

    rows = X.iloc[np.resize(np.arange(len(X)), TIMED_ROWS)]
    predict = model.predict_proba if classification and hasattr(model, "predict_proba") else model.predict
    times = []
    for _ in range(2):
        started = time.perf_counter()
        predict(rows)
        times.append(time.perf_counter() - started)
    return min(times) * 1000


def _refit(
    state: _State, payload: bytes, on_search_rows: bool, max_rows: int | None = None, seed: int = 0,
    model_path: str | None = None,
) -> dict:
    """Fit the pipeline on the search rows (then score the test rows) or on every row; on a
    seeded sample of ``max_rows`` of those when there are more. A model fitted on every row is
    written to ``model_path``, not returned: a pipe carries a forest of 100 MB at about 150 MB/s,
    a file several times faster."""
    import cloudpickle
    import joblib
    import numpy as np

    from ..data.validation import sample_rows

    pipeline = cloudpickle.loads(payload)
    rows = state.search_rows if on_search_rows else np.arange(len(state.y))
    stratify = state.y if state.classification else None  # as the folds' samples are
    rows = sample_rows(rows, max_rows, stratify, seed)
    X = state.X if len(rows) == len(state.y) else state.X.iloc[rows]
    y = state.y[rows]
    started = time.monotonic()
    pipeline.fit(X, y)
    answer: dict = {"fit_seconds": time.monotonic() - started, "rows": len(rows)}
    if on_search_rows:
        test = state.test_rows
        answer["test_score"] = float(state.scorer(pipeline, state.X.iloc[test], state.y[test]))
        return answer
    joblib.dump(pipeline, model_path)  # plain: compressed by the parent, outside the refit's time limit
    classes = getattr(pipeline, "classes_", None)
    answer["predict_ms"] = predict_ms(pipeline, X.iloc[:TIMED_ROWS], state.classification)
    answer["classes"] = None if classes is None else [c.item() if hasattr(c, "item") else c for c in classes]
    return answer


HANDLERS = {"data": _set_data, "fold": _fit_fold, "refit": _refit}


def main(conn, threads: int, native_logs: bool = False) -> None:
    """The worker's loop: answer requests until the pipe closes.

    :param native_logs: let TensorFlow's C++ start-up lines through (the parent logs at debug).
    """
    # Ctrl-C reaches the whole process group; the parent decides what an interrupt means.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    limit_threads(threads)
    if not native_logs and "tensorflow" not in sys.modules:
        sys.meta_path.insert(0, _QuietTensorFlowImport())
    from joblib import parallel_config

    # a daemon process cannot start loky's worker processes: models' n_jobs use threads here
    with parallel_config(backend="threading"):
        _serve_requests(conn)


def _serve_requests(conn) -> None:
    state = _State()
    while True:
        try:
            kind, *args = conn.recv()
        except (EOFError, OSError):
            return
        try:
            answer = ("ok", HANDLERS[kind](state, *args))
        except Exception as exc:
            answer = ("error", f"{type(exc).__name__}: {exc}", traceback.format_exc())
        try:
            conn.send(answer)
        except Exception as exc:  # e.g. an answer that cannot be pickled
            conn.send(("error", f"{type(exc).__name__}: {exc}", traceback.format_exc()))
