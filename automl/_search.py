"""The search: one Optuna study per model, trials scored by cross-validation, one shared budget.

Order of work:
1. every model's known-good default configuration, cheapest models first (after a warm start:
   the saved run's best configurations, in the order of its leaderboard);
2. further trials, each given to the model with the highest upper-confidence priority
   (normalized best score plus an exploration bonus that shrinks as a model gets trials),
   among the models whose typical trial still fits in the time left.
A trial reports its running CV mean after each fold, so the model's pruner can stop a bad
configuration after one or two folds. ``search_space`` and ``build`` run in this process; the
fits run in a worker process (``automl._runner``), told their share of the time left and
stopped by force past it. Everything the scheduler decides depends on scores, not on timings,
except where the budget runs out: with ``n_trials`` and room in the budget, the same seed
gives the same trials.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import socket
import statistics
import threading
import time
import warnings
import zlib
from collections.abc import Callable, Sequence

import numpy as np
import optuna
from optuna.storages._heartbeat import get_heartbeat_thread  # what study.optimize uses; ask/tell has no public form
from optuna.trial import TrialState

from ._ensemble import PredictionPool
from ._plugins import RegisteredModel
from ._runner import TrialFailure, WorkerRunner
from ._preprocess import make_model_pipeline
from ._spec import ModelContext

__all__ = ["ModelSearch", "run_search", "params_of", "build_pipeline"]

logger = logging.getLogger(__name__)

#: Exploration weight of the upper-confidence priority (scores are normalized to [0, 1]).
EXPLORATION = 0.4
#: A model with this many failed trials and no successful one is given no further trials.
MAX_FAILURES_WITHOUT_SUCCESS = 3
#: A model's first trial starts only with at least this many seconds left: less cannot train
#: and score a model on every fold of a table of any size.
MIN_SECONDS_FOR_FIRST_TRIAL = 2.0
#: Share of a fold's time that the fit may use; the rest is for predicting and scoring.
FIT_SHARE = 0.8
BUDGET_STOP = "stopped by the time budget"
#: Share of the search time left that a trial after the first round may use.
LATER_TRIAL_SHARE = 0.5
#: A trial still running at this multiple of its share is stopped and recorded as a timeout.
KILL_FACTOR = 1.5
HOST = socket.gethostname()


class _OutOfTime(Exception):
    pass


@dataclasses.dataclass
class ModelSearch:
    """The search state of one model: its study and what its trials have shown so far."""

    model: RegisteredModel
    study: optuna.Study
    #: the first round tries models in this order (then cheapest first): a warm start's ranking
    first_round_rank: int = 0
    started: int = 0
    #: trials of this model in progress (several workers may run one model's trials at once)
    running: int = 0
    completed: int = 0
    failed: int = 0
    best: float | None = None
    durations: list[float] = dataclasses.field(default_factory=list)
    fold_fit_seconds: list[float] = dataclasses.field(default_factory=list)

    @property
    def name(self) -> str:
        return self.model.spec.name

    def typical_trial_seconds(self) -> float:
        """Median duration of this model's trials; a floor for a model not tried yet."""
        return statistics.median(self.durations) if self.durations else MIN_SECONDS_FOR_FIRST_TRIAL

    def typical_refit_seconds(self, scale: float) -> float:
        """Expected seconds of the final refit, which sees ``scale`` times a trial fit's rows."""
        if not self.fold_fit_seconds:
            return 0.0
        return statistics.median(self.fold_fit_seconds) * scale

    def sync(self) -> None:
        """Recount from the study: other processes (``automl worker``) add trials to it too."""
        trials = [t for t in self.study.get_trials(deepcopy=False) if not lost_trial(t)]
        finished = [t for t in trials if t.state.is_finished()]
        values = [t.value for t in finished if t.state == TrialState.COMPLETE]
        self.started = sum(t.state != TrialState.WAITING for t in trials)
        self.completed = len(values)
        self.failed = sum(t.state == TrialState.FAIL for t in finished)
        self.best = max(values) if values else None
        self.durations = [
            t.user_attrs["duration"] for t in finished if t.state != TrialState.FAIL and "duration" in t.user_attrs
        ] or self.durations

    def exhausted(self, n_trials: int | None) -> bool:
        if n_trials is not None and self.started >= n_trials:
            return True
        return self.completed == 0 and self.failed >= MAX_FAILURES_WITHOUT_SUCCESS


