"""The search: one Optuna study per model, trials scored by cross-validation, one shared budget.

Order of work:
1. every model's known-good default configuration, cheapest models first (after a warm start:
   the saved run's best configurations, in the order of its leaderboard; with a portfolio: each
   model's first portfolio entry, in the portfolio's order, see ``automl.search.portfolio``);
2. the portfolio's other entries, in its order, across models;
3. further trials, each given to the model with the highest upper-confidence priority
   (normalized best score plus an exploration bonus that shrinks as a model gets trials),
   among the models whose typical trial still fits in the time left.
A trial reports its running CV mean after each fold, so the model's pruner can stop a bad
configuration after one or two folds. ``search_space`` and ``build`` run in this process; the
fits run in a worker process (``automl.search.trial_process``), told their share of the time left and
stopped by force past it. Everything the scheduler decides depends on scores, not on timings,
except where the budget runs out: with ``n_trials`` and room in the budget, the same seed
gives the same trials."""

from __future__ import annotations

import dataclasses
import logging
import math
import threading
import time
import warnings
from collections.abc import Callable, Sequence

from .studies import MIN_SECONDS_FOR_FIRST_TRIAL, ModelSearch, quiet_optuna
from .trial import Assignment, TrialSetup, run_trial
from .trial_process import TrialProcess

__all__ = ["run_search"]

logger = logging.getLogger(__name__)

#: Exploration weight of the upper-confidence priority (scores are normalized to [0, 1]).
EXPLORATION = 0.4
#: Share of the search time left that a trial after the first round may use.
LATER_TRIAL_SHARE = 0.5


def run_search(
    searches: list[ModelSearch], runners: Sequence[TrialProcess], setup: TrialSetup, *, n_trials: int | None,
    shared: bool = False, queue: Sequence[str] = (),
) -> None:
    """Run trials until every model is exhausted or ``time.monotonic()`` passes ``setup.stop_at()``.

    ``search_space`` and ``build`` run here, in the parent; the built pipeline is fitted and
    scored in a runner's trial process, one fold per request. With several runners, each is
    driven by its own thread (the first by the calling thread, so Ctrl-C arrives where it is
    handled) and trials run in parallel; the scheduler hands out work under a lock.
    ``stop_at`` is re-read before each trial and fold: it moves as the expected cost of the
    final refit becomes known. ``shared``: other processes work on the same studies (a run
    on a database with ``automl worker`` processes), so the counts are re-read from the studies
    before each decision, and trials whose process stopped sending heartbeats are failed and
    retried. ``queue``: the models to give the trials after the first round, in order, before
    the upper-confidence allocation (the portfolio's later entries, enqueued in their studies).
    """
    scheduler = _Scheduler(searches, n_trials, setup.stop_at, shared=shared, queue=queue)
    on_trial = setup.on_trial
    if on_trial is not None and len(runners) > 1:
        on_trial = _serialized(on_trial)
    setup = dataclasses.replace(setup, on_trial=on_trial, cancelled=scheduler.cancelled)

    def drive(runner: TrialProcess) -> None:
        while (assignment := scheduler.next()) is not None:
            run_trial(assignment, runner, setup)

    with quiet_optuna():
        helpers = [_DrivingThread(drive, runner) for runner in runners[1:]]
        for helper in helpers:
            helper.start()
        try:
            drive(runners[0])
        except BaseException:
            scheduler.cancelled.set()
            for runner in runners[1:]:
                runner.kill()  # their trials are abandoned, and recorded as interrupted
            raise
        finally:
            for helper in helpers:
                helper.join()
        for helper in helpers:
            if helper.error is not None:
                raise helper.error


class _DrivingThread(threading.Thread):
    """Drives one runner; an unexpected error is kept and raised in the calling thread."""

    def __init__(self, drive: Callable[[TrialProcess], None], runner: TrialProcess):
        super().__init__(name=f"automl-trials-{id(runner):x}", daemon=True)
        self._drive, self._runner = drive, runner
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._drive(self._runner)
        except BaseException as exc:  # noqa: BLE001 - re-raised by run_search
            self.error = exc


def _serialized(function: Callable) -> Callable:
    lock = threading.Lock()

    def call(*args, **kwargs):
        with lock:
            return function(*args, **kwargs)

    return call


