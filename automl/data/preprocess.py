"""The preprocessing step at the head of every model pipeline.

It is an ordinary scikit-learn transformer, fitted inside each CV fold, so imputation values,
category levels and scaling never see the validation rows. It also coerces what arrives at
predict time (a DataFrame in any column order, or a plain array) to the schema seen in fit.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.impute import MissingIndicator, SimpleImputer
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler
from sklearn.utils.validation import _num_samples, check_is_fitted

from .compiled import compile_transform
from .schema import Column
from .._exceptions import InputError

__all__ = ["TablePreprocessor", "make_model_pipeline"]

MISSING_CATEGORY = "__missing__"
#: One-hot width cap per column; rarer levels share an "infrequent" column.
MAX_ONEHOT_LEVELS = 32
MAX_ORDINAL_LEVELS = 255
#: A numeric column gets a missing-value indicator only when at least this many fitted rows
#: miss it. An indicator seen on one or two rows is an id for those rows: a weakly regularized
#: model puts a huge weight on it and is then confidently wrong on the next row missing there
#: (penguins: one all-missing training row made a logistic regression give a test row missing
#: everything a 1e-7 probability of its true class).
MIN_MISSING_FOR_INDICATOR = 5


class TablePreprocessor(TransformerMixin, BaseEstimator):
    """Impute, encode and (for ``encoding="onehot"``) scale a table described by ``columns``.

    :param columns: the schema, a list of :class:`automl.data.schema.Column`; dropped columns are ignored.
    :param encoding: ``"onehot"`` or ``"ordinal"`` (see ``automl.ModelSpec.preprocessing``).
    """

    def __init__(self, columns: list[Column] | None = None, encoding: str = "onehot"):
        self.columns = columns
        self.encoding = encoding

    def fit(self, X, y=None):
        self._fit(self._coerce(X))
        return self

    def fit_transform(self, X, y=None, **fit_params):
        frame = self._coerce(X)  # once, not once for fit and again for transform
        return self._fit(frame, transform=True)

    def _fit(self, frame: pd.DataFrame, transform: bool = False):
        numeric = [n for c in self._used if c.kind in ("numeric", "datetime") for n in _output_names(c)]
        categorical = [c.name for c in self._used if c.kind == "categorical"]
        parts = []
        if numeric:
            steps = [SimpleImputer(strategy="median", keep_empty_features=True)]
            if self.encoding == "onehot":
                steps.append(StandardScaler())
            parts.append(("numeric", make_pipeline(*steps), numeric))
            # unscaled 0/1, like one-hot levels: scaling a rare indicator would blow it up
            flagged = [n for n in numeric if int(frame[n].isna().sum()) >= MIN_MISSING_FOR_INDICATOR]
            if flagged:
                parts.append(("missing", MissingIndicator(features="all"), flagged))
        if categorical:
            if self.encoding == "onehot":
                encoder = OneHotEncoder(
                    handle_unknown="infrequent_if_exist",
                    max_categories=MAX_ONEHOT_LEVELS,
                    sparse_output=False,
                    dtype=np.float64,
                )
            else:
                encoder = OrdinalEncoder(
                    handle_unknown="use_encoded_value",
                    unknown_value=-1,
                    max_categories=MAX_ORDINAL_LEVELS,
                    dtype=np.float64,
                )
            parts.append(("categorical", encoder, categorical))
        self.__dict__.pop("_compiled", None)  # refit: the NumPy form of the last fit is stale
        self.transformer_ = ColumnTransformer(parts, sparse_threshold=0.0)
        self.n_features_in_ = len(self.columns)
        self.feature_names_in_ = np.array([c.name for c in self.columns], dtype=object)
        if transform:
            return self.transformer_.fit_transform(frame)
        self.transformer_.fit(frame)
        return None

    def transform(self, X):
        check_is_fitted(self, "transformer_")
        return self.transform_columns(self.coerce_columns(X), rows=_num_samples(X))

    def transform_columns(self, columns: dict[str, np.ndarray], rows: int) -> np.ndarray:
        """The second half of ``transform``: impute, encode and scale what ``coerce_columns``
        gave for a table of ``rows`` rows."""
        check_is_fitted(self, "transformer_")
        if "_compiled" not in self.__dict__:  # read off the fitted parts once (also after unpickling)
            self._compiled = compile_transform(self.transformer_)
        if self._compiled is not None:  # the same numbers, in a fraction of the time per call
            return self._compiled.transform(columns)
        return self.transformer_.transform(pd.DataFrame(columns, index=range(rows), copy=False))

    def __getstate__(self):
        state = super().__getstate__()
        state.pop("_compiled", None)  # derived from transformer_: pickles stay as they were
        return state

    def get_feature_names_out(self, input_features=None):
        check_is_fitted(self, "transformer_")
        return self.transformer_.get_feature_names_out()

    @property
    def _used(self) -> list[Column]:
        if self.encoding not in ("onehot", "ordinal"):
            raise ValueError(f"encoding must be 'onehot' or 'ordinal', got {self.encoding!r}")
        return [c for c in self.columns if c.kind != "dropped"]

    def _coerce(self, X) -> pd.DataFrame:
        """The schema's columns, by name, as float (numeric/datetime) or str (categorical)."""
        return pd.DataFrame(self.coerce_columns(X), index=range(_num_samples(X)), copy=False)

    def coerce_columns(self, X) -> dict[str, np.ndarray]:
        """What ``_coerce`` holds, as arrays by output column name, in output order: the first
        half of ``transform``. It depends on ``columns`` alone, so preprocessors fitted on the
        same schema (an ensemble's members) can share it."""
        names = [c.name for c in self.columns]
        if not isinstance(X, pd.DataFrame):
            array = np.asarray(X, dtype=object)
            if array.ndim != 2 or array.shape[1] != len(names):
                raise InputError(
                    f"expected a table with {len(names)} columns {names}; got shape {array.shape}"
                )
            X = pd.DataFrame(array, columns=names)
        else:
            X = X.set_axis([str(c) for c in X.columns], axis=1)
            repeated = sorted({n for n in X.columns[X.columns.duplicated()] if n in set(names)})
            if repeated:
                raise InputError(f"input has duplicate column names {repeated}; pass each training column once")
            missing = [n for n in names if n not in X.columns]
            if missing:
                raise InputError(
                    f"input is missing column(s) {missing} that the model was trained with; "
                    "pass every training column (extra columns are ignored)"
                )
            known = set(names)
            extra = [c for c in X.columns if c not in known]
            if extra:
                warnings.warn(
                    f"ignoring column(s) {extra[:10]}{' ...' if len(extra) > 10 else ''} that the model "
                    "was not trained with",
                    UserWarning,
                    stacklevel=4,
                )
        used = self._used
        # plain numeric columns convert in one block; the rest column by column
        plain = [c.name for c in used if c.kind == "numeric" and _is_plain_number(X[c.name])]
        out = {}
        if plain:
            block = np.array(X[plain].to_numpy(dtype=float, na_value=np.nan))
            block[~np.isfinite(block)] = np.nan  # inf carries no usable magnitude: missing
            out.update(zip(plain, block.T))
        for col in used:
            if col.kind == "datetime":
                out.update(_calendar(X[col.name], col))
            elif col.name not in out:
                out[col.name] = _coerce_column(X[col.name], col)
        return {n: out[n] for c in used for n in _output_names(c)}


