"""One trial: its folds fitted in a trial process, told their share of the time, stopped past it."""

from __future__ import annotations

import dataclasses
import logging
import math
import socket
import statistics
import threading
import time
import warnings
import numpy as np
from optuna.storages._heartbeat import get_heartbeat_thread  # what study.optimize uses; ask/tell has no public form
from optuna.trial import TrialState
from .ensemble import PredictionPool
from .trial_process import TrialFailure, WorkerRunner
from .._spec import ModelContext
from .studies import build_pipeline

__all__ = ["run_trial", "BUDGET_STOP"]

logger = logging.getLogger(__name__)

#: Share of a fold's time that the fit may use; the rest is for predicting and scoring.
FIT_SHARE = 0.8
BUDGET_STOP = "stopped by the time budget"
#: A trial still running at this multiple of its share is stopped and recorded as a timeout.
KILL_FACTOR = 1.5
HOST = socket.gethostname()


class _OutOfTime(Exception):
    pass


def _timed(context: ModelContext, until: float, fits_left: float, overhead: float = 0.0) -> ModelContext:
    """``context`` with ``time_limit`` set to one fit's share of the time left until ``until``,
    after ``overhead`` seconds per fit for what is not fitting (preprocessing, scoring, transfer)."""
    seconds_left = until - time.monotonic() - overhead * fits_left
    if not math.isfinite(seconds_left):
        return context
    return dataclasses.replace(context, time_limit=max(0.5, FIT_SHARE * seconds_left / max(fits_left, 1)))


def run_trial(
    search, runner: WorkerRunner, n_folds, schema, context, stop_at, on_trial, share=1.0, refit_fits=1.25,
    kill_share=1.0, cancelled: threading.Event | None = None, pool: PredictionPool | None = None,
) -> None:
    """One trial: ``share`` of the search time left is what its fits are told they may use
    (``ModelContext.time_limit``), keeping room for ``refit_fits`` more (the final refit, should
    this model win). A fit is stopped by force at ``KILL_FACTOR * kill_share`` of the time left,
    or at the end of the search. The scheduler has counted it in ``search.started`` and
    ``search.running``."""
    study = search.study
    with warnings.catch_warnings():
        # Optuna expects heartbeats with study.optimize; this loop keeps them itself, below
        warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used with Study.optimize")
        trial = study.ask()
    # a shared database learns that this process is alive; without heartbeats, another worker
    # fails the trial and runs it again (a no-op for storages without heartbeats)
    heartbeat = get_heartbeat_thread(trial._trial_id, study._storage)
    heartbeat.start()
    if runner.last_pid is not None:  # who runs it, from the start (a fold may replace the worker)
        trial.set_user_attr("worker", f"{HOST}:{runner.last_pid}")
    started = time.monotonic()
    trial_until = started + share * (stop_at() - started)
    # the hard limit, above its share, so that a fit that hangs cannot starve the other models
    # (never sooner than a few times its typical trial, which a busy machine can stretch)
    kill_at = started + max(
        min(1.0, KILL_FACTOR * kill_share) * (stop_at() - started), 3 * search.typical_trial_seconds()
    )
    scores: list[float] = []
    fit_seconds: list[float] = []
    predictions: list = []
    state, value, error = TrialState.COMPLETE, None, None
    try:
        params = search.model.spec.search_space(trial, _timed(context, trial_until, n_folds + refit_fits))
        if not isinstance(params, dict):
            raise TypeError(f"search_space() returned {type(params).__name__}, expected a dict")
        fold_seconds: list[float] = []
        for k in range(n_folds):
            now = time.monotonic()
            # a model that cannot stop early overshoots by at most half a fold
            if now >= stop_at() or (fold_seconds and now + 0.5 * statistics.mean(fold_seconds) > stop_at()):
                raise _OutOfTime(f"{BUDGET_STOP} after {k} of {n_folds} folds")
            # built per fold: each fit is told its share of the time left (ModelContext.time_limit)
            overhead = statistics.mean(w - f for w, f in zip(fold_seconds, fit_seconds)) if fold_seconds else 0.0
            timed = _timed(context, trial_until, n_folds - k + refit_fits, overhead)
            pipeline = build_pipeline(search.model, params, timed, schema)
            limit = min(stop_at(), kill_at)  # kill_at may lie past stop_at: the budget wins
            try:
                answer = runner.fit_fold(pipeline, k, timeout=limit - now)
            except TrialFailure as failure:
                if failure.kind == "timeout" and limit >= stop_at():
                    raise _OutOfTime(f"{BUDGET_STOP} during fold {k + 1} of {n_folds} ({failure.reason})") from None
                if failure.kind == "timeout":
                    search.durations.append(math.inf)  # it cannot finish within any share: do not retry
                    failure.reason = f"still running at the trial's time limit ({kill_at - started:.1f} s), stopped"
                raise
            finally:
                trial.set_user_attr("worker", f"{HOST}:{runner.last_pid}")
            search.fold_fit_seconds.append(answer["fit_seconds"])
            fit_seconds.append(answer["fit_seconds"])
            fold_seconds.append(time.monotonic() - now)
            scores.append(answer["score"])
            predictions.append(answer.get("predictions"))
            trial.report(float(np.mean(scores)), k)
            if k + 1 < n_folds and trial.should_prune():
                state = TrialState.PRUNED
                break
        value = float(np.mean(scores))
    except _OutOfTime as exc:
        state, error = TrialState.FAIL, str(exc)
        # what the whole trial would have taken, so the scheduler does not try it again in vain
        done = len(scores)
        search.durations.append((time.monotonic() - started) * n_folds / done if done else math.inf)
    except TrialFailure as failure:  # raised, crashed, or used too much memory in the worker
        if cancelled is not None and cancelled.is_set():  # its worker was stopped by an interrupt
            trial.set_user_attr("error", "interrupted")
            study.tell(trial, state=TrialState.FAIL)
            raise KeyboardInterrupt from None
        state, error = TrialState.FAIL, failure.reason if failure.kind == "error" else f"{failure.kind}: {failure.reason}"
        if failure.details:
            logger.debug("%s trial %d raised in the worker:\n%s", search.name, trial.number, failure.details)
    except Exception as exc:  # a faulty plugin fails its trial, not the run
        state, error = TrialState.FAIL, f"{type(exc).__name__}: {exc}"
        logger.debug("%s trial %d raised", search.name, trial.number, exc_info=True)
    except BaseException:
        trial.set_user_attr("error", "interrupted")
        study.tell(trial, state=TrialState.FAIL)
        raise
    finally:
        search.running -= 1
        heartbeat.join()
    duration = time.monotonic() - started
    trial.set_user_attr("fold_scores", scores)
    trial.set_user_attr("fold_fit_seconds", fit_seconds)
    trial.set_user_attr("duration", duration)
    if error:
        trial.set_user_attr("error", error)
    if state == TrialState.COMPLETE:
        frozen = study.tell(trial, value)
        search.completed += 1
        search.best = value if search.best is None else max(search.best, value)
        search.durations.append(duration)
        if pool is not None:
            pool.add(search.name, frozen.number, value, frozen.params, predictions, max(fit_seconds, default=0.0))
    elif state == TrialState.PRUNED:
        frozen = study.tell(trial, state=TrialState.PRUNED)
        search.durations.append(duration)
    else:
        frozen = study.tell(trial, state=TrialState.FAIL)
        search.failed += 1
        log = logger.info if error.startswith(BUDGET_STOP) else logger.warning
        log("%s trial %d failed: %s", search.name, trial.number, error)
    if on_trial is not None:
        on_trial(search, frozen)
