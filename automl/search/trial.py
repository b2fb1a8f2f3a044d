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
from collections.abc import Callable

import numpy as np
from optuna.storages._heartbeat import get_heartbeat_thread  # what study.optimize uses; ask/tell has no public form
from optuna.trial import TrialState

from .._signals import uninterrupted
from .._spec import ModelContext
from .ensemble import PredictionPool
from .studies import ModelSearch, build_pipeline
from .trial_process import TrialFailure, TrialProcess

__all__ = ["Assignment", "TrialSetup", "run_trial", "BUDGET_STOP", "TOO_SLOW", "too_slow"]

logger = logging.getLogger(__name__)

#: Share of a fold's time that the fit may use; the rest is for predicting and scoring.
FIT_SHARE = 0.8
BUDGET_STOP = "stopped by the time budget"
#: A trial still running at this multiple of its share is stopped and recorded as a timeout.
KILL_FACTOR = 1.5
HOST = socket.gethostname()


class _OutOfTime(Exception):
    pass


class _TooSlow(Exception):
    """The trial's model predicts more slowly than ``TrialSetup.max_predict_ms`` allows."""


#: How the status of a model (or an ensemble) slower than ``max_predict_ms`` begins.
TOO_SLOW = "predicts too slowly: "


def too_slow(ms: float, limit: float) -> str:
    return f"{TOO_SLOW}{ms:.1f} ms per 1,000 rows (max_predict_ms={limit:g})"


def _timed(context: ModelContext, until: float, fits_left: float, overhead: float = 0.0) -> ModelContext:
    """``context`` with ``time_limit`` set to one fit's share of the time left until ``until``,
    after ``overhead`` seconds per fit for what is not fitting (preprocessing, scoring, transfer)."""
    seconds_left = until - time.monotonic() - overhead * fits_left
    if not math.isfinite(seconds_left):
        return context
    return dataclasses.replace(context, time_limit=max(0.5, FIT_SHARE * seconds_left / max(fits_left, 1)))


@dataclasses.dataclass(frozen=True)
class Assignment:
    """A trial the scheduler hands out: its model; the ``share`` of the search time left that
    its fits are told they may use; ``kill_share``: it is stopped by force at ``KILL_FACTOR``
    times that share of the time left (or at the end of the search); ``patient``: until some model
    has a score, a first trial whose folds finish is not hanging, so once a fold has finished it
    may run on to its projected end, lest a short budget give no model at all."""

    search: ModelSearch
    share: float = 1.0
    kill_share: float = 1.0
    patient: bool = False


@dataclasses.dataclass(frozen=True)
class TrialSetup:
    """What every trial of a search shares: the folds, the schema and context of its pipelines,
    when the search stops (``stop_at()``, re-read as the refit's expected cost becomes known), the
    fits kept for the refit (``refit_fits``), whom to tell of a finished trial, the interrupt flag
    and the pool of validation predictions (for an ensemble)."""

    n_folds: int
    schema: list
    context: ModelContext
    stop_at: Callable[[], float]
    on_trial: Callable | None = None
    refit_fits: float = 1.25
    cancelled: threading.Event | None = None
    pool: PredictionPool | None = None
    #: a model slower to predict 1,000 rows fails its trial after the first fold (None: no limit)
    max_predict_ms: float | None = None


@dataclasses.dataclass
class _Folds:
    """What a trial's folds have shown so far."""

    scores: list[float] = dataclasses.field(default_factory=list)
    fit_seconds: list[float] = dataclasses.field(default_factory=list)
    seconds: list[float] = dataclasses.field(default_factory=list)
    predictions: list = dataclasses.field(default_factory=list)
    #: milliseconds to predict 1,000 rows, timed on the first fold's model (None until then)
    predict_ms: float | None = None


