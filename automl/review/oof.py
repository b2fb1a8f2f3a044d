"""Out-of-fold predictions of a saved run's winner, for the report.

A run directory keeps no data, so this needs the table the run was fitted on, and checks it
against the run's checksum. The folds are then rebuilt exactly as :func:`automl.fit_best` made
them (the same splitter, seed and held-out test rows, with ``_api``'s own helpers), the winning
configuration is built again from its trial, fitted on each fold's training rows *in this
process*, and asked about the fold's validation rows only. Every prediction comes from a model
that never saw that row; the winner refit on all rows (``model.joblib``) is not used.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import pandas as pd
from sklearn.inspection import permutation_importance

from ..data.plan import DataPlan, PlanSpec, check_fingerprint, fingerprint
from ..data.schema import Column, as_table, columns_from_records, prepare_target
from ..store.ensemble import ENSEMBLE, align_class_columns, make_ensemble
from .._exceptions import InputError
from .._metrics import resolve_scorer
from .._plugins import collect_models, get_plugin_manager
from ..store.result import Result
from ..search.studies import build_pipeline, params_of
from .._spec import ModelContext
from ..data.validation import Validation, choose_validation, make_splitter
from .._metrics import ReplayClassifier, ReplayRegressor

__all__ = ["OutOfFold", "out_of_fold", "winning_trial", "IMPORTANCE_REPEATS", "MAX_IMPORTANCE_ROWS"]

logger = logging.getLogger(__name__)

#: Times each column is shuffled on each validation fold for permutation importance.
IMPORTANCE_REPEATS = 5
#: Permutation importance scores at most this many rows of a fold per repeat (drawn at random).
MAX_IMPORTANCE_ROWS = 5000


@dataclasses.dataclass
class OutOfFold:
    """The winner's out-of-fold predictions on the search rows (the held-out test rows excluded).

    :ivar y: the true targets of the search rows.
    :ivar predictions: ``predict`` of the model that did not see the row.
    :ivar scores: classification only: the positive class's probability (binary, 1-D) or one
        column per class (multiclass), or decision values when the model has no probabilities;
        None for regression or a model with neither.
    :ivar score_kind: ``"probability"``, ``"decision"`` or None.
    :ivar classes: class labels in the order of ``scores``' columns (None for regression).
    :ivar fold_scores: the run's metric on each validation fold, refit here.
    :ivar search_fold_scores: the same folds' scores in the search's winning trial.
    :ivar fold_rows: validation rows in each fold.
    :ivar pooled_score: the metric on all out-of-fold predictions at once (None if it cannot be computed).
    :ivar importances: columns ``column``, ``kind``, ``mean``, ``std``: the metric's drop when an
        input column is shuffled, over every fold and repeat; most important first; dropped columns left out.
    :ivar dropped: input columns the run dropped (no importance: the model never sees them).
    :ivar n_test_rows: rows held out of the search (``test_size``), not used here.
    """

    y: np.ndarray
    predictions: np.ndarray
    scores: np.ndarray | None
    score_kind: str | None
    classes: list[Any] | None
    fold_scores: list[float]
    search_fold_scores: list[float]
    fold_rows: list[int]
    pooled_score: float | None
    importances: pd.DataFrame
    dropped: list[str]
    n_test_rows: int

    @property
    def mean_score(self) -> float:
        return float(np.mean(self.fold_scores))


def out_of_fold(result: Result, X: Any, y: Any = None, *, cv: Any = None, plugins: Iterable[object] = ()) -> OutOfFold:
    """Refit the run's winner on each of its CV folds and predict the held-out fold.

    :param result: a loaded run (its manifest says how the run was made).
    :param X: the table the run was fitted on; it may include the target column (then ``y``
        may be None). Columns are matched by name.
    :param y: the target, when it is not a column of ``X``.
    :param cv: the run's scikit-learn splitter, needed only for a run made with one (not a
        number of folds).
    :param plugins: plugin objects that provide the winning model, if it is not installed.
    :raises InputError: the data is not the run's, the folds cannot be rebuilt, or the model
        is not registered here.
    """
    manifest = result.manifest
    task, seed = result.task, int(manifest.get("seed", 0))
    schema = columns_from_records(manifest["columns"])
    table, y_all = _same_data(manifest, schema, X, y, task)
    recorded = manifest.get("validation")
    # cv="auto" or a number of folds: the recorded plan, its samples included; else the run's splitter
    plan = DataPlan.make(table, y_all, PlanSpec(
        task, seed, manifest.get("test_size"), schema=schema,
        cv=None if recorded else _splitter(manifest.get("cv"), task, seed, cv),
        validation=Validation.from_dict(recorded) if recorded else None,
    ))
    X_search, y_search, folds, test_rows = plan.X_search, plan.y_search, plan.folds, plan.test_rows
    context = plan.context(n_jobs=1)
    build, search_fold_scores = _winner_builder(result, context, schema, plugins)
    _, scorer = resolve_scorer(result.metric, task)

    predictions = np.empty(len(y_search), dtype=y_search.dtype)
    scores = classes = kind = None
    fold_scores, shuffled = [], []
    for k, (train, valid) in enumerate(folds, start=1):
        logger.info("refitting %s on fold %d of %d (%d rows), predicting the other %d", result.model_name, k, len(folds), len(train), len(valid))
        pipeline = build()
        pipeline.fit(X_search.iloc[train], y_search[train])
        rows, truth = X_search.iloc[valid], y_search[valid]
        predictions[valid] = pipeline.predict(rows)
        if task != "regression":
            if classes is None:
                classes = list(pipeline.classes_)
                kind = "probability" if hasattr(pipeline, "predict_proba") else "decision" if hasattr(pipeline, "decision_function") else None
            if kind is not None:
                fold_values = _class_scores(pipeline, rows, kind, classes)
                if scores is None:
                    scores = np.zeros((len(y_search), *fold_values.shape[1:]))
                scores[valid] = fold_values
        fold_scores.append(float(scorer(pipeline, rows, truth)))
        logger.info("fold %d: %s %.4f; permutation importance of %d columns", k, result.metric, fold_scores[-1], table.shape[1])
        shuffled.append(permutation_importance(
            pipeline, rows, truth, scoring=scorer, n_repeats=IMPORTANCE_REPEATS, random_state=seed,
            max_samples=min(len(valid), MAX_IMPORTANCE_ROWS),
        ).importances)

    if scores is not None and task == "binary" and kind == "probability":
        scores = scores[:, 1]
    # a holdout (or sampled validation rows) predicts only some rows: the figures use those
    covered = np.unique(np.concatenate([valid for _, valid in folds]))
    if len(covered) < len(y_search):
        y_search, predictions = y_search[covered], predictions[covered]
        scores = scores[covered] if scores is not None else None
    dropped = [c.name for c in schema if c.kind == "dropped"]
    return OutOfFold(
        y=y_search, predictions=predictions, scores=scores, score_kind=kind if scores is not None else None,
        classes=classes, fold_scores=fold_scores, search_fold_scores=search_fold_scores,
        fold_rows=[len(valid) for _, valid in folds],
        pooled_score=_pooled_score(scorer, task, y_search, predictions, scores, kind, classes),
        importances=_importance_table(schema, np.concatenate(shuffled, axis=1)), dropped=dropped,
        n_test_rows=0 if test_rows is None else len(test_rows),
    )


def _same_data(manifest: dict, schema: list[Column], X: Any, y: Any, task: str) -> tuple[pd.DataFrame, np.ndarray]:
    """``X`` and ``y`` as the run saw them; an InputError unless they are the run's data."""
    table = as_table(X)
    target = manifest.get("target")
    if y is None:
        if target is None or target not in table.columns:
            where = f"no column {target!r} (the run's target)" if target is not None else "no target: the run recorded no target column name"
            raise InputError(f"the data has {where}; pass the target as y (or --target COL)")
        y = table[target]
        table = table.drop(columns=[target])
    names = [c.name for c in schema]
    missing = [n for n in names if n not in table.columns]
    if missing:
        raise InputError(
            f"the data lacks column(s) {missing[:10]} that the run was fitted with: the report's out-of-fold "
            "figures need the same table as the run"
        )
    extra = [c for c in table.columns if c not in set(names)]
    if extra:
        logger.info("ignoring column(s) the run was not fitted with: %s", extra)
    table = table[names]
    try:
        y_all = prepare_target(y, len(table), task)[0]
    except InputError as exc:
        raise InputError(f"the target does not fit the run ({task}): {exc}") from None
    check_fingerprint(fingerprint(table, y_all), manifest.get("data_sha256"), (
        f"the data differs from the data the run was fitted on ({len(table)} rows here, {manifest.get('n_rows')} "
        "in the run; the checksums differ): the report's out-of-fold figures need the same data as the run. "
        "Pass the exact table given to automl fit / fit_best"
    ))
    return table, y_all