def _output_names(col: Column) -> list[str]:
    """The numeric columns one input column becomes before encoding."""
    if col.kind == "datetime":
        return [f"{col.name}__{part}" for part in (*col.parts, "days")]
    return [col.name]


def _calendar(series: pd.Series, col: Column) -> dict[str, np.ndarray]:
    """Calendar features of a datetime column (in UTC), plus days since 1970."""
    if isinstance(series.dtype, pd.PeriodDtype):
        series = series.dt.to_timestamp()
    if pd.api.types.is_numeric_dtype(series) and series.notna().any():
        raise InputError(
            f"column {col.name!r} should hold dates and times (it was {col.dtype} in training) but holds "
            f"{series.dtype} numbers; pass dates (e.g. pd.to_datetime(values, unit='s'))"
        )
    try:
        if pd.api.types.is_datetime64_any_dtype(series):
            stamps = pd.to_datetime(series, utc=True)
        else:  # e.g. text read from a CSV at predict time
            stamps = pd.to_datetime(series, utc=True, format="mixed")
    except (TypeError, ValueError) as exc:
        raise InputError(
            f"column {col.name!r} should hold dates and times (it was {col.dtype} in training) "
            f"but holds values that are not: {exc}"
        ) from None
    attribute = {"weekday": "day_of_week"}
    out = {
        f"{col.name}__{part}": getattr(stamps.dt, attribute.get(part, part)).to_numpy(dtype=float, na_value=np.nan)
        for part in col.parts
    }
    days = (stamps - pd.Timestamp("1970-01-01", tz="UTC")) / pd.Timedelta(days=1)
    out[f"{col.name}__days"] = days.to_numpy(dtype=float, na_value=np.nan)
    return out