class _Clock:
    """A trial's times: when its fits are told to be done, and when it is stopped by force."""

    def __init__(self, assignment: Assignment, stop_at: Callable[[], float]):
        self.started = time.monotonic()
        left = stop_at() - self.started
        self.until = self.started + assignment.share * left
        # the hard limit, above its share, so that a fit that hangs cannot starve the other models
        # (never sooner than a few times its typical trial, which a busy machine can stretch)
        typical = assignment.search.typical_trial_seconds()
        self.kill_at = self.started + max(min(1.0, KILL_FACTOR * assignment.kill_share) * left, 3 * typical)

    def progressed(self, assignment: Assignment, folds: _Folds, n_folds: int) -> None:
        if assignment.patient:  # its folds finish: stopped only past its projected end
            projected = self.started + KILL_FACTOR * statistics.mean(folds.seconds) * n_folds
            self.kill_at = max(self.kill_at, projected)


def run_trial(assignment: Assignment, runner: TrialProcess, setup: TrialSetup) -> None:
    """One trial: its folds fitted in ``runner``'s trial process, each told its share of the time
    (``ModelContext.time_limit``), keeping room for ``setup.refit_fits`` more (the final refit,
    should this model win); recorded in its study. The scheduler has counted it in
    ``search.started`` and ``search.running``."""
    search = assignment.search
    study = search.study
    # every storage write below is whole or not at all: Ctrl-C waits for its end (automl._signals)
    with warnings.catch_warnings(), uninterrupted():
        # Optuna expects heartbeats with study.optimize; this loop keeps them itself, below
        warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used with Study.optimize")
        trial = study.ask()
    # a shared database learns that this process is alive; without heartbeats, another worker
    # fails the trial and runs it again (a no-op for storages without heartbeats)
    heartbeat = get_heartbeat_thread(trial._trial_id, study._storage)
    heartbeat.start()
    if runner.last_pid is not None:  # who runs it, from the start (a fold may replace the worker)
        with uninterrupted():
            trial.set_user_attr("worker", f"{HOST}:{runner.last_pid}")
    clock, folds = _Clock(assignment, setup.stop_at), _Folds()
    state, error = TrialState.COMPLETE, None
    try:
        state = _fit_folds(trial, assignment, runner, setup, clock, folds)
    except _OutOfTime as exc:
        state, error = TrialState.FAIL, str(exc)
        # what the whole trial would have taken, so the scheduler does not try it again in vain
        done = len(folds.scores)
        search.durations.append((time.monotonic() - clock.started) * setup.n_folds / done if done else math.inf)
    except _TooSlow as exc:
        state, error = TrialState.FAIL, str(exc)
    except TrialFailure as failure:  # raised, crashed, or used too much memory in the worker
        if setup.cancelled is not None and setup.cancelled.is_set():  # its worker was stopped by an interrupt
            with uninterrupted():
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
        with uninterrupted():
            trial.set_user_attr("error", "interrupted")
            study.tell(trial, state=TrialState.FAIL)
        raise
    finally:
        search.running -= 1
        heartbeat.join()
    _record(trial, search, setup, folds, (state, error, time.monotonic() - clock.started))


