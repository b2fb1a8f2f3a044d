"""Turning what the user hands over into a validated table, a target and a task.

Nothing here learns from the data beyond its types and shape: everything that is fitted
(imputation, encoding, scaling) happens inside each model's pipeline, per CV fold.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime
import logging
import numbers
from typing import Any

import numpy as np
import pandas as pd

from .._exceptions import InputError
from .._spec import TASKS

__all__ = ["Column", "columns_from_records", "check_task_name", "as_table", "infer_schema", "prepare_target"]

logger = logging.getLogger(__name__)

#: Numeric targets with more distinct values than this are treated as regression by task="auto".
MAX_CLASSES_FOR_AUTO = 20
#: A text column whose values are unique in at least this share of its rows names rows
#: (an identifier) or holds free text; it carries no level a model could learn from.
UNIQUE_SHARE_OF_AN_IDENTIFIER = 0.9
#: Columns with fewer rows than this are never judged identifier-like: too little evidence.
MIN_ROWS_TO_JUDGE = 30
#: Categorical columns with more levels than this have their rare levels grouped.
MANY_LEVELS = 32


@dataclasses.dataclass(frozen=True)
class Column:
    """One input column: its name, the dtype it came with, and how models will see it.

    ``kind`` is ``"numeric"``, ``"categorical"``, ``"datetime"`` (turned into the calendar
    features named in ``parts`` plus days since 1970) or ``"dropped"``; ``note`` says what was
    noticed or done (why a column was dropped, rare levels grouped, inf read as missing).
    """

    name: str
    dtype: str
    kind: str
    note: str = ""
    parts: tuple[str, ...] = ()

    def _replace(self, **changes) -> "Column":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["parts"] = list(self.parts)
        return data


def check_task_name(task: str, *, allow_auto: bool = True) -> None:
    valid = sorted(TASKS) + (["auto", "classification"] if allow_auto else [])
    if task not in valid:
        raise InputError(f"unknown task {task!r}; use one of {valid}")


def as_table(X: Any) -> pd.DataFrame:
    """X as a DataFrame with unique string column names; a clear error for unusable input."""
    if X is None:
        raise InputError("X is None; pass a table (pandas DataFrame, 2-D numpy array or list of rows)")
    if isinstance(X, pd.Series):
        raise InputError(
            "X is a pandas Series (one column); pass a DataFrame, e.g. X.to_frame(), so that "
            "the column keeps its name"
        )
    if not isinstance(X, pd.DataFrame):
        array = np.asarray(X, dtype=object if _is_ragged_or_mixed(X) else None)
        if array.ndim != 2:
            raise InputError(
                f"X must be 2-D (rows x columns); got an array with {array.ndim} dimension(s) "
                f"and shape {array.shape}. For a single feature use X.reshape(-1, 1)."
            )
        X = pd.DataFrame(array, columns=[f"x{i}" for i in range(array.shape[1])])
        X = X.infer_objects()
    if X.shape[0] == 0:
        raise InputError("X has no rows; pass a table with at least a few dozen rows")
    if X.shape[1] == 0:
        raise InputError("X has no feature columns; pass at least one column besides the target")
    names = [str(c) for c in X.columns]
    duplicated = sorted(n for n, count in collections.Counter(names).items() if count > 1)
    if duplicated:
        raise InputError(
            f"X has duplicate column names {duplicated}; rename them so each column is unique"
        )
    if list(X.columns) != names:
        X = X.set_axis(names, axis=1)
    return X.reset_index(drop=True)


def _is_ragged_or_mixed(X: Any) -> bool:
    if isinstance(X, np.ndarray):
        return False
    try:
        np.asarray(X, dtype=float)
        return False
    except (TypeError, ValueError):
        return True


def infer_schema(X: pd.DataFrame) -> list[Column]:
    """Decide, from dtypes and a few counts, how each column is handed to the models.

    Every decision is logged and kept in the column's ``note`` (and so in the manifest).
    """
    columns = [_column(X[name], name) for name in X.columns]
    for col in columns:
        if col.kind == "dropped":
            logger.info("column %r dropped: %s", col.name, col.note)
        elif col.note:
            logger.info("column %r (%s): %s", col.name, col.kind, col.note)
    _check_derived_names(columns)
    if all(col.kind == "dropped" for col in columns):
        raise InputError(
            "no usable feature column: every column is empty, constant or identifier-like "
            f"({', '.join(f'{c.name!r}: {c.note}' for c in columns)})"
        )
    return columns


def _check_derived_names(columns: list[Column]) -> None:
    names = {c.name for c in columns}
    for col in columns:
        clashes = sorted(names & {f"{col.name}__{part}" for part in (*col.parts, "days")}) if col.kind == "datetime" else []
        if clashes:
            raise InputError(
                f"column(s) {clashes} clash with the calendar features made from datetime column "
                f"{col.name!r}; rename them"
            )


def _column(series: pd.Series, name: str) -> Column:
    dtype = str(series.dtype)
    if pd.api.types.is_complex_dtype(series):
        raise InputError(f"column {name!r} holds complex numbers; split it into real columns (e.g. real and imaginary parts)")
    present = series.dropna()
    if present.empty:
        return Column(name, dtype, "dropped", "all values missing")
    try:
        n_distinct = series.nunique(dropna=False)
    except TypeError:  # lists, dicts, sets: values with no equality a model could use
        return Column(name, dtype, "dropped", "unhashable values (lists or dicts)")
    if n_distinct <= 1:
        return Column(name, dtype, "dropped", "constant: a single value")
    if series.dtype == object:
        # numbers or dates that arrived as Python objects (Decimal from a database, dates)
        if all(isinstance(v, numbers.Number) and not isinstance(v, bool) for v in present):
            numeric = pd.to_numeric(present)
            if numeric.dtype == object:  # integers past int64/uint64 (or a mix of both): as floats, like the models see them
                numeric = numeric.astype(float)
            return _column(numeric.reindex(series.index), name)._replace(dtype=dtype)
        if all(isinstance(v, (datetime.date, pd.Timestamp)) for v in present):
            return _column(pd.to_datetime(present, utc=True).reindex(series.index), name)._replace(dtype=dtype)
    if isinstance(series.dtype, pd.PeriodDtype):
        return _column(series.dt.to_timestamp(), name)._replace(dtype=dtype)
    if pd.api.types.is_timedelta64_dtype(series):
        return Column(name, dtype, "numeric", "a duration, in seconds")
    if pd.api.types.is_datetime64_any_dtype(series):
        stamps = pd.to_datetime(present, utc=True)
        parts = ["year", "month", "day", "weekday"]
        if (stamps.dt.hour != 0).any() or (stamps.dt.minute != 0).any():
            parts.append("hour")
        return Column(name, dtype, "datetime", "calendar features and days since 1970", tuple(parts))
    if pd.api.types.is_bool_dtype(series) or pd.api.types.is_numeric_dtype(series):
        notes = []
        if not pd.api.types.is_bool_dtype(series):
            values = present.to_numpy(dtype=float)
            n_inf = int(np.isinf(values).sum())
            if n_inf:
                notes.append(f"{n_inf} inf value(s) read as missing")
            if (
                pd.api.types.is_integer_dtype(series) and len(present) >= MIN_ROWS_TO_JUDGE
                and present.is_unique and (present.is_monotonic_increasing or present.is_monotonic_decreasing)
            ):
                return Column(name, dtype, "dropped", "identifier-like: unique integers in row order")
        return Column(name, dtype, "numeric", "; ".join(notes))
    levels = present.astype(str)
    n_levels = levels.nunique()
    if len(present) >= MIN_ROWS_TO_JUDGE and n_levels >= UNIQUE_SHARE_OF_AN_IDENTIFIER * len(present):
        words = levels.str.split().str.len().mean()
        what = "free text" if words > 3 else "identifier-like"
        return Column(name, dtype, "dropped", f"{what}: {n_levels} distinct values in {len(present)} rows")
    note = f"{n_levels} levels: rare levels are grouped" if n_levels > MANY_LEVELS else ""
    return Column(name, dtype, "categorical", note)


def prepare_target(y: Any, n_rows: int, task: str) -> tuple[np.ndarray, str]:
    """Validate ``y`` against the table and settle the task; returns (y, task)."""
    check_task_name(task)
    if y is None:
        raise InputError("y is None; pass the target values (one per row of X)")
    series = y if isinstance(y, pd.Series) else None
    if series is None:
        array = np.asarray(y)
        if array.ndim == 2 and array.shape[1] == 1:
            array = array[:, 0]
        if array.ndim != 1:
            raise InputError(
                f"y must be 1-D (one target per row); got shape {array.shape}. "
                "Multi-output targets are not supported."
            )
        series = pd.Series(array)
    if len(series) != n_rows:
        raise InputError(
            f"X has {n_rows} rows but y has {len(series)} values; they must have one target per row"
        )
    if pd.api.types.is_complex_dtype(series):
        raise InputError("y holds complex numbers; a target must be real numbers or labels")
    if series.dtype == object and series.notna().all() and all(
        isinstance(v, numbers.Number) and not isinstance(v, (bool, np.bool_)) for v in series
    ):
        series = pd.to_numeric(series)  # numbers stored as Python objects (e.g. Decimal)
    n_missing = int(series.isna().sum())
    if n_missing:
        raise InputError(
            f"y has {n_missing} missing value(s) (of {len(series)} rows); drop those rows "
            "from X and y, or fill the target, before fitting"
        )
    if task == "auto":
        task = _infer_task(series)
        logger.info("task inferred from the target: %s", task)
    if task == "regression":
        if not pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
            raise InputError(
                f"task 'regression' needs a numeric target; y has dtype {series.dtype}. "
                "Use task='auto' or a classification task for labels."
            )
        values = series.to_numpy(dtype=float)
        if not np.isfinite(values).all():
            raise InputError("y contains inf; regression targets must be finite numbers")
        return values, task
    labels = label_array(series)
    n_classes = len(pd.unique(labels))
    if n_classes < 2:
        raise InputError(
            f"y has a single class ({_plain(labels[0])!r}); classification needs at least two classes"
        )
    inferred = "binary" if n_classes == 2 else "multiclass"
    if task == "classification":
        task = inferred
    elif task != inferred:
        raise InputError(f"task {task!r} was requested but y has {n_classes} classes ({inferred})")
    return labels, task


def _plain(value):
    return value.item() if isinstance(value, np.generic) else value


def _infer_task(series: pd.Series) -> str:
    if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
        values = series.to_numpy(dtype=float)
        has_fraction = bool(np.any(values != np.round(values)))
        if has_fraction or series.nunique() > MAX_CLASSES_FOR_AUTO:
            return "regression"
    return "binary" if series.nunique() == 2 else "multiclass"


def _label_kind(value) -> str:
    if isinstance(value, (bool, np.bool_)):
        return "bool"
    if isinstance(value, numbers.Number):
        return "number"
    return "text" if isinstance(value, str) else type(value).__name__


def label_array(series: pd.Series) -> np.ndarray:
    """Class labels as a plain numpy array that scikit-learn sorts and compares reliably."""
    if isinstance(series.dtype, pd.CategoricalDtype):
        if pd.api.types.is_float_dtype(series.cat.categories.dtype):
            return series.to_numpy(dtype=object)  # declared classes: fractional values are labels
        series = series.astype(series.cat.categories.dtype)
    if pd.api.types.is_bool_dtype(series):
        return series.to_numpy(dtype=bool)
    if pd.api.types.is_integer_dtype(series):
        return series.to_numpy(dtype=getattr(series.dtype, "numpy_dtype", series.dtype))
    if pd.api.types.is_float_dtype(series):
        values = series.to_numpy(dtype=float)
        if not np.all(values == np.round(values)):
            raise InputError(
                "y holds fractional numbers but a classification task was requested; use "
                "task='regression', or pass the class labels as integers or strings"
            )
        return values
    values = series.to_numpy(dtype=object)
    if len({_label_kind(v) for v in values}) > 1:
        raise InputError(
            "y mixes label types (e.g. numbers and strings); convert it to one type, "
            "e.g. y.astype(str)"
        )
    return values


def columns_from_records(records: list[dict]) -> list[Column]:
    """The schema as a manifest records it (``Column.to_dict`` of each column), read back."""
    return [Column(**{**c, "parts": tuple(c.get("parts", ()))}) for c in records]