def lost_trial(trial: optuna.trial.FrozenTrial) -> bool:
    """A trial failed by Optuna's heartbeat check: its process died without a word (it has
    none of the attributes every trial that ends here gets). It is retried as a new trial."""
    return trial.state == TrialState.FAIL and "duration" not in trial.user_attrs and "error" not in trial.user_attrs


def best_search(searches: list[ModelSearch]) -> ModelSearch | None:
    """The model with the best completed trial so far, or None."""
    scored = [s for s in searches if s.best is not None]
    return max(scored, key=lambda s: s.best) if scored else None


def params_of(spec, trial_params: dict, context: ModelContext) -> dict:
    """The ``build`` arguments of a finished trial, replayed through the model's search space."""
    return spec.search_space(optuna.trial.FixedTrial(dict(trial_params)), context)


def build_pipeline(model: RegisteredModel, params: dict, context: ModelContext, schema):
    estimator = model.spec.build(params, context)
    if not (hasattr(estimator, "fit") and hasattr(estimator, "predict")):
        raise TypeError(
            f"build() of model {model.spec.name!r} returned {type(estimator).__name__}, "
            "which is not an estimator (it needs fit and predict)"
        )
    return make_model_pipeline(schema, model.spec.preprocessing, estimator)


@contextlib.contextmanager
def _quiet_optuna():
    """Optuna logs every trial at INFO on its own handler; our progress lines replace that."""
    previous = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(previous)


def create_studies(
    models: Sequence[RegisteredModel], storage, prefix: str, seed: int, *, resume: bool = False, warm_start=None,
    join: bool = False,
) -> list[ModelSearch]:
    """One study per model; with ``resume``, existing studies are loaded and their state restored.
    With ``join`` (an ``automl worker`` joining a run), they are loaded as they are: trials
    running elsewhere are left running.

    A new study's first trials are the ``warm_start`` configurations of its model (an
    :class:`automl._warm_start.WarmStart`), best first, then the model's default parameters.
    """
    warm = warm_start.configurations if warm_start is not None else {}
    ranking = list(warm_start.ranking) if warm_start is not None else []
    searches = []
    for model in models:
        name = model.spec.name
        sampler = optuna.samplers.TPESampler(
            # a per-model seed, stable across processes (str hash() is salted per process)
            seed=(seed * 1_000_003 + zlib.crc32(name.encode())) % 2**32,
        )
        with _quiet_optuna():
            study = optuna.create_study(
                storage=storage,
                study_name=f"{prefix}{name}",
                direction="maximize",
                sampler=sampler,
                pruner=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=0),
                load_if_exists=resume or join,
            )
        search = ModelSearch(model, study, first_round_rank=ranking.index(name) if name in ranking else len(ranking))
        if join:
            search.sync()
        elif not study.get_trials(deepcopy=False):
            study.set_user_attr("model", name)
            with _quiet_optuna():
                for params in warm.get(name, []):
                    study.enqueue_trial(params, user_attrs={"warm_start": True}, skip_if_exists=True)
                if model.spec.default_params:
                    study.enqueue_trial(dict(model.spec.default_params), skip_if_exists=True)
        else:
            _restore(search)
        searches.append(search)
    return searches


def _restore(search: ModelSearch) -> None:
    """Rebuild a model's search state from its study; fail trials whose process died mid-way."""
    study = search.study
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        study._storage.set_trial_user_attr(trial._trial_id, "error", "abandoned: the process running it stopped")
        study.tell(trial.number, state=TrialState.FAIL)
    for trial in study.get_trials(deepcopy=False):
        if not trial.state.is_finished():
            continue
        search.started += 1
        search.fold_fit_seconds.extend(trial.user_attrs.get("fold_fit_seconds", []))
        duration = trial.user_attrs.get("duration")
        if trial.state == TrialState.COMPLETE:
            search.completed += 1
            search.best = trial.value if search.best is None else max(search.best, trial.value)
        elif trial.state == TrialState.FAIL:
            search.failed += 1
        if duration is not None and trial.state != TrialState.FAIL:
            search.durations.append(duration)
    logger.info("%s: resuming after %d finished trial(s)", search.name, search.started)


