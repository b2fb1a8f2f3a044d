"""``fit_best``: validate, search, refit the winner, save the run."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import hashlib
import itertools
import logging
import math
import numbers
import os
import secrets
import signal
import statistics
import sys
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd
from sklearn.model_selection import train_test_split

from ..data.schema import as_table, infer_schema, prepare_target
from ..store.ensemble import ENSEMBLE, make_ensemble
from ..search.ensemble import PredictionPool, Selection, prediction_scorer, select_ensemble
from .._exceptions import InputError, Interrupted, SearchError
from .._metrics import resolve_scorer
from ..store.persist import RUN_FILE, STUDY_FILE, library_versions, read_json, save_run, write_json
from .._plugins import RegisteredModel, call_each, collect_models, get_plugin_manager
from ..data.profile import profile_table
from ..search.leaderboard import REFIT_FAILED, leaderboard_frame, mark_saved, trial_record, trials_frame
from ..store.result import Result
from ..search.trial_process import TrialFailure, WorkerRunner
from ..search.studies import ModelSearch, best_search, build_pipeline, create_studies, params_of
from ..search.scheduler import run_search
from .display import ProgressDisplay, choose_mode
from ..search.storage import REREAD_SECONDS, SharedRun, is_database_url, open_storage, wait_for_running_trials
from ..search.payload import SharedData
from .._spec import ModelContext, RunInfo
from ..data.validation import AUTO, Validation, choose_validation, make_folds, make_splitter, refit_scale
from .warm_start import read_warm_start

__all__ = ["fit_best"]

logger = logging.getLogger(__name__)

#: Seconds kept back for writing the run directory.
SAVE_ALLOWANCE = 1.0
#: Safety factor on the expected refit time when deciding to stop searching.
REFIT_MARGIN = 1.3
#: Seconds kept for the refit however fast the model: process round trips and pickling.
MIN_REFIT_RESERVE = 0.5
#: The search keeps at most this share of the budget for the final refit.
MAX_REFIT_SHARE = 0.35
#: Share of the refit's time its model is told it may use (ModelContext.time_limit): the rest is
#: for what no time limit stops, preparing the columns (5 s for 500,000 mixed rows) and pickling.
REFIT_FIT_SHARE = 0.6
#: A refit on a large table's sample is sized to take this share of its time limit.
REFIT_ROWS_SAFETY = 0.5
#: The search keeps time to refit this many of the best models besides the winner, the likely
#: members of an ensemble.
ENSEMBLE_RESERVE_MODELS = 3
#: An ensemble is saved only when its mean fold gain over the best model is at least this many
#: standard errors of the gains.
ENSEMBLE_MIN_GAIN_SE = 0.5
#: Share of the time left after the search (less the best model's refit) that choosing an
#: ensemble may take.
SELECTION_SHARE = 0.25
#: After Ctrl-C or SIGTERM, seconds at most for refitting the best model before saving it.
INTERRUPT_REFIT_SECONDS = 10.0


def fit_best(
    X: Any,
    y: Any,
    *,
    task: str = "auto",
    metric: str | None = None,
    time_budget: float | None = 60.0,
    n_trials: int | None = None,
    cv: int | str | Any = "auto",
    models: Sequence[str] | None = None,
    plugins: Iterable[object] = (),
    seed: int = 0,
    n_jobs: int = 1,
    storage: str | optuna.storages.BaseStorage | None = None,
    path: str | Path | None = None,
    test_size: float | None = None,
    save: bool = True,
    memory_limit: float | None = None,
    resume: bool = False,
    warm_start: str | Path | Result | None = None,
    verbose: int = 1,
    study_name: str | None = None,
    data_location: str | None = None,
    ensemble: bool = True,
) -> Result:
    """Find, tune and refit the best model for ``X`` → ``y`` among all registered model plugins.

    :param X: the features: a pandas DataFrame, a 2-D numpy array or a list of rows.
    :param y: the target, one value per row of ``X``.
    :param task: ``"auto"`` (infer from ``y``: numeric targets with fractional values or more
        than 20 distinct values are a regression, the rest classification), ``"binary"``,
        ``"multiclass"``, ``"regression"`` or ``"classification"`` (binary or multiclass by
        the number of classes).
    :param metric: a scikit-learn scorer name (greater is better). Defaults: ``roc_auc``
        (binary), ``neg_log_loss`` (multiclass), ``neg_root_mean_squared_error`` (regression).
    :param time_budget: seconds for the whole call, final refit and save included; ``None``
        for no limit (then ``n_trials`` is required).
    :param n_trials: at most this many trials per model.
    :param cv: ``"auto"`` (default), a number of folds (stratified for classification; shuffled
        and seeded) or a scikit-learn splitter. ``"auto"`` uses 5 folds, and on tables that are
        large for the budget 3 folds, or a 20% holdout, with each trial fitted on a sample of
        at most ``max(50,000, 2,000,000 / columns)`` rows (see ``automl.data.validation``); the
        manifest's ``validation`` records what was used. The final model is refit on all rows,
        or, when trials were fitted on samples and that would not fit in the time left, on the
        largest seeded sample that does (the manifest's ``refit_rows``).
    :param models: names of the models to try (default: every model that supports the task).
    :param plugins: extra plugin objects (modules or instances with ``@automl.hookimpl``
        functions) registered for this call only.
    :param seed: seeds the folds, the samplers and the models.
    :param n_jobs: trials run in parallel, each in its own worker process (``-1``: one per
        core). The cores are shared out: each fit may use ``cores // n_jobs`` threads
        (``ModelContext.n_jobs``). With more than one, which trials finish first depends on
        timing, so runs are no longer repeatable trial for trial.
    :param storage: an Optuna storage URL or object for the studies, instead of the journal
        file in the run directory.
    :param path: the run directory to write (it must not exist yet, or be empty); default
        ``automl-runs/<UTC time>-<id>/`` under the working directory.
    :param test_size: fraction of rows (e.g. 0.2) held out of the search; the winner's score
        on them is reported next to its CV score. Columns are typed and profiled on the search
        rows only. The final model is refit on all rows, with that schema.
    :param save: write the run directory (default). With ``False`` the studies live in memory.
    :param memory_limit: megabytes a trial's worker process may use; a trial seen using more
        (its resident memory is read every 50 ms while it works, on Linux) is stopped and
        recorded as failed. A watch, not a hard cap: a fast allocation can pass it briefly.
    :param resume: continue the run in ``path`` (after an interrupt or a crash) with the same
        data and settings: finished trials are kept and not repeated.
    :param warm_start: a saved run directory (or a :class:`Result`) of the same task, e.g. the
        last training on older data: each model's search starts from that run's best
        configurations (up to 3, best first), and models are tried in the order of its
        leaderboard. The data may differ; the saved run is only read.
    :param study_name: with a database ``storage`` URL, the name under which this run is
        recorded there, so that ``automl worker --storage URL --study NAME`` processes on
        other machines join its search (see ``automl.search.storage`` and ``automl.fit.peer``). This call is the
        coordinator: it searches too, and refits and saves the winner found by anyone.
    :param data_location: with ``study_name``: a path or URL every worker can read the same
        table from (features and the target column, as CSV or Parquet). The CLI records the
        data file it was given.
    :param ensemble: also consider a weighted average of the best trials (greedy ensemble
        selection on their validation predictions, see ``automl.search.ensemble``); it is saved
        instead of the best single model only when its CV score is better and its members can be
        refit in the time left. Not used when trials fit on samples of a large table.
    :param verbose: ``1`` (default) shows the search's progress on standard error: a live
        display in a terminal or a Jupyter notebook, a plain line every few seconds in logs and
        pipes. ``0`` shows nothing (log records still go wherever logging sends them).
    :return: a :class:`automl.Result`.
    :raises InputError: for unusable data or arguments (nothing is written).
    :raises SearchError: when no trial of any model succeeds (no model file is written).
    :raises Interrupted: after Ctrl-C or SIGTERM, once the best model so far is saved.

    Every trial is fitted in a worker process: a fit that hangs is stopped when the budget
    runs out, one that crashes or exceeds ``memory_limit`` fails only its trial, and the call
    returns within ``time_budget * 1.05 + 5`` seconds whatever a plugin does.
    """
    started = time.monotonic()
    _check_budget(time_budget, n_trials)
    time_budget = float(time_budget) if time_budget is not None else None
    n_trials = int(n_trials) if n_trials is not None else None
    if not isinstance(verbose, numbers.Integral) or verbose < 0:
        raise InputError(f"verbose must be 0 (no progress display) or 1, got {verbose!r}")
    if not isinstance(n_jobs, numbers.Integral) or isinstance(n_jobs, bool) or not (n_jobs >= 1 or n_jobs == -1):
        raise InputError(f"n_jobs must be a positive integer (or -1 for one worker per core), got {n_jobs!r}")
    cores = _available_cores()
    n_workers = cores if n_jobs == -1 else int(n_jobs)
    if n_workers > cores:
        logger.warning("n_jobs=%d is more than the %d cores available: trials will compete for them", n_workers, cores)
    if memory_limit is not None and (isinstance(memory_limit, bool) or not isinstance(memory_limit, (int, float)) or memory_limit <= 0):
        raise InputError(f"memory_limit must be a positive number of megabytes (or None), got {memory_limit!r}")
    if not isinstance(ensemble, bool):
        raise InputError(f"ensemble must be True or False, got {ensemble!r}")
    if resume and path is None:
        raise InputError("resume=True needs path=, the run directory to continue")
    deadline = started + time_budget if time_budget is not None else math.inf
    # the promise: however a plugin behaves, the call returns by this time
    hard_deadline = started + time_budget * 1.05 + 5.0 if time_budget is not None else math.inf

    table = as_table(X)
    y_all, task = prepare_target(y, len(table), task)
    metric_name, scorer = resolve_scorer(metric, task)
    plugin_manager = get_plugin_manager(plugins)
    registered = collect_models(plugin_manager)
    chosen = _choose_models(registered, models, task)
    warm = read_warm_start(warm_start, task, [m.spec.name for m in chosen]) if warm_start is not None else None

    search_rows, test_rows = _split_test(y_all, test_size, task, seed)
    X_search, y_search = table.iloc[search_rows].reset_index(drop=True), y_all[search_rows]
    # typed and profiled on the search rows only, so that held-out rows cannot decide which
    # columns are kept or how they are read; the final refit on all rows keeps this schema
    schema = infer_schema(X_search)
    # summarised before the search, so that its time is inside the budget (for automl.evaluate's drift checks)
    data_profile = profile_table(X_search, schema)
    validation = _recorded_validation(path) if resume and cv == AUTO else None
    validation = validation or choose_validation(cv, len(X_search), table.shape[1], time_budget)
    splitter = make_splitter(cv, validation, task, seed)
    folds = make_folds(splitter, X_search, y_search, task, validation, seed)
    if validation is not None and validation.reason != f"cv={cv}":
        logger.info("validation: %s (%s)", validation.describe(), validation.reason)
    scale = refit_scale(folds, len(X_search))
    classes = list(np.unique(y_all)) if task != "regression" else None
    n_classes = len(classes) if classes is not None else 0
    sampled = validation is not None and validation.max_train_rows is not None
    pool = None
    if ensemble and not sampled and PredictionPool.affordable(len(X_search), n_classes):
        # the true values of each fold's validation rows, in the order the worker predicts them
        pool = PredictionPool([y_search[valid] for _, valid in folds], classes)
    context = ModelContext(
        task=task, seed=seed, n_samples=len(X_search), n_features=table.shape[1],
        # the cores are shared out between the workers, so that N of them do not oversubscribe
        n_classes=n_classes, n_jobs=max(1, cores // n_workers),
    )
    settings = {
        "task": task, "metric": metric_name, "cv": str(splitter), "seed": seed, "test_size": test_size,
        "validation": validation.to_dict() if validation is not None else None,
        "models": [m.spec.name for m in chosen], "data_sha256": _fingerprint(table, y_all),
    }

    storage_label = _describe_storage(storage) if storage is not None else None
    shared_name = None
    if is_database_url(storage):
        storage = open_storage(storage)  # with heartbeats: a worker that dies has its trial retried
    if study_name is not None:
        shared_name = _check_shared_run(study_name, storage, cv, resume, n_trials)
    elif data_location is not None:
        raise InputError("data_location= is for runs with study_name=, which workers join")

    run_dir = None
    if resume:
        run_dir = _resume_directory(Path(path), settings)
    elif save:
        run_dir = _new_run_directory(path)
    embedded = storage is None and run_dir is not None
    if embedded:
        storage = optuna.storages.JournalStorage(
            optuna.storages.journal.JournalFileBackend(str(run_dir / STUDY_FILE))
        )
    if resume:
        recorded = read_json(run_dir / RUN_FILE)
        if recorded.get("embedded_storage", True) != embedded:
            raise InputError(
                f"the run in {run_dir} kept its studies {'in the run directory' if recorded.get('embedded_storage', True) else 'in a storage URL'}; "
                "resume it with the same storage= as the first call"
            )
        prefix = recorded.get("study_prefix", "")
    elif shared_name is not None:
        prefix = f"{shared_name}/"
    else:
        # a shared database may hold many runs: keep this run's study names apart
        prefix = "" if embedded else f"{run_dir.name if run_dir else 'run'}-{secrets.token_hex(4)}/"
    if run_dir is not None and not resume:
        write_json(run_dir / RUN_FILE, {**settings, "created": _now(), "study_prefix": prefix, "embedded_storage": embedded})
    shared_run = None
    if shared_name is not None:
        shared_run = SharedRun.create(storage, shared_name, {
            **settings, "n_trials": n_trials, "data": data_location,
            "target": str(y.name) if getattr(y, "name", None) is not None else None,
            "search_until": time.time() + (deadline - time.monotonic() if math.isfinite(deadline) else 365 * 86400),
        })
    searches = create_studies(chosen, storage, prefix, seed, resume=resume, warm_start=warm)
    n_refits = 2 if test_rows is not None else 1

    # one payload for every worker; a large table is mapped from one file, not copied to each
    shared_data = SharedData(
        {"X": table, "y": y_all, "search_rows": search_rows, "test_rows": test_rows, "folds": folds},
        {"scorer": scorer, "classification": task != "regression", "collect_predictions": pool is not None},
    )
    runners = [WorkerRunner(shared_data.payload, threads=context.n_jobs, memory_limit=memory_limit) for _ in range(n_workers)]
    runner = runners[0]  # it also refits the winner

    def stop_at() -> float:
        # time to refit the best model, or the one being tried, which may become the best
        contenders = [s for s in searches if s.running or s is best_search(searches)]
        refit = max((s.typical_refit_seconds(scale) for s in contenders), default=0.0) * n_refits
        if pool is not None:  # and the likely members of an ensemble, refit on all rows too
            refit += _ensemble_reserve(searches, scale) * n_refits
        # a refit that would take more is told less time (ModelContext.time_limit): trials fitted
        # on a sample of a large table must not make the search stop at once
        refit = min(max(refit, MIN_REFIT_RESERVE), MAX_REFIT_SHARE * time_budget if time_budget else math.inf)
        # a worker lost at the end must be replaced before the refit
        return deadline - REFIT_MARGIN * refit - runner.start_seconds - (SAVE_ALLOWANCE if run_dir is not None else 0.0)

    logger.info(
        "searching %d model(s) for %s on %d rows x %d columns, metric %s, budget %s",
        len(searches), task, len(table), table.shape[1], metric_name,
        f"{time_budget:g} s" if time_budget is not None else "none",
    )
    run_info = RunInfo(
        task=task, metric=metric_name, models=tuple(s.name for s in searches), n_rows=len(table),
        n_columns=table.shape[1], time_budget=time_budget, n_trials=n_trials, seed=seed, path=run_dir,
        started=_now(),
    )
    observe = _Observers(plugin_manager, run_info)
    observe("automl_run_started")
    progress = _Progress(searches, started, time_budget)
    display = ProgressDisplay(searches, metric_name, started, time_budget, mode=choose_mode(verbose, sys.stderr))

    def on_trial(search: ModelSearch, trial: optuna.trial.FrozenTrial) -> None:
        if shared_run is not None:  # the workers stop when this process stops searching
            shared_run.update(search_until=time.time() + (stop_at() - time.monotonic()))
        progress(search, trial)
        observe("automl_trial_completed", record=trial_record(search.name, trial))

    interrupted = None
    try:
        with _signals_as_interrupts():
            display.start()
            try:
                _start_workers(runners, memory_limit)
                run_search(
                    searches, runners, len(folds), schema, context,
                    stop_at=stop_at, n_trials=n_trials, on_trial=on_trial,
                    refit_fits=n_refits * scale, shared=shared_run is not None, pool=pool,
                )
            except KeyboardInterrupt as exc:
                interrupted = getattr(exc, "signal_name", "SIGINT")
                runner.kill()  # whatever it was fitting is abandoned
                logger.warning("interrupted (%s): refitting the best model found so far", interrupted)
                # a short refit window: an interrupted user wants control back within seconds
                deadline = hard_deadline = min(hard_deadline, time.monotonic() + INTERRUPT_REFIT_SECONDS)

            if shared_run is not None:
                _gather_workers(shared_run, searches, stop_at, interrupted)
                for search in searches:
                    search.sync()  # the best trials of every worker
            trials = trials_frame(searches)
            leaderboard = leaderboard_frame(searches, trials)
            display.phase = "refitting the best model"

            def refit_winner(until: float, hard_until: float):
                return _refit_winner(
                    searches, leaderboard, context, schema, runner, until, hard_until, test_rows is not None, scale,
                    len(table), sampled,
                )

            refit_failures: dict[str, str] = {}  # model -> why its refit failed, in the order tried
            try:
                outcome = None
                if pool is not None and not interrupted:
                    outcome = _refit_ensemble(
                        pool, searches, scorer, task, context, schema, runner, deadline, hard_deadline,
                        test_rows is not None, scale,
                    )
                if outcome is not None:
                    leaderboard = _with_ensemble(leaderboard, outcome.row)
                if outcome is not None and outcome.refit is not None:
                    winner_name, winner_score, params, refit = ENSEMBLE, outcome.selection.score, outcome.params, outcome.refit
                else:
                    if outcome is not None and outcome.row["status"].startswith(REFIT_FAILED):
                        refit_failures[ENSEMBLE] = outcome.row["status"][len(REFIT_FAILED):]
                    winner, params, refit, failed = refit_winner(deadline, hard_deadline)
                    refit_failures.update(failed)
                    winner_name, winner_score = winner.name, float(winner.best)
                display.saved = (winner_name, winner_score)
            except KeyboardInterrupt as exc:
                if interrupted:
                    raise  # a second interrupt: stop now; the study is intact for resume=True
                interrupted = getattr(exc, "signal_name", "SIGINT")
                runner.kill()
                logger.warning("interrupted (%s) during the refit: refitting within %g s", interrupted, INTERRUPT_REFIT_SECONDS)
                window = time.monotonic() + INTERRUPT_REFIT_SECONDS
                winner, params, refit, failed = refit_winner(window, window)
                refit_failures.update(failed)
                winner_name, winner_score = winner.name, float(winner.best)
    finally:
        display.stop()
        for each in runners:
            each.close()
        shared_data.close()
        if shared_run is not None and shared_run.settings.get("state") == "searching":
            shared_run.update(state="stopped")  # whatever went wrong, the workers stop too

    test_score = refit.get("test_score")
    if test_score is not None:
        leaderboard.loc[leaderboard["model"] == winner_name, "test_score"] = test_score
    leaderboard = mark_saved(leaderboard, winner_name, refit_failures)
    result = Result(
        model_bytes=refit["model"], model_name=winner_name, params=params, score=winner_score,
        test_score=test_score, metric=metric_name, task=task, leaderboard=leaderboard,
        trials=trials, path=run_dir,
    )
    manifest = {
        "format": 1,
        "model": winner_name,
        "params": params,
        **{k: v for k, v in settings.items() if k not in ("models",)},
        "cv_score": result.score,
        "refit_rows": refit.get("rows"),
        # the models (or the ensemble) that ranked above the saved one, but whose refit failed
        "refit_fallback": (
            {"failed": [{"model": m, "reason": r} for m, r in refit_failures.items()], "saved": winner_name}
            if refit_failures else None
        ),
        "cv_std": float(leaderboard.loc[leaderboard["model"] == winner_name, "std"].iloc[0]),
        # the ensemble considered (saved or not): its members, weights and fold scores
        "ensemble": outcome.manifest_entry() if outcome is not None else None,
        "test_score": test_score,
        "target": str(y.name) if getattr(y, "name", None) is not None else None,
        "classes": refit.get("classes"),
        "columns": [c.to_dict() for c in schema],
        "data_profile": data_profile,
        "n_rows": len(table),
        "time_budget": time_budget,
        "n_trials": n_trials,
        "memory_limit": memory_limit,
        "n_jobs": n_workers,
        "models": [s.name for s in searches],
        "studies": {s.name: s.study.study_name for s in searches},
        "storage": STUDY_FILE if embedded else storage_label,
        "study_name": shared_name,
        "interrupted": interrupted,
        "resumed": bool(resume),
        "warm_start": warm.describe() if warm is not None else None,
        "created": _now(),
        "versions": library_versions(),
    }
    if run_dir is not None:
        manifest["seconds"] = round(time.monotonic() - started, 3)
        result.manifest = save_run(run_dir, result, manifest)
        logger.info("saved the run to %s", run_dir)
    else:
        result.manifest = manifest
    if shared_run is not None:
        shared_run.update(state="finished", model=winner_name, cv_score=result.score)
    observe("automl_run_finished", result=result)
    if interrupted:
        where = f"saved in {run_dir}" if run_dir is not None else "not saved (save=False)"
        raise Interrupted(interrupted, run_dir, f"interrupted by {interrupted}; the best model so far is {where}")
    logger.info(
        "best model: %s, %s %.4f (%.1f s in all)",
        winner_name, metric_name, result.score, time.monotonic() - started,
    )
    return result


def _start_workers(runners: list[WorkerRunner], memory_limit) -> None:
    """Start the worker processes side by side (each loads the data)."""
    failures: list[TrialFailure] = []

    def start(runner: WorkerRunner) -> None:
        try:
            runner.ensure_started()
        except TrialFailure as failure:
            failures.append(failure)

    threads = [threading.Thread(target=start, args=(r,), daemon=True) for r in runners[1:]]
    for thread in threads:
        thread.start()
    start(runners[0])
    for thread in threads:
        thread.join()
    if failures:
        failure = failures[0]
        if failure.kind == "memory":
            raise InputError(
                f"memory_limit={memory_limit:g} MB is below what a worker needs with this data loaded "
                f"({failure.reason}); raise memory_limit"
            ) from None
        raise SearchError(f"the worker process could not start: {failure.reason}") from None


def _gather_workers(shared_run: SharedRun, searches: list[ModelSearch], stop_at, interrupted) -> None:
    """End the shared search so that the result holds every trial the database will hold: let the
    workers finish the trials they run while search time is left (a trial cap stops this process
    first), then tell them to stop and wait a moment for those that stop at a fold's end."""
    studies = [search.study for search in searches]
    if not interrupted:
        wait_for_running_trials(studies, until=stop_at())
    shared_run.update(state="refitting")  # the workers start no more trials
    # a worker sees the new state within REREAD_SECONDS and stops after the fold it fits
    fold = max((statistics.mean(s.fold_fit_seconds) for s in searches if s.fold_fit_seconds), default=0.0)
    still = wait_for_running_trials(studies, until=time.monotonic() + REREAD_SECONDS + min(2 * fold, 30.0))
    if still:
        logger.warning("%d trial(s) of other workers still running are left out of this run's result", still)


def _check_shared_run(name, storage, cv, resume, n_trials) -> str:
    """The run's name in a shared database, once it is known that workers can join it."""
    if not isinstance(storage, optuna.storages.RDBStorage):
        raise InputError(
            "study_name= needs storage= a database URL (e.g. postgresql://user:password@host/db) that the "
            "workers can reach"
        )
    if not isinstance(name, str) or not name or "/" in name:
        raise InputError(f"study_name must be a non-empty name without '/', got {name!r}")
    if resume:
        raise InputError("resume=True does not combine with study_name=; start a new run with a new name")
    if not (cv == AUTO or isinstance(cv, numbers.Integral) and not isinstance(cv, bool)):
        raise InputError("study_name= needs cv='auto' or a number of folds, so that workers make the same folds")
    try:
        storage.get_study_id_from_name(name)
    except KeyError:
        return name
    raise InputError(
        f"the storage already holds a run named {name!r}; choose another --study name (workers join a run by its name)"
    )


def _available_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _check_budget(time_budget, n_trials) -> None:
    if time_budget is not None:
        if isinstance(time_budget, bool) or not isinstance(time_budget, numbers.Real) or not time_budget > 0:
            raise InputError(f"time_budget must be a positive number of seconds (or None), got {time_budget!r}")
    if n_trials is not None:
        if isinstance(n_trials, bool) or not isinstance(n_trials, numbers.Integral) or n_trials < 1:
            raise InputError(f"n_trials must be a positive integer (or None), got {n_trials!r}")
    if time_budget is None and n_trials is None:
        raise InputError("set time_budget, n_trials or both; with neither the search would never end")


def _choose_models(registered: dict[str, RegisteredModel], models, task: str) -> list[RegisteredModel]:
    if models is None:
        chosen = [m for m in registered.values() if task in m.spec.tasks]
        if not chosen:
            raise InputError(f"no registered model supports task {task!r}; install a plugin that does")
        return chosen
    if isinstance(models, str):
        models = [models]
    models = list(dict.fromkeys(models))
    if not models:
        raise InputError("models is empty; pass model names or None for all models")
    unknown = [m for m in models if m not in registered]
    if unknown:
        raise InputError(f"unknown model(s) {unknown}; registered models: {sorted(registered)}")
    unsuited = [m for m in models if task not in registered[m].spec.tasks]
    if unsuited:
        suited = sorted(n for n, m in registered.items() if task in m.spec.tasks)
        raise InputError(f"model(s) {unsuited} do not support task {task!r}; models that do: {suited}")
    return [registered[m] for m in models]


def _split_test(y, test_size, task, seed):
    """Row positions for the search and for the held-out test (None without ``test_size``)."""
    rows = np.arange(len(y))
    if test_size is None:
        return rows, None
    if isinstance(test_size, bool) or not isinstance(test_size, float) or not 0 < test_size < 1:
        raise InputError(f"test_size must be a fraction between 0 and 1 (e.g. 0.2), got {test_size!r}")
    stratify = y if task != "regression" else None
    try:
        search_rows, test_rows = train_test_split(rows, test_size=test_size, random_state=seed, stratify=stratify)
    except ValueError as exc:
        raise InputError(f"cannot hold out test_size={test_size}: {exc}") from None
    return np.sort(search_rows), np.sort(test_rows)


def _recorded_validation(path) -> Validation | None:
    """The validation plan of the run being resumed, so that it continues on the same folds."""
    recorded = read_json(Path(path) / RUN_FILE) if path is not None and (Path(path) / RUN_FILE).is_file() else {}
    return Validation.from_dict(recorded["validation"]) if recorded.get("validation") else None


def _fingerprint(table: pd.DataFrame, y: np.ndarray) -> str:
    """A checksum of the data, so that a resumed run is known to continue on the same table."""
    digest = hashlib.sha256()
    digest.update(",".join(table.columns).encode())
    try:
        digest.update(pd.util.hash_pandas_object(table, index=False).to_numpy().tobytes())
    except TypeError:  # unhashable cells (lists, dicts): their text stands in for them
        digest.update(pd.util.hash_pandas_object(table.astype(str), index=False).to_numpy().tobytes())
    digest.update(pd.util.hash_pandas_object(pd.Series(y), index=False).to_numpy().tobytes())
    return digest.hexdigest()


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def _resume_directory(directory: Path, settings: dict) -> Path:
    if not (directory / RUN_FILE).is_file():
        raise InputError(f"nothing to resume in {directory}: it holds no {RUN_FILE} (start it with path= and without resume)")
    recorded = read_json(directory / RUN_FILE)
    if recorded.get("data_sha256") != settings["data_sha256"]:
        raise InputError(
            f"the data differs from the data the run in {directory} was started with; resume it with the "
            "same X and y, or start a new run"
        )
    for key in ("task", "metric", "seed", "cv", "test_size", "models"):
        if recorded.get(key) != settings[key]:
            raise InputError(
                f"{key} differs from the run in {directory}: it was {recorded.get(key)!r}, now {settings[key]!r}; "
                "resume with the same settings, or start a new run"
            )
    return directory


@contextlib.contextmanager
def _signals_as_interrupts():
    """SIGTERM (and SIGINT, as usual) raise :class:`Interrupted` while the search runs."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise Interrupted(signal.Signals(signum).name)

    previous = {}
    for signum in (signal.SIGINT, signal.SIGTERM):
        current = signal.getsignal(signum)
        # leave handlers that the application installed alone
        if current in (signal.default_int_handler, signal.SIG_DFL):
            previous[signum] = current
            signal.signal(signum, handler)
    try:
        yield
    finally:
        for signum, current in previous.items():
            signal.signal(signum, current)


def _new_run_directory(path) -> Path:
    if path is None:
        stamp = _dt.datetime.now(_dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        directory = Path("automl-runs") / f"{stamp}-{secrets.token_hex(3)}"
    else:
        directory = Path(path)
        if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
            raise InputError(
                f"{directory} already exists and is not an empty directory; choose a new path "
                "so the earlier run stays untouched"
            )
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def _refit_winner(
    searches, leaderboard, context, schema, runner, deadline, hard_deadline, with_test, scale, n_rows, sampled
):
    """Refit the best model on all rows in the worker; if that fails or runs out of time, the
    next best that has time left. Returns (search, params, the worker's refit answer, and the
    reason each model tried before it failed, by name).

    ``sampled``: the trials fitted on samples of a large table; then a refit expected to take
    longer than its time is made on as many rows as fit in it (never fewer than a trial's)."""
    by_name = {s.name: s for s in searches}
    ranked = [by_name[name] for name in leaderboard["model"] if name in by_name and by_name[name].best is not None]
    if not ranked:
        summary = "; ".join(f"{row.model}: {row.status}" for row in leaderboard.itertuples())
        advice = (
            "Fix the errors named above (run with logging at DEBUG for tracebacks)"
            if any(row.status.startswith("all trials failed") for row in leaderboard.itertuples())
            else "Raise time_budget"
        )
        raise SearchError(f"no trial of any model succeeded, so there is no model to save ({summary}). {advice}.")
    failures: dict[str, str] = {}
    candidates = list(ranked)
    for attempt in itertools.count():
        # the winner may use half the grace between the budget and the hard deadline; a
        # fallback, should the winner fail, the rest
        until = hard_deadline
        if attempt == 0 and math.isfinite(deadline):
            until = deadline + 0.5 * (hard_deadline - deadline)
        seconds = until - time.monotonic() - SAVE_ALLOWANCE
        if not candidates or (attempt > 0 and seconds <= 0):
            break
        search = candidates[0]
        if attempt > 0:
            # the best ranked whose refit is expected to fit in the time left, else the quickest
            fitting = [s for s in candidates if s.typical_refit_seconds(scale) <= seconds]
            search = fitting[0] if fitting else min(candidates, key=lambda s: s.typical_refit_seconds(scale))
        candidates.remove(search)
        limit = REFIT_FIT_SHARE * seconds / (2 if with_test else 1)
        timed = dataclasses.replace(context, time_limit=max(0.5, limit) if math.isfinite(limit) else None)
        try:
            params = params_of(search.model.spec, search.study.best_trial.params, timed)
            test_score = None
            if with_test:
                test_score = _test_score(search, params, timed, schema, runner, until)
            pipeline = build_pipeline(search.model, params, timed, schema)
            max_rows = _refit_rows(search, scale, n_rows, limit) if sampled else None
            final = runner.refit(
                pipeline, on_search_rows=False, timeout=max(0.1, until - time.monotonic() - SAVE_ALLOWANCE),
                max_rows=max_rows, seed=context.seed,
            )
            return search, params, {**final, "test_score": test_score}, failures
        except (TrialFailure, Exception) as exc:
            reason = _reason(exc)
            failures[search.name] = reason
            logger.warning("refitting %s on all rows failed (%s); trying the next model", search.name, reason)
    raise SearchError(
        "no model could be refit on all rows in the time left: "
        + "; ".join(f"{name}: {reason}" for name, reason in failures.items())
    )


def _ensemble_reserve(searches: list[ModelSearch], scale: float) -> float:
    """Expected seconds to refit an ensemble of the best models: the best one again (its own
    refit stays reserved, should the ensemble fail) and the next ``ENSEMBLE_RESERVE_MODELS``."""
    scored = sorted((s for s in searches if s.best is not None), key=lambda s: -s.best)
    return sum(s.typical_refit_seconds(scale) for s in scored[:1 + ENSEMBLE_RESERVE_MODELS])


@dataclasses.dataclass
class _EnsembleOutcome:
    """The ensemble considered at the end of a search: its leaderboard row, and when it won and
    was refit, the worker's refit answer and the params recorded for it."""

    selection: Selection
    row: dict
    params: dict | None = None
    refit: dict | None = None

    def manifest_entry(self) -> dict:
        return {
            "cv_score": self.selection.score, "fold_scores": self.selection.fold_scores,
            "members": self.selection.describe(), "saved": self.refit is not None, "status": self.row["status"],
        }


def _refit_ensemble(
    pool, searches, scorer, task, context, schema, runner, deadline, hard_deadline, with_test, scale
) -> _EnsembleOutcome | None:
    """Select an ensemble from the pool; refit it on all rows if it beats the best model on the
    folds clearly (see ``_clearly_better``) and its members' refits fit in the time budget. When
    they do not fit, the model slowest to refit leaves the candidates and the selection runs
    again. Should the ensemble's refit fail, the best model is refit in the grace after the
    budget, as any winner may be. None when there is no ensemble to consider."""
    started = time.monotonic()
    best = best_search(searches)
    if best is None:
        return None
    refits = 2 if with_test else 1
    # optional, so within the budget itself, and leaving time to refit the best model should it
    # fail (a worker replaced during the search must import its libraries again, e.g. TensorFlow)
    fallback = REFIT_MARGIN * refits * best.typical_refit_seconds(scale)
    until = deadline - fallback if math.isfinite(deadline) else hard_deadline
    spare = until - started - SAVE_ALLOWANCE
    if spare <= 0:
        logger.info("no time left to consider an ensemble")
        return None
    by_name = {s.name: s for s in searches}

    def refit_seconds(model: str) -> float:
        return max(by_name[model].typical_refit_seconds(scale), 0.01)

    def member_refit_seconds(member) -> float:
        # the trial's own slowest fold: a member may be far slower than its model's median trial
        return max(member.fit_seconds * scale, refit_seconds(member.model))

    def needed(selection: Selection) -> float:
        return REFIT_MARGIN * refits * sum(member_refit_seconds(m) for m in selection.members)

    def affordable(selection: Selection) -> bool:
        return not math.isfinite(until) or needed(selection) <= until - time.monotonic() - SAVE_ALLOWANCE

    best_folds = best.study.best_trial.user_attrs.get("fold_scores") or []

    def wins(selection: Selection | None) -> bool:
        return selection is not None and _clearly_better(selection.fold_scores, best_folds, best.best)

    score = prediction_scorer(scorer, task, pool.classes)
    excluded: set[str] = set()
    try:
        first = selection = select_ensemble(pool, score, max_seconds=SELECTION_SHARE * spare, seed=context.seed)
        while wins(selection) and not affordable(selection):
            slowest = max(selection.members, key=member_refit_seconds).model
            logger.info("refitting an ensemble with %s would not fit in the time left: choosing without it", slowest)
            excluded.add(slowest)
            selection = select_ensemble(
                pool, score, max_seconds=SELECTION_SHARE * spare - (time.monotonic() - started), seed=context.seed,
                exclude=excluded,
            )
    except Exception as exc:  # e.g. a metric undefined on some mix of predictions
        logger.warning("no ensemble: the selection failed (%s)", _reason(exc))
        return None
    if first is None:
        return None
    # the loop ends on an ensemble that is better and fits, or on none: then the first is shown
    fits = wins(selection)
    selection = selection if fits else first
    row = {
        "model": ENSEMBLE, "score": selection.score, "std": selection.std, "test_score": math.nan,
        "trials": len(selection.members), "complete": len(selection.members), "pruned": 0, "failed": 0,
        "seconds": time.monotonic() - started, "status": "ok",
    }
    outcome = _EnsembleOutcome(selection, row)
    members = ", ".join(f"{m.model} #{m.number} x{w:.2f}" for m, w in zip(selection.members, selection.weights))
    if not wins(selection):  # a candidate that lost, like any model below the winner
        if selection.score > best.best:  # by a hair: not saved, and said so (not at the top)
            row["status"] = f"not clearly better than {best.name} (within fold noise)"
        logger.info("ensemble of %s: CV %.4f, not clearly better than %s (%.4f)", members, selection.score, best.name, best.best)
        return outcome
    if not fits:
        row["status"] = f"better, but no time left to refit its {len(selection.members)} members"
        logger.info("ensemble of %s: CV %.4f, but no time left to refit it", members, selection.score)
        return outcome
    logger.info("ensemble of %s: CV %.4f beats %s (%.4f); refitting it", members, selection.score, best.name, best.best)
    seconds = until - time.monotonic() - SAVE_ALLOWANCE
    member_seconds = [member_refit_seconds(m) for m in selection.members]
    try:
        pipelines = []
        for member, expected in zip(selection.members, member_seconds):
            # each member is told its share of the time, by its expected refit time
            limit = REFIT_FIT_SHARE * seconds * expected / sum(member_seconds) / refits
            timed = dataclasses.replace(context, time_limit=max(0.5, limit) if math.isfinite(limit) else None)
            model = by_name[member.model].model
            pipelines.append(build_pipeline(model, params_of(model.spec, member.params, timed), timed, schema))
        ensemble = make_ensemble(task, pipelines, selection.weights)
        test_score = None
        if with_test:
            answer = runner.refit(ensemble, on_search_rows=True, timeout=max(0.1, until - time.monotonic() - SAVE_ALLOWANCE))
            test_score = answer["test_score"]
        final = runner.refit(ensemble, on_search_rows=False, timeout=max(0.1, until - time.monotonic() - SAVE_ALLOWANCE))
    except (TrialFailure, Exception) as exc:
        row["status"] = f"{REFIT_FAILED}{_reason(exc)}"
        logger.warning("refitting the ensemble failed (%s); refitting %s alone", _reason(exc), best.name)
        return outcome
    row["seconds"] = time.monotonic() - started
    outcome.params = {"members": selection.describe()}
    outcome.refit = {**final, "test_score": test_score}
    return outcome


def _clearly_better(fold_scores: list[float], best_folds: list[float], best_score: float) -> bool:
    """Whether an ensemble beats the best model by more than fold-to-fold noise: its mean fold
    gain is at least ``ENSEMBLE_MIN_GAIN_SE`` standard errors of the gains (paired by fold).
    Its members were chosen on these very folds, so a small edge is mostly luck, and it costs
    more fits to refit and more time to predict."""
    if float(np.mean(fold_scores)) <= best_score:
        return False
    if len(best_folds) != len(fold_scores) or len(fold_scores) < 2:
        return True  # a holdout: no spread to judge by
    gains = np.subtract(fold_scores, best_folds)
    return float(gains.mean()) >= ENSEMBLE_MIN_GAIN_SE * float(gains.std(ddof=1)) / math.sqrt(len(gains))


def _with_ensemble(leaderboard: pd.DataFrame, row: dict) -> pd.DataFrame:
    """The leaderboard with the ensemble's row, by score; an ensemble that scored best but was
    not refit goes below the models that were, so that the top row is always the saved model."""
    board = pd.concat([leaderboard, pd.DataFrame([row], columns=leaderboard.columns)], ignore_index=True)
    board = board.sort_values("score", ascending=False, na_position="last", kind="stable")
    unsaved = (board["model"] == ENSEMBLE) & (board["status"] != "ok")
    return pd.concat([board[~unsaved], board[unsaved]]).reset_index(drop=True)


def _refit_rows(search: ModelSearch, scale: float, n_rows: int, seconds: float) -> int | None:
    """``None`` (every row) when the refit is expected to take at most ``REFIT_ROWS_SAFETY`` of
    ``seconds``; else the number of rows expected to, and never fewer than a trial fitted on."""
    expected = search.typical_refit_seconds(scale)
    if not math.isfinite(seconds) or expected <= REFIT_ROWS_SAFETY * seconds:
        return None
    rows = int(max(n_rows / scale, n_rows * REFIT_ROWS_SAFETY * seconds / expected))
    if rows >= n_rows:
        return None
    logger.warning(
        "refitting %s on every row would take about %.0f s, more than the %.0f s left: refitting on a sample of "
        "%d of the %d rows (raise time_budget to use them all)", search.name, expected, seconds, rows, n_rows,
    )
    return rows


def _test_score(search, params, context, schema, runner, until) -> float | None:
    """The winner's score on the held-out rows; a failure there costs the score, not the model."""
    try:
        pipeline = build_pipeline(search.model, params, context, schema)
        answer = runner.refit(pipeline, on_search_rows=True, timeout=max(0.1, until - time.monotonic() - SAVE_ALLOWANCE))
        return answer["test_score"]
    except (TrialFailure, Exception) as exc:
        reason = _reason(exc)
        logger.warning("no test score for %s: %s", search.name, reason)
        return None


def _reason(exc: Exception) -> str:
    return exc.reason if isinstance(exc, TrialFailure) else f"{type(exc).__name__}: {exc}"


def _describe_storage(storage) -> str:
    if isinstance(storage, str):
        from sqlalchemy.engine import make_url

        try:
            return make_url(storage).render_as_string(hide_password=True)
        except Exception:
            return "(storage URL)"
    return type(storage).__name__


class _Observers:
    """Calls an observer hook on every plugin; one that raises is reported, not fatal."""

    def __init__(self, plugin_manager, run: RunInfo):
        self.plugin_manager = plugin_manager
        self.run = run

    def __call__(self, hook: str, **kwargs) -> None:
        for _ in call_each(self.plugin_manager, hook, run=self.run, **kwargs):
            pass


class _Progress:
    """Logs the search's progress: every model's first trial and every new best at INFO,
    other trials at DEBUG, each with elapsed/budget time."""

    def __init__(self, searches, started: float, time_budget: float | None):
        self.searches = searches
        self.started = started
        self.time_budget = time_budget
        self.best_value: float | None = None

    def __call__(self, search: ModelSearch, trial: optuna.trial.FrozenTrial) -> None:
        elapsed = time.monotonic() - self.started
        clock = f"{elapsed:6.1f}s" + (f"/{self.time_budget:g}s" if self.time_budget else "")
        outcome = f"score {trial.value:.4f}" if trial.value is not None else trial.state.name.lower()
        best = best_search(self.searches)
        improved = best is not None and (self.best_value is None or best.best > self.best_value)
        if improved:
            self.best_value = best.best
        lead = f" | best {best.name} {best.best:.4f}" if best else ""
        level = logging.INFO if improved or search.started == 1 else logging.DEBUG
        logger.log(level, "[%s] %s #%d %s%s", clock, search.name, trial.number, outcome, lead)
