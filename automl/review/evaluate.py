"""Monitoring a saved model on fresh labelled data: its score next to the CV estimate, and
per-column drift against the training data profile kept in the manifest.

Drift is measured per column with the population stability index (PSI) over the training
bins (deciles for numbers and dates, the training levels for categories) plus one bin for
missing values, so a column that starts arriving empty drifts too:

    PSI = sum over bins of (new share - training share) * ln(new share / training share)

with empty bins counted as ``EPSILON`` (1e-4). The usual reading: below 0.1 no real change,
0.1-0.25 a moderate shift worth watching, above 0.25 a major shift.

The score counts as degraded when it is below the CV estimate by more than the allowed drop:
``max_score_drop`` when given (in the metric's own units), else
``max(2 * cv_std, relative_drop * |cv_score|)``: twice the spread between CV folds, or 5% of the
score, whichever is larger. The spread alone can be tiny on an easy problem, and the relative
margin alone ignores how noisy the metric is on this problem; the larger of the two flags only a
drop that neither explains. The margin scales with the metric (0.045 for an AUC of 0.9, 50 for an
RMSE of 1000), so it suits every scikit-learn scorer, all of which are "greater is better".

A training column without a drift measure is never left out in silence: ``Evaluation.not_checked``
names it with the reason (dropped at fit time, so unused by the model; or its training profile
failed or was not recorded), and the report and the verdict line say so.

The drift measures themselves are in ``automl.review.drift``; this module scores the model,
applies the thresholds and words the verdict.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import numbers
import os
from typing import Any

import numpy as np
import pandas as pd

from .._exceptions import InputError
from .._metrics import resolve_scorer
from ..data.preprocess import level_text
from ..data.schema import Column, as_table, label_array, prepare_target
from ..store.persist import load
from ..store.result import Result
from .drift import DRIFT_COLUMNS, EPSILON, NOT_CHECKED_COLUMNS, drift_table, population_stability_index, unchecked_columns

__all__ = [
    "DRIFT_COLUMNS",
    "EPSILON",
    "NOT_CHECKED_COLUMNS",
    "RELATIVE_DROP",
    "Evaluation",
    "drift_table",
    "evaluate",
    "population_stability_index",
    "unchecked_columns",
]

logger = logging.getLogger(__name__)

#: The default relative margin of the allowed score drop (a share of |cv_score|).
RELATIVE_DROP = 0.05
#: Fewer new rows than this make PSI and the score noisy: a warning says so.
FEW_ROWS = 200
#: Drifted columns named in the verdict line, at most.
NAMED_IN_VERDICT = 5


@dataclasses.dataclass(eq=False)
class Evaluation:
    """What :func:`evaluate` found.

    :ivar verdict: ``"ok"``, ``"drift"`` (some column drifted, the score held) or ``"degraded"``
        (the score fell by more than ``allowed_drop``, whether or not columns drifted).
    :ivar metric: the run's scikit-learn scorer name (greater is better).
    :ivar score: the model's score on the new data.
    :ivar cv_score: the run's cross-validated estimate; ``cv_std`` its spread over the folds.
    :ivar allowed_drop: how far below ``cv_score`` the score may fall before it counts as degraded.
    :ivar n_rows: rows evaluated.
    :ivar drift: one row per profiled column, most drifted first (columns ``DRIFT_COLUMNS``:
        PSI, missing share in training and now, share of rows with a category level unseen in
        training, ``"ok"``/``"drift"`` and a short description of the largest change), or None
        when the run has no data profile (saved before profiles were recorded).
    :ivar psi_threshold: a column drifts when its PSI is above this...
    :ivar unseen_threshold: ...or when more than this share of its rows hold unseen levels.
    :ivar not_checked: one row per training column that has no drift measure (columns
        ``NOT_CHECKED_COLUMNS``: name, kind at fit time, why), in training order; every column
        when the run has no data profile.
    """

    verdict: str
    metric: str
    score: float
    cv_score: float
    cv_std: float | None
    allowed_drop: float
    n_rows: int
    drift: pd.DataFrame | None
    psi_threshold: float
    unseen_threshold: float
    not_checked: pd.DataFrame = dataclasses.field(default_factory=lambda: pd.DataFrame(columns=NOT_CHECKED_COLUMNS))

    @property
    def drifted(self) -> list[str]:
        """Names of the drifted columns, most drifted first."""
        if self.drift is None:
            return []
        return self.drift.loc[self.drift["status"] == "drift", "column"].tolist()

    @property
    def degraded(self) -> bool:
        return self.verdict == "degraded"

    @property
    def unchecked_used(self) -> list[str]:
        """Names of the columns the model uses that have no drift measure: their drift goes unseen."""
        return self.not_checked.loc[self.not_checked["kind"] != "dropped", "column"].tolist()

    def score_line(self) -> str:
        spread = f" ± {self.cv_std:.4f}" if self.cv_std is not None else ""
        return (
            f"{self.metric} on {self.n_rows} new rows: {self.score:.4f}   CV estimate: {self.cv_score:.4f}{spread}"
            f"   allowed drop: {self.allowed_drop:.4f}"
        )

    def verdict_line(self) -> str:
        """One line for logs and CI: the verdict, then why."""
        drift = self._drift_summary()
        if self.verdict == "degraded":
            return (
                f"verdict: DEGRADED — {self.metric} {self.score:.4f} is {self.cv_score - self.score:.4f} below the "
                f"CV estimate {self.cv_score:.4f} (allowed drop {self.allowed_drop:.4f}); {drift}"
            )
        if self.verdict == "drift":
            return f"verdict: DRIFT — {drift}"
        return (
            f"verdict: OK — {self.metric} {self.score:.4f} is within {self.allowed_drop:.4f} of the CV estimate "
            f"{self.cv_score:.4f}; {drift}"
        )

    def _drift_summary(self) -> str:
        if self.drift is None:
            return "drift not checked: the run has no data profile (it was saved by an older automl)"
        rule = f"PSI > {self.psi_threshold:g} or unseen > {self.unseen_threshold:.0%}"
        drifted = self.drift[self.drift["status"] == "drift"]
        if drifted.empty:
            return (
            f"none of {len(self.drift)} columns drifted (PSI ≤ {self.psi_threshold:g}, unseen ≤ {self.unseen_threshold:.0%})"
            + self._unchecked_summary()
        )
        named = [
            f"{row.column} {row.psi:.2f}" + (f" (unseen {row.unseen:.0%})" if row.unseen > self.unseen_threshold else "")
            for row in drifted.head(NAMED_IN_VERDICT).itertuples()
        ]
        more = ", …" if len(drifted) > NAMED_IN_VERDICT else ""
        return f"{len(drifted)} of {len(self.drift)} columns drifted ({rule}): {', '.join(named)}{more}" + self._unchecked_summary()

    def _unchecked_summary(self) -> str:
        """Names the used columns that went unchecked; dropped ones are listed in the report only."""
        unchecked = self.unchecked_used
        if not unchecked:
            return ""
        more = ", …" if len(unchecked) > NAMED_IN_VERDICT else ""
        return (
            f"; {len(unchecked)} column(s) the model uses not checked (no training profile): "
            f"{', '.join(unchecked[:NAMED_IN_VERDICT])}{more}"
        )

    def report(self) -> str:
        """The score line, the drift table, the columns not checked and the verdict line, as the
        ``automl evaluate`` command prints them."""
        parts = [self.score_line(), ""]
        if self.drift is not None:  # else no column was checked, and the verdict line says why
            rows = [["column", "kind", "psi", "missing", "unseen", "status", "detail"]] + [
                [
                    row.column, row.kind, f"{row.psi:.3f}", f"{row.missing_train:.0%}→{row.missing_new:.0%}",
                    "-" if math.isnan(row.unseen) else f"{row.unseen:.1%}", row.status, row.detail,
                ]
                for row in self.drift.itertuples()
            ]
            parts += [*_aligned(rows, right={2, 4}), ""]
            if len(self.not_checked):
                rows = [["not checked", "kind", "why"]] + [[r.column, r.kind, r.reason] for r in self.not_checked.itertuples()]
                parts += [*_aligned(rows, right=set()), ""]
        parts.append(self.verdict_line())
        return "\n".join(parts)

    def table(self) -> pd.DataFrame:
        """Every training column: the drift rows, then one row per column not checked (status
        ``"not checked"``, the reason as its detail), as ``automl evaluate -o FILE.csv`` writes them."""
        unchecked = self.not_checked.rename(columns={"reason": "detail"}).assign(status="not checked")
        parts = [frame for frame in (self.drift, unchecked) if frame is not None and len(frame)]
        if not parts:
            return pd.DataFrame(columns=DRIFT_COLUMNS)
        return pd.concat(parts, ignore_index=True).reindex(columns=DRIFT_COLUMNS)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable summary: the scores, the verdict and the drift table as records."""
        return {
            "verdict": self.verdict, "metric": self.metric, "score": self.score, "cv_score": self.cv_score,
            "cv_std": self.cv_std, "allowed_drop": self.allowed_drop, "n_rows": self.n_rows,
            "psi_threshold": self.psi_threshold, "unseen_threshold": self.unseen_threshold,
            "drift": None if self.drift is None else [
                {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
                for row in self.drift.to_dict(orient="records")
            ],
            "not_checked": self.not_checked.to_dict(orient="records"),
        }

    def __repr__(self) -> str:
        return (
            f"<Evaluation {self.verdict}: {self.metric}={self.score:.4f} (CV {self.cv_score:.4f}), drifted={self.drifted}, "
            f"not checked={self.not_checked['column'].tolist()}>"
        )


def _aligned(rows: list[list[str]], right: set[int]) -> list[str]:
    """Rows of cells as text lines in columns; the columns numbered in ``right`` right-aligned."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(cell.rjust(w) if i in right else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths))).rstrip()
        for row in rows
    ]


def evaluate(
    run: str | os.PathLike | Result,
    X: Any,
    y: Any,
    *,
    psi_threshold: float = 0.25,
    unseen_threshold: float = 0.05,
    max_score_drop: float | None = None,
    relative_drop: float = RELATIVE_DROP,
) -> Evaluation:
    """Score a saved model on new labelled data and check every column for drift.

    :param run: a run directory (loaded with :func:`automl.load`) or a :class:`automl.Result`.
    :param X: the new rows, with the training columns (matched by name; extra columns are ignored).
    :param y: their true targets; class labels must be among the training classes.
    :param psi_threshold: a column drifts when its population stability index is above this
        (0.1: moderate shift, 0.25: major shift).
    :param unseen_threshold: ...or when more than this share of its rows hold category levels
        never seen in training.
    :param max_score_drop: how far (in the metric's units) the score may fall below the CV
        estimate before it counts as degraded; default ``max(2 * cv_std, relative_drop * |cv_score|)``.
    :param relative_drop: the relative margin of that default.
    :return: an :class:`Evaluation`; ``verdict`` is ``"degraded"`` when the score fell too far,
        else ``"drift"`` when a column drifted, else ``"ok"``.
    :raises InputError: missing training columns, unseen class labels, missing or unreadable
        values in ``y``, a value that cannot be read as its training type, bad thresholds.
    :raises RunDirectoryError: ``run`` is not a loadable run directory.
    """
    _check_thresholds(psi_threshold, unseen_threshold, max_score_drop, relative_drop)
    result = run if isinstance(run, Result) else load(run)
    manifest = result.manifest
    if "columns" not in manifest:
        raise InputError("this Result has no manifest with its training columns; evaluate a saved run or a fit_best result")
    schema = [Column(**{**c, "parts": tuple(c.get("parts", ()))}) for c in manifest["columns"]]
    table = as_table(X)
    features = _features(table, schema)
    target = _target(y, len(table), result)
    if len(table) < FEW_ROWS:
        logger.warning("only %d rows: the score and the drift measures are noisy on so few", len(table))

    score = _score(result, features, target)
    cv_score = float(result.score)
    cv_std = manifest.get("cv_std")
    cv_std = float(cv_std) if cv_std is not None and math.isfinite(cv_std) else None
    if max_score_drop is None:
        max_score_drop = max(2 * (cv_std or 0.0), relative_drop * abs(cv_score))
    degraded = score < cv_score - max_score_drop

    profile = manifest.get("data_profile")
    if profile is None:
        logger.warning("the run has no data profile (saved by an older automl): drift cannot be checked")
        drift = None
    else:
        drift = drift_table(profile, schema, table, psi_threshold, unseen_threshold)
    not_checked = unchecked_columns(manifest)
    unused = not_checked["kind"] == "dropped"
    if profile is not None and not unused.all():
        logger.warning(
            "drift not checked for %d column(s) the model uses: %s", int((~unused).sum()),
            "; ".join(f"{r.column} ({r.reason})" for r in not_checked[~unused].itertuples()),
        )
    drifted = drift is not None and bool((drift["status"] == "drift").any())
    verdict = "degraded" if degraded else "drift" if drifted else "ok"
    logger.info("evaluated %s on %d rows: %s %.4f (CV %.4f), verdict %s", result.model_name, len(table), result.metric, score, cv_score, verdict)
    return Evaluation(
        verdict=verdict, metric=result.metric, score=score, cv_score=cv_score, cv_std=cv_std,
        allowed_drop=float(max_score_drop), n_rows=len(table), drift=drift,
        psi_threshold=float(psi_threshold), unseen_threshold=float(unseen_threshold), not_checked=not_checked,
    )


def _features(table: pd.DataFrame, schema: list[Column]) -> pd.DataFrame:
    """The training columns of ``table``; columns the models never used may be absent."""
    missing = [c.name for c in schema if c.kind != "dropped" and c.name not in table.columns]
    if missing:
        raise InputError(
            f"the data is missing column(s) {missing} that the model was trained with; pass every "
            "training column (extra columns are ignored)"
        )
    names = [c.name for c in schema]
    extra = [c for c in table.columns if c not in set(names)]
    if extra:
        logger.info("ignoring column(s) the model was not trained with: %s", extra)
    return table.reindex(columns=names)  # dropped training columns may be absent: they are unused


def _target(y: Any, n_rows: int, result: Result) -> np.ndarray:
    """``y`` as the training target: numbers for regression, labels of the training classes' type."""
    if result.task == "regression":
        return prepare_target(y, n_rows, "regression")[0]
    series = y if isinstance(y, pd.Series) else pd.Series(_one_column(y))
    if len(series) != n_rows:
        raise InputError(f"X has {n_rows} rows but y has {len(series)} values; they must have one target per row")
    n_missing = int(series.isna().sum())
    if n_missing:
        raise InputError(f"y has {n_missing} missing value(s) (of {len(series)} rows); drop those rows from X and y")
    classes = np.asarray(result.classes_ if result.classes_ is not None else result.manifest["classes"])
    position = {level_text(c): i for i, c in enumerate(classes)}  # by text: 1, 1.0 and "1" are one label
    keys = [level_text(v) for v in label_array(series)]
    unseen = sorted(set(keys) - set(position))
    if unseen:
        raise InputError(
            f"y holds label(s) {unseen[:10]}{' …' if len(unseen) > 10 else ''} that the model was not trained "
            f"with; its classes are {list(position)}. Drop those rows or fit a new model."
        )
    return classes[[position[k] for k in keys]]


def _one_column(y: Any) -> np.ndarray:
    array = np.asarray(y)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise InputError(f"y must be 1-D (one target per row); got shape {array.shape}")
    return array


def _score(result: Result, features: pd.DataFrame, target: np.ndarray) -> float:
    _, scorer = resolve_scorer(result.metric, result.task)
    if result.task == "multiclass":
        scorer = _with_all_labels(scorer, result.classes_)
    try:
        return float(scorer(result.model, features, target))
    except InputError:
        raise
    except ValueError as exc:
        raise InputError(f"cannot compute {result.metric} on this data: {exc}") from None


def _with_all_labels(scorer, classes):
    """The scorer told every training class, for metrics that take ``labels`` (e.g. log loss):
    a batch of new rows need not hold every class."""
    import inspect

    from sklearn.metrics import make_scorer

    func, kwargs = getattr(scorer, "_score_func", None), getattr(scorer, "_kwargs", None)
    if func is None or kwargs is None or "labels" in kwargs or "labels" not in inspect.signature(func).parameters:
        return scorer
    return make_scorer(
        func, greater_is_better=scorer._sign > 0, response_method=scorer._response_method, labels=list(classes), **kwargs
    )


def _check_thresholds(psi_threshold, unseen_threshold, max_score_drop, relative_drop) -> None:
    def number(value) -> bool:
        return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)

    if not number(psi_threshold) or psi_threshold <= 0:
        raise InputError(f"psi_threshold must be a positive number (e.g. 0.25), got {psi_threshold!r}")
    if not number(unseen_threshold) or not 0 <= unseen_threshold < 1:
        raise InputError(f"unseen_threshold must be a share between 0 and 1 (e.g. 0.05), got {unseen_threshold!r}")
    if max_score_drop is not None and (not number(max_score_drop) or max_score_drop < 0):
        raise InputError(f"max_score_drop must be a non-negative number in the metric's units, got {max_score_drop!r}")
    if not number(relative_drop) or relative_drop < 0:
        raise InputError(f"relative_drop must be a non-negative share (e.g. 0.05), got {relative_drop!r}")
