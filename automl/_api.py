"""``fit_best``: validate, search, refit the winner, save the run."""

from __future__ import annotations

import dataclasses
import datetime as _dt
import logging
import math
import secrets
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from sklearn.model_selection import KFold, StratifiedKFold, train_test_split

from ._data import as_table, infer_schema, prepare_target
from ._exceptions import InputError, SearchError
from ._metrics import resolve_scorer
from ._persist import STUDY_FILE, library_versions, save_run
from ._plugins import RegisteredModel, collect_models, get_plugin_manager
from ._result import Result, leaderboard_frame, trials_frame
from ._search import ModelSearch, build_pipeline, create_studies, params_of, run_search
from ._spec import ModelContext

__all__ = ["fit_best"]

logger = logging.getLogger(__name__)

#: Seconds kept back for writing the run directory.
SAVE_ALLOWANCE = 1.0
#: Safety factor on the expected refit time when deciding to stop searching.
REFIT_MARGIN = 1.3


def fit_best(
    X: Any,
    y: Any,
    *,
    task: str = "auto",
    metric: str | None = None,
    time_budget: float | None = 60.0,
    n_trials: int | None = None,
    cv: int | Any = 5,
    models: Sequence[str] | None = None,
    plugins: Iterable[object] = (),
    seed: int = 0,
    n_jobs: int = 1,
    storage: str | optuna.storages.BaseStorage | None = None,
    path: str | Path | None = None,
    test_size: float | None = None,
    save: bool = True,
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
    :param cv: number of folds (stratified for classification; shuffled and seeded) or a
        scikit-learn splitter.
    :param models: names of the models to try (default: every model that supports the task).
    :param plugins: extra plugin objects (modules or instances with ``@automl.hookimpl``
        functions) registered for this call only.
    :param seed: seeds the folds, the samplers and the models.
    :param n_jobs: threads a single model fit may use (for models that support it).
    :param storage: an Optuna storage URL or object for the studies, instead of the journal
        file in the run directory.
    :param path: the run directory to write (it must not exist yet, or be empty); default
        ``automl-runs/<UTC time>-<id>/`` under the working directory.
    :param test_size: fraction of rows (e.g. 0.2) held out of the search; the winner's score
        on them is reported next to its CV score. The final model is refit on all rows.
    :param save: write the run directory (default). With ``False`` the studies live in memory.
    :return: a :class:`automl.Result`.
    :raises InputError: for unusable data or arguments (nothing is written).
    :raises SearchError: when no trial of any model succeeds (no model file is written).
    """
    started = time.monotonic()
    _check_budget(time_budget, n_trials)
    if not isinstance(n_jobs, int) or isinstance(n_jobs, bool) or n_jobs < 1:
        raise InputError(f"n_jobs must be a positive integer, got {n_jobs!r}")
    deadline = started + time_budget if time_budget is not None else math.inf

    table = as_table(X)
    y_all, task = prepare_target(y, len(table), task)
    schema = infer_schema(table)
    metric_name, scorer = resolve_scorer(metric, task)
    registered = collect_models(get_plugin_manager(plugins))
    chosen = _choose_models(registered, models, task)

    X_search, y_search, X_test, y_test = _split_test(table, y_all, test_size, task, seed)
    splitter = _make_splitter(cv, task, seed)
    folds = _make_folds(splitter, X_search, y_search, task)
    n_classes = len(np.unique(y_all)) if task != "regression" else 0
    context = ModelContext(
        task=task, seed=seed, n_samples=len(X_search), n_features=table.shape[1],
        n_classes=n_classes, n_jobs=n_jobs,
    )

    run_dir = _new_run_directory(path) if save else None
    if storage is None and run_dir is not None:
        storage = optuna.storages.JournalStorage(
            optuna.storages.journal.JournalFileBackend(str(run_dir / STUDY_FILE))
        )
        prefix = ""
    else:
        # a shared database may hold many runs: keep this run's study names apart
        prefix = f"{run_dir.name if run_dir else secrets.token_hex(4)}/"
    searches = create_studies(chosen, storage, prefix, seed)
    n_refits = 2 if X_test is not None else 1

    def stop_at() -> float:
        best = _best_search(searches)
        refit = best.typical_refit_seconds(len(folds)) * n_refits if best else 0.0
        return deadline - REFIT_MARGIN * refit - SAVE_ALLOWANCE

    logger.info(
        "searching %d model(s) for %s on %d rows x %d columns, metric %s, budget %s",
        len(searches), task, len(table), table.shape[1], metric_name,
        f"{time_budget:g} s" if time_budget is not None else "none",
    )
    progress = _Progress(searches, started, time_budget)
    run_search(
        searches, X_search, y_search, folds, scorer, schema, context,
        stop_at=stop_at, n_trials=n_trials, on_trial=progress,
    )

    trials = trials_frame(searches)
    leaderboard = leaderboard_frame(searches, trials)
    if math.isfinite(deadline):
        refit_seconds = (deadline - time.monotonic() - SAVE_ALLOWANCE) / n_refits
        context = dataclasses.replace(context, time_limit=max(1.0, refit_seconds))
    winner, params, model, test_score = _refit_winner(
        searches, leaderboard, context, schema, scorer, table, y_all, X_search, y_search, X_test, y_test
    )
    if test_score is not None:
        leaderboard.loc[leaderboard["model"] == winner.name, "test_score"] = test_score
    result = Result(
        model=model, model_name=winner.name, params=params, score=float(winner.best),
        test_score=test_score, metric=metric_name, task=task, leaderboard=leaderboard,
        trials=trials, path=run_dir,
    )
    manifest = {
        "format": 1,
        "model": winner.name,
        "params": params,
        "metric": metric_name,
        "cv_score": result.score,
        "cv_std": float(leaderboard.loc[leaderboard["model"] == winner.name, "std"].iloc[0]),
        "test_score": test_score,
        "task": task,
        "target": str(y.name) if getattr(y, "name", None) is not None else None,
        "classes": _labels_as_json(getattr(model, "classes_", None)),
        "columns": [c.to_dict() for c in schema],
        "n_rows": len(table),
        "seed": seed,
        "time_budget": time_budget,
        "n_trials": n_trials,
        "cv": str(splitter),
        "test_size": test_size,
        "models": [s.name for s in searches],
        "studies": {s.name: s.study.study_name for s in searches},
        "storage": STUDY_FILE if prefix == "" else _describe_storage(storage),
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "versions": library_versions(),
    }
    if run_dir is not None:
        manifest["search_seconds"] = round(time.monotonic() - started, 3)
        result.manifest = save_run(run_dir, result, manifest)
        logger.info("saved the run to %s", run_dir)
    else:
        result.manifest = manifest
    logger.info(
        "best model: %s, %s %.4f (%.1f s in all)",
        winner.name, metric_name, result.score, time.monotonic() - started,
    )
    return result


def _check_budget(time_budget, n_trials) -> None:
    if time_budget is not None:
        if isinstance(time_budget, bool) or not isinstance(time_budget, (int, float)) or not time_budget > 0:
            raise InputError(f"time_budget must be a positive number of seconds (or None), got {time_budget!r}")
    if n_trials is not None:
        if isinstance(n_trials, bool) or not isinstance(n_trials, int) or n_trials < 1:
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


def _split_test(table, y, test_size, task, seed):
    if test_size is None:
        return table, y, None, None
    if isinstance(test_size, bool) or not isinstance(test_size, float) or not 0 < test_size < 1:
        raise InputError(f"test_size must be a fraction between 0 and 1 (e.g. 0.2), got {test_size!r}")
    stratify = y if task != "regression" else None
    try:
        X_train, X_test, y_train, y_test = train_test_split(
            table, y, test_size=test_size, random_state=seed, stratify=stratify
        )
    except ValueError as exc:
        raise InputError(f"cannot hold out test_size={test_size}: {exc}") from None
    return X_train.reset_index(drop=True), y_train, X_test.reset_index(drop=True), y_test


def _make_splitter(cv, task: str, seed: int):
    if isinstance(cv, int) and not isinstance(cv, bool):
        if cv < 2:
            raise InputError(f"cv must be at least 2 folds, got {cv}")
        if task == "regression":
            return KFold(n_splits=cv, shuffle=True, random_state=seed)
        return StratifiedKFold(n_splits=cv, shuffle=True, random_state=seed)
    if hasattr(cv, "split") and hasattr(cv, "get_n_splits"):
        return cv
    raise InputError(
        f"cv must be a number of folds (int >= 2) or a scikit-learn splitter such as "
        f"KFold(5); got {cv!r}"
    )


def _make_folds(splitter, X, y, task: str) -> list[tuple[np.ndarray, np.ndarray]]:
    n_splits = splitter.get_n_splits(X, y)
    if task != "regression":
        labels, counts = np.unique(y, return_counts=True)
        if counts.min() < n_splits:
            rare = {repr(l.item() if hasattr(l, "item") else l): int(c) for l, c in zip(labels, counts) if c < n_splits}
            raise InputError(
                f"class(es) {rare} have fewer members than the {n_splits} CV folds; "
                f"use cv={max(2, int(counts.min()))} or fewer folds, or drop or merge rare classes"
            )
    if len(y) < 2 * n_splits:
        raise InputError(f"{len(y)} rows are too few for {n_splits}-fold cross-validation")
    try:
        return list(splitter.split(X, y))
    except ValueError as exc:
        raise InputError(f"the cv splitter {splitter!r} cannot split this data: {exc}") from None


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


def _best_search(searches: list[ModelSearch]) -> ModelSearch | None:
    scored = [s for s in searches if s.best is not None]
    return max(scored, key=lambda s: s.best) if scored else None


def _refit_winner(searches, leaderboard, context, schema, scorer, table, y_all, X_search, y_search, X_test, y_test):
    by_name = {s.name: s for s in searches}
    ranked = [by_name[name] for name in leaderboard["model"] if by_name[name].best is not None]
    if not ranked:
        summary = "; ".join(f"{row.model}: {row.status}" for row in leaderboard.itertuples())
        advice = (
            "Fix the errors named above (run with logging at DEBUG for tracebacks)"
            if any(row.status.startswith("all trials failed") for row in leaderboard.itertuples())
            else "Raise time_budget"
        )
        raise SearchError(f"no trial of any model succeeded, so there is no model to save ({summary}). {advice}.")
    for search in ranked:
        best_trial = search.study.best_trial
        try:
            params = params_of(search.model.spec, best_trial.params, context)
            test_score = None
            if X_test is not None:
                held_out = build_pipeline(search.model, params, context, schema).fit(X_search, y_search)
                test_score = float(scorer(held_out, X_test, y_test))
            model = build_pipeline(search.model, params, context, schema).fit(table, y_all)
            return search, params, model, test_score
        except Exception as exc:
            logger.warning("refitting %s failed (%s: %s); trying the next model", search.name, type(exc).__name__, exc)
    raise SearchError("every model that completed a trial failed to refit on all the data; see the warnings above")


def _labels_as_json(classes) -> list | None:
    if classes is None:
        return None
    return [c.item() if hasattr(c, "item") else c for c in classes]


def _describe_storage(storage) -> str:
    if isinstance(storage, str):
        from sqlalchemy.engine import make_url

        try:
            return make_url(storage).render_as_string(hide_password=True)
        except Exception:
            return "(storage URL)"
    return type(storage).__name__


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
        best = _best_search(self.searches)
        improved = best is not None and (self.best_value is None or best.best > self.best_value)
        if improved:
            self.best_value = best.best
        lead = f" | best {best.name} {best.best:.4f}" if best else ""
        level = logging.INFO if improved or search.started == 1 else logging.DEBUG
        logger.log(level, "[%s] %s #%d %s%s", clock, search.name, trial.number, outcome, lead)
