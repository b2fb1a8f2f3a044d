"""``fit_best``: the face of the engine. Its arguments are checked (``automl.fit.settings``), then
the stages of ``automl.fit.run.FitRun`` run: prepare → plan → open the run → search → select →
refit → save."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import optuna

from ..store.result import Result
from .run import FitRun
from .settings import FitSettings

__all__ = ["fit_best"]


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
    max_predict_ms: float | None = None,
    portfolio: bool | str | Path | Mapping = True,
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
    :param max_predict_ms: milliseconds a candidate may take to predict 1,000 rows (the
        leaderboard's ``predict_ms``, timed on each trial's first fold, the ensemble's being the
        sum of its members'). A trial whose model is slower fails after that fold ("predicts too
        slowly"), and a slower ensemble is not saved. ``None`` (default): no limit.
    :param portfolio: where the search starts. ``True`` (default): the built-in portfolio,
        configurations chosen offline on a corpus of other datasets, tried first in the order
        that corpus favours (see ``automl.search.portfolio``); models without entries start from
        their defaults. ``False``: every model starts from its defaults, cheapest model first. A
        path to a portfolio JSON file, or a mapping shaped like one, uses that portfolio. A warm
        start's configurations still go first.
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
    settings = FitSettings(
        task=task, metric=metric, time_budget=time_budget, n_trials=n_trials, cv=cv, models=models, plugins=plugins,
        seed=seed, n_jobs=n_jobs, storage=storage, path=path, test_size=test_size, save=save,
        memory_limit=memory_limit, resume=resume, warm_start=warm_start, verbose=verbose, study_name=study_name,
        data_location=data_location, ensemble=ensemble, max_predict_ms=max_predict_ms,
        portfolio=portfolio,
    )
    return FitRun(settings, X, y).run()