def _is_plain_number(series: pd.Series) -> bool:
    return (
        pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)
        and not pd.api.types.is_complex_dtype(series)
    )


def _coerce_column(series: pd.Series, col: Column) -> pd.Series | np.ndarray:
    if col.kind == "categorical":
        return _category_text(series)
    if col.dtype.startswith("timedelta"):
        try:
            return pd.to_timedelta(series).dt.total_seconds().to_numpy(dtype=float, na_value=np.nan)
        except (TypeError, ValueError) as exc:
            raise InputError(f"column {col.name!r} should hold durations (it was {col.dtype} in training): {exc}") from None
    if (
        pd.api.types.is_datetime64_any_dtype(series) or pd.api.types.is_timedelta64_dtype(series)
        or isinstance(series.dtype, pd.PeriodDtype)
    ):
        raise InputError(
            f"column {col.name!r} should be numeric (it was {col.dtype} in training) but holds {series.dtype} values"
        )
    try:
        if pd.api.types.is_bool_dtype(series):
            series = series.astype("Float64")
        elif not pd.api.types.is_numeric_dtype(series):
            series = pd.to_numeric(series)
        values = np.array(series.to_numpy(dtype=float, na_value=np.nan))  # a writable copy
    except (TypeError, ValueError) as exc:
        raise InputError(
            f"column {col.name!r} should be numeric (it was {col.dtype} in training) but holds "
            f"values that are not numbers: {exc}"
        ) from None
    values[~np.isfinite(values)] = np.nan  # inf carries no usable magnitude: treat as missing
    return values


def _category_text(series: pd.Series) -> np.ndarray:
    """A categorical column's levels as ``level_text`` gives them, ``MISSING_CATEGORY`` where missing.

    A column of text (the usual case) is taken as it is, and a column of plain numbers converts
    each distinct value once: converting value by value costs about 0.25 µs a value, most of the
    preprocessing a prediction does on a table of many categorical columns. Anything else (mixed
    types, booleans, nullable numbers, subclasses of ``str`` such as a ``str`` enum, whose text
    is not the value itself) goes value by value, where 1, 1.0 and True stay apart.
    """
    if isinstance(series.dtype, np.dtype) and series.dtype.kind in "iuf" and series.dtype.itemsize <= 8:
        # (a long double would be rounded to a float64 by factorize)
        codes, uniques = pd.factorize(series.to_numpy())
        # each distinct value as the Python number the value-by-value path sees (a float32 0.1
        # reads "0.10000000149011612" there, as the levels of runs saved before were read)
        text = np.array([level_text(u) for u in uniques.astype(object)] + [MISSING_CATEGORY], dtype=object)
        return text[codes]  # code -1, a missing value: the last entry
    values = series.to_numpy(dtype=object, na_value=None)
    missing = pd.isna(values)
    if isinstance(series.dtype, pd.StringDtype) or set(map(type, values)) <= {str, type(None)}:
        text = values.copy()  # every level is text already; a copy, never the series' own array
    else:
        text = np.array([level_text(v) for v in values], dtype=object)
    text[missing] = MISSING_CATEGORY
    return text


def level_text(value) -> str:
    """A category level as text; 101.0 reads as "101", as it would in a column without blanks."""
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


def make_model_pipeline(columns: list[Column], encoding: str, estimator) -> Pipeline:
    """The full pipeline a model is tuned, refit and saved as: preprocessing + estimator."""
    return Pipeline([("prepare", TablePreprocessor(columns, encoding)), ("model", estimator)])