def _splitter(recorded: str | None, task: str, seed: int, cv: Any):
    """The run's CV splitter, rebuilt from the manifest's description of it (or ``cv``, checked against it)."""
    if cv is not None:
        splitter = make_splitter(cv, choose_validation(cv, 0, 0, None), task, seed)
        if str(splitter) != recorded:
            raise InputError(f"cv={splitter} differs from the run's splitter {recorded}; pass the run's own")
        return splitter
    match = re.search(r"n_splits=(\d+)", recorded or "")
    splitter = make_splitter(None, Validation(folds=int(match[1])), task, seed) if match else None
    if splitter is None or str(splitter) != recorded:
        raise InputError(
            f"the run used its own CV splitter ({recorded}); pass the same splitter as cv= to rebuild its folds "
            "(automl.report(run, X, y, cv=...))"
        )
    return splitter


def _winner_builder(result: Result, context: ModelContext, schema: list[Column], plugins) -> tuple[Callable, list[float]]:
    """A function that builds the run's winner unfitted (a model pipeline with the winning
    params, or the saved ensemble of them), and the fold scores the search recorded for it."""
    if result.model_name == ENSEMBLE:
        recorded = result.manifest.get("ensemble") or {}
        members = recorded.get("members") or []
        if not members:
            raise InputError("the run's winner is an ensemble, but its manifest does not list the members")
        registered = {name: _registered(name, plugins) for name in {m["model"] for m in members}}

        def build_ensemble():
            pipelines = [
                build_pipeline(registered[m["model"]], params_of(registered[m["model"]].spec, m["params"], context), context, schema)
                for m in members
            ]
            return make_ensemble(result.task, pipelines, [m["weight"] for m in members])

        return build_ensemble, [float(s) for s in recorded.get("fold_scores", [])]
    winning = winning_trial(result)
    if winning is None:
        raise InputError(f"the run's trials hold no complete trial of its winner {result.model_name!r}; trials.csv is incomplete")
    model = _registered(result.model_name, plugins)
    params = params_of(model.spec, winning["params"], context)
    return (lambda: build_pipeline(model, params, context, schema)), [float(s) for s in winning["fold_scores"]]