def run_search(
    searches: list[ModelSearch],
    runners: Sequence[WorkerRunner],
    n_folds: int,
    schema,
    context: ModelContext,
    *,
    stop_at: Callable[[], float],
    n_trials: int | None,
    on_trial: Callable[[ModelSearch, optuna.trial.FrozenTrial], None] | None = None,
    refit_fits: float = 1.25,
    shared: bool = False,
    pool: PredictionPool | None = None,
) -> None:
    """Run trials until every model is exhausted or ``time.monotonic()`` passes ``stop_at()``.

    ``search_space`` and ``build`` run here, in the parent; the built pipeline is fitted and
    scored in a runner's worker process, one fold per request. With several runners, each is
    driven by its own thread (the first by the calling thread, so Ctrl-C arrives where it is
    handled) and trials run in parallel; the scheduler hands out work under a lock.
    ``stop_at`` is re-read before each trial and fold: it moves as the expected cost of the
    final refit becomes known. ``shared``: other processes work on the same studies (a run
    on a database with ``automl worker`` processes), so the counts are re-read from the studies
    before each decision, and trials whose process stopped sending heartbeats are failed and
    retried. ``pool``: keeps the validation predictions of completed trials (for an ensemble).
    """
    scheduler = _Scheduler(searches, n_trials, stop_at, shared=shared)
    if on_trial is not None and len(runners) > 1:
        on_trial = _serialized(on_trial)

    def drive(runner: WorkerRunner) -> None:
        while (work := scheduler.next()) is not None:
            search, share, kill_share = work
            _run_trial(
                search, runner, n_folds, schema, context, stop_at, on_trial, share, refit_fits, kill_share,
                cancelled=scheduler.cancelled, pool=pool,
            )

    with _quiet_optuna():
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

    def __init__(self, drive: Callable[[WorkerRunner], None], runner: WorkerRunner):
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

    1. each model's first trial (its defaults, or a warm start's best), cheapest first (after a
       warm start, in the order of the saved leaderboard), an equal share each with one share
       kept for later; 2. upper-confidence allocation of the rest. Thread-safe.
    """

    def __init__(
        self, searches: list[ModelSearch], n_trials: int | None, stop_at: Callable[[], float], shared: bool = False
    ):
        self.searches = searches
        self.shared = shared
        self.n_trials = n_trials
        self.stop_at = stop_at
        self.cancelled = threading.Event()
        order = sorted(searches, key=lambda s: (s.first_round_rank, s.model.spec.cost))
        self._first = [s for s in order if not s.started]
        self._position = 0
        self._lock = threading.Lock()

    def next(self) -> tuple[ModelSearch, float, float] | None:
        """(model, share, kill share) of the next trial, counted as started; None when done."""
        with self._lock:
            if self.cancelled.is_set():
                return None
            if self.shared:
                self._sync()
            work = self._first_round() or self._later()
            if work is not None:
                work[0].started += 1
                work[0].running += 1  # from now on, stop_at() keeps time to refit this model
            return work

    def _sync(self) -> None:
        from optuna.exceptions import ExperimentalWarning
        from optuna.storages import fail_stale_trials

        for search in self.searches:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ExperimentalWarning)
                fail_stale_trials(search.study)  # a no-op unless the storage keeps heartbeats
            search.sync()

    def _first_round(self) -> tuple[ModelSearch, float, float] | None:
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
            return search, share, self._first_kill_share(share, untried, anything)
        return None

    @staticmethod
    def _first_kill_share(share: float, untried: int, anything: bool) -> float:
        """The share of the time left at which a first trial is stopped (times KILL_FACTOR).

        While other models are untried, a first trial never takes their time: it is stopped at
        its share, or, until some model has a score, at an equal share of the time left among
        the untried models (none kept for later: a short budget should still give the
        cheapest model's defaults). The last untried model, with nothing scored yet, may run
        until the search ends."""
        if anything:
            return share
        return 1.0 / untried

    def _later(self) -> tuple[ModelSearch, float, float] | None:
        search = _next_model(self.searches, self.n_trials, self.stop_at() - time.monotonic())
        if search is None:
            return None
        kill_share = LATER_TRIAL_SHARE if any(s.best is not None for s in self.searches) else 1.0
        return search, LATER_TRIAL_SHARE, kill_share


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


def _timed(context: ModelContext, until: float, fits_left: float, overhead: float = 0.0) -> ModelContext:
    """``context`` with ``time_limit`` set to one fit's share of the time left until ``until``,
    after ``overhead`` seconds per fit for what is not fitting (preprocessing, scoring, transfer)."""
    seconds_left = until - time.monotonic() - overhead * fits_left
    if not math.isfinite(seconds_left):
        return context
    return dataclasses.replace(context, time_limit=max(0.5, FIT_SHARE * seconds_left / max(fits_left, 1)))


def _run_trial(
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