class _Scheduler:
    """Decides which model gets the next trial, and the share of the time left it is told.

    1. each model's first trial (its defaults, a warm start's best or its first portfolio entry),
       cheapest first (after a warm start, in the order of the saved leaderboard; with a
       portfolio, in its order), an equal share each with one share kept for later; 2. the
       ``queue`` (the portfolio's later entries); 3. upper-confidence allocation of the rest.
       Thread-safe.
    """

    def __init__(
        self, searches: list[ModelSearch], n_trials: int | None, stop_at: Callable[[], float], shared: bool = False,
        queue: Sequence[str] = (),
    ):
        self.searches = searches
        self._queue = [s for name in queue for s in searches if s.name == name]
        self.shared = shared
        self.n_trials = n_trials
        self.stop_at = stop_at
        self.cancelled = threading.Event()
        order = sorted(searches, key=lambda s: (s.first_round_rank, s.model.spec.cost))
        self._first = [s for s in order if not s.started]
        self._position = 0
        self._lock = threading.Lock()

    def next(self) -> Assignment | None:
        """The next trial, counted as started; None when done."""
        with self._lock:
            if self.cancelled.is_set():
                return None
            if self.shared:
                self._sync()
            work = self._first_round() or self._later()
            if work is not None:
                work.search.started += 1
                work.search.running += 1  # from now on, stop_at() keeps time to refit this model
            return work

    def _sync(self) -> None:
        from optuna.exceptions import ExperimentalWarning
        from optuna.storages import fail_stale_trials

        for search in self.searches:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ExperimentalWarning)
                fail_stale_trials(search.study)  # a no-op unless the storage keeps heartbeats
            search.sync()

    def _first_round(self) -> Assignment | None:
        while self._position < len(self._first):
            i, search = self._position, self._first[self._position]
            self._position += 1
            # until some model has a score, the first trial runs in whatever time is left: a
            # short budget should give the cheapest model's defaults, not no model at all
            anything = any(s.best is not None for s in self.searches)
            if self.stop_at() - time.monotonic() < (MIN_SECONDS_FOR_FIRST_TRIAL if anything else 0.0):
                logger.info("too little time left for the first trial of %s", search.name)
                self._position = len(self._first)
                return None
            if search.exhausted(self.n_trials):
                continue
            # an equal share of what is left, with one share kept for the trials after the
            # first round: an expensive model cannot take the time of those not tried yet
            untried = len(self._first) - i
            share = 1.0 / (untried + 1)
            return Assignment(search, share, self._first_kill_share(share, untried, anything), patient=not anything)
        return None

    @staticmethod
    def _first_kill_share(share: float, untried: int, anything: bool) -> float:
        """The share of the time left at which a first trial is stopped (times KILL_FACTOR).

        While other models are untried, a first trial never takes all of their time. Once some
        model has a score, it is stopped at its equal share. Until then, a short budget should
        still give the cheapest model's defaults, and a slow model cannot be told from one that
        hangs: it may take half of the time left (stopped at 0.75 of it), the other half is kept
        for the untried models; such a trial is ``patient`` too (see ``Assignment``). The last
        untried model, with nothing scored yet, may run until the search ends. This first-round
        guarantee is part of the contract: whatever the order of the first trials, keep it."""
        if anything:
            return share
        return 1.0 if untried == 1 else 0.5

    def _later(self) -> Assignment | None:
        seconds_left = self.stop_at() - time.monotonic()
        # a trial lost with its process runs again before anything new (its study asks it first)
        retried = [s for s in self.searches if s.retries and seconds_left > 0 and not s.exhausted(self.n_trials)]
        search = retried[0] if retried else self._queued(seconds_left) or _next_model(
            self.searches, self.n_trials, seconds_left
        )
        if retried:
            retried[0].retries -= 1
        if search is None:
            return None
        kill_share = LATER_TRIAL_SHARE if any(s.best is not None for s in self.searches) else 1.0
        return Assignment(search, LATER_TRIAL_SHARE, kill_share)


    def _queued(self, seconds_left: float) -> ModelSearch | None:
        """The next model of the queue that can still take a trial in the time left (others are dropped)."""
        while self._queue:
            search = self._queue.pop(0)
            if not search.exhausted(self.n_trials) and search.typical_trial_seconds() <= seconds_left:
                return search
        return None


def _next_model(searches: list[ModelSearch], n_trials: int | None, seconds_left: float) -> ModelSearch | None:
    candidates = [s for s in searches if not s.exhausted(n_trials)]
    if seconds_left <= 0 or not candidates:
        return None
    fitting = [s for s in candidates if s.typical_trial_seconds() <= seconds_left]
    if not fitting:
        logger.info("stopping: no model's typical trial fits in the %.1f s left", seconds_left)
        return None
    bests = [s.best for s in searches if s.best is not None]
    low, high = (min(bests), max(bests)) if bests else (0.0, 0.0)
    total = sum(s.started for s in searches)

    def priority(s: ModelSearch) -> float:
        if s.best is None:
            quality = 0.0
        else:
            quality = (s.best - low) / (high - low) if high > low else 1.0
        return quality + EXPLORATION * math.sqrt(math.log(total + 1) / max(s.started, 1))

    # max() keeps the first of equals, and searches are in a fixed order: deterministic
    return max(fitting, key=priority)