def _fit_folds(trial, assignment: Assignment, runner: TrialProcess, setup: TrialSetup, clock: _Clock, folds: _Folds):
    """Fit and score the folds one by one, reporting the running mean so that the pruner can
    stop a poor configuration early; returns the trial's state (complete or pruned)."""
    search, n_folds, stop_at = assignment.search, setup.n_folds, setup.stop_at
    params = search.model.spec.search_space(trial, _timed(setup.context, clock.until, n_folds + setup.refit_fits))
    if not isinstance(params, dict):
        raise TypeError(f"search_space() returned {type(params).__name__}, expected a dict")
    for k in range(n_folds):
        now = time.monotonic()
        # a model that cannot stop early overshoots by at most half a fold
        if now >= stop_at() or (folds.seconds and now + 0.5 * statistics.mean(folds.seconds) > stop_at()):
            raise _OutOfTime(f"{BUDGET_STOP} after {k} of {n_folds} folds")
        # built per fold: each fit is told its share of the time left (ModelContext.time_limit)
        overhead = statistics.mean(w - f for w, f in zip(folds.seconds, folds.fit_seconds)) if folds.seconds else 0.0
        timed = _timed(setup.context, clock.until, n_folds - k + setup.refit_fits, overhead)
        pipeline = build_pipeline(search.model, params, timed, setup.schema)
        answer = _fit_fold(trial, search, runner, pipeline, (k, n_folds), clock, stop_at)
        search.fold_fit_seconds.append(answer["fit_seconds"])
        folds.fit_seconds.append(answer["fit_seconds"])
        folds.seconds.append(time.monotonic() - now)
        folds.scores.append(answer["score"])
        folds.predictions.append(answer.get("predictions"))
        folds.predict_ms = answer.get("predict_ms", folds.predict_ms)
        limit = setup.max_predict_ms
        if limit is not None and folds.predict_ms is not None and folds.predict_ms > limit:
            raise _TooSlow(too_slow(folds.predict_ms, limit))
        clock.progressed(assignment, folds, n_folds)
        with uninterrupted():
            trial.report(float(np.mean(folds.scores)), k)
        if k + 1 < n_folds and trial.should_prune():
            return TrialState.PRUNED
    return TrialState.COMPLETE


def _fit_fold(trial, search: ModelSearch, runner: TrialProcess, pipeline, fold: tuple[int, int], clock: _Clock, stop_at) -> dict:
    """Fold ``k`` of ``n`` in the trial process, stopped at the kill time or the end of the search."""
    k, n_folds = fold
    limit = min(stop_at(), clock.kill_at)  # kill_at may lie past stop_at: the budget wins
    try:
        return runner.fit_fold(pipeline, k, timeout=limit - time.monotonic())
    except TrialFailure as failure:
        if failure.kind == "timeout" and limit >= stop_at():
            raise _OutOfTime(f"{BUDGET_STOP} during fold {k + 1} of {n_folds} ({failure.reason})") from None
        if failure.kind == "timeout":
            search.durations.append(math.inf)  # it cannot finish within any share: do not retry
            failure.reason = f"still running at the trial's time limit ({clock.kill_at - clock.started:.1f} s), stopped"
        raise
    finally:
        with uninterrupted():
            trial.set_user_attr("worker", f"{HOST}:{runner.last_pid}")


def _record(trial, search: ModelSearch, setup: TrialSetup, folds: _Folds, ending: tuple) -> None:
    """Tell the study how the trial ended, update the model's counts, tell the observer."""
    with uninterrupted():
        frozen = _told(trial, search, setup, folds, ending)
    if setup.on_trial is not None:
        setup.on_trial(search, frozen)


def _told(trial, search: ModelSearch, setup: TrialSetup, folds: _Folds, ending: tuple):
    """The trial's attributes and end written to its study; the model's counts updated."""
    state, error, duration = ending
    study = search.study
    trial.set_user_attr("fold_scores", folds.scores)
    trial.set_user_attr("fold_fit_seconds", folds.fit_seconds)
    trial.set_user_attr("duration", duration)
    if folds.predict_ms is not None:
        trial.set_user_attr("predict_ms", folds.predict_ms)
    if error:
        trial.set_user_attr("error", error)
    if state == TrialState.COMPLETE:
        value = float(np.mean(folds.scores))
        frozen = study.tell(trial, value)
        search.completed += 1
        search.best = value if search.best is None else max(search.best, value)
        search.durations.append(duration)
        if setup.pool is not None:
            setup.pool.add(
                search.name, frozen.number, value, frozen.params, folds.predictions,
                fit_seconds=max(folds.fit_seconds, default=0.0), predict_ms=folds.predict_ms,
            )
    elif state == TrialState.PRUNED:
        frozen = study.tell(trial, state=TrialState.PRUNED)
        search.durations.append(duration)
    else:
        frozen = study.tell(trial, state=TrialState.FAIL)
        search.failed += 1
        log = logger.info if error.startswith(BUDGET_STOP) else logger.warning
        log("%s trial %d failed: %s", search.name, trial.number, error)
    return frozen