def winning_trial(result: Result) -> pd.Series | None:
    """The winner's best complete trial (a row of ``result.trials``), or None if the trials lack it."""
    trials = result.trials
    if not len(trials):
        return None
    own = trials[(trials["model"] == result.model_name) & (trials["state"] == "complete")]
    return own.loc[own["score"].idxmax()] if len(own) else None


def _registered(name: str, plugins: Iterable[object]):
    registered = collect_models(get_plugin_manager(plugins))
    if name not in registered:
        raise InputError(
            f"the winning model {name!r} is not registered here, so it cannot be refit on the folds: install "
            "its plugin (or pass it with plugins=)"
        )
    return registered[name]


def _class_scores(pipeline, rows: pd.DataFrame, kind: str, classes: list) -> np.ndarray:
    """Probabilities (or decision values) in the column order of ``classes``."""
    values = pipeline.predict_proba(rows) if kind == "probability" else pipeline.decision_function(rows)
    return align_class_columns(values, pipeline.classes_, classes)  # a fold may lack a class


def _importance_table(schema: list[Column], importances: np.ndarray) -> pd.DataFrame:
    frame = pd.DataFrame({
        "column": [c.name for c in schema], "kind": [c.kind for c in schema],
        "mean": importances.mean(axis=1), "std": importances.std(axis=1),
    })
    frame = frame[frame["kind"] != "dropped"]
    return frame.sort_values("mean", ascending=False, kind="stable").reset_index(drop=True)








def _pooled_score(scorer, task, y, predictions, scores, kind, classes) -> float | None:
    """The run's metric on every out-of-fold prediction at once (not a mean over folds)."""
    if task == "regression":
        replay = ReplayRegressor(predictions)
    else:
        if scores is not None and scores.ndim == 1 and kind == "probability":
            scores = np.column_stack([1 - scores, scores])
        replay = ReplayClassifier(predictions, scores, kind)
        replay.classes_ = np.asarray(classes, dtype=y.dtype)
    try:
        return float(scorer(replay, np.arange(len(y))[:, None], y))
    except Exception as exc:  # e.g. a metric that needs scores the model does not give
        logger.warning("no pooled out-of-fold %s: %s", getattr(scorer, "_score_func", scorer), exc)
        return None
