"""The fitted preprocessing as plain NumPy: the same numbers as its scikit-learn ColumnTransformer,
without that machinery's fixed cost per call (checks, column selection, a pandas round trip for
every part), which is most of the time a one-row prediction takes.

:class:`CompiledTransform` is read off a fitted ``TablePreprocessor.transformer_``: the imputer's
medians, the scaler's means and scales, which columns get a missing-value indicator, and each
categorical column's levels as the encoder numbers them (an infrequent level, or an unknown one,
goes where the encoder puts it). ``compile_transform`` returns None for anything it does not
recognise, and the preprocessor then runs the ColumnTransformer as before.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np
import pandas as pd
from sklearn.impute import MissingIndicator, SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

__all__ = ["CompiledTransform", "compile_transform"]

#: Up to this many rows, categorical levels are looked up one by one rather than hash-joined.
FEW_ROWS = 64


@dataclasses.dataclass(frozen=True)
class _Levels:
    """One categorical column as its encoder numbers it: the frequent levels in output order;
    ``infrequent``, the output of the levels seen in fit but too rare to have their own (None
    when there are none); ``rare``, those levels; ``unknown``, the ordinal code of a level never
    seen (a one-hot encoder sends it to the infrequent column, or to no column)."""

    index: pd.Index
    infrequent: int | None
    rare: np.ndarray
    unknown: float

    @functools.cached_property
    def codes(self) -> dict:
        return {level: code for code, level in enumerate(self.index)}


@dataclasses.dataclass(frozen=True)
class CompiledTransform:
    numeric: list[str]
    medians: np.ndarray
    means: np.ndarray | None  # None: not scaled (ordinal encoding)
    scales: np.ndarray | None
    flagged: list[str]
    categorical: list[str]
    levels: list[_Levels]
    onehot: bool
    n_outputs: int

    def transform(self, columns: dict[str, np.ndarray]) -> np.ndarray:
        """The columns as ``TablePreprocessor.coerce_columns`` gives them, transformed."""
        parts = []
        if self.numeric:
            block = np.column_stack([columns[n] for n in self.numeric]).astype(float)
            missing = np.isnan(block)
            if missing.any():
                block[missing] = np.take(self.medians, np.nonzero(missing)[1])
            if self.means is not None:
                block -= self.means
                block /= self.scales
            parts.append(block)
            if self.flagged:
                parts.append(np.column_stack([np.isnan(columns[n]) for n in self.flagged]).astype(float))
        for name, levels in zip(self.categorical, self.levels):
            parts.append(self._encode(np.asarray(columns[name], dtype=object), levels))
        out = np.hstack(parts)
        if out.shape[1] != self.n_outputs:  # a safety net: never hand a model the wrong width
            raise RuntimeError(f"compiled preprocessing gave {out.shape[1]} columns, expected {self.n_outputs}")
        return out

    def _encode(self, values: np.ndarray, levels: _Levels) -> np.ndarray:
        if len(values) <= FEW_ROWS:  # a lookup per value: cheaper than a hash join on a few rows
            codes = np.fromiter((levels.codes.get(v, -1) for v in values), dtype=np.intp, count=len(values))
        else:
            codes = levels.index.get_indexer(values)
        other = codes < 0
        if not self.onehot:
            out = codes.astype(float)
            if other.any():
                out[other] = levels.unknown
                if levels.infrequent is not None:
                    out[other & np.isin(values, levels.rare)] = levels.infrequent
            return out.reshape(-1, 1)
        out = np.zeros((len(values), len(levels.index) + (levels.infrequent is not None)))
        out[np.nonzero(~other)[0], codes[~other]] = 1.0
        if levels.infrequent is not None:  # infrequent_if_exist: a level never seen goes there too
            out[other, levels.infrequent] = 1.0
        return out


def compile_transform(transformer) -> CompiledTransform | None:
    """The NumPy form of a fitted ``TablePreprocessor.transformer_``, or None when its parts are
    not the ones ``TablePreprocessor`` builds (then it is not compiled)."""
    try:
        parts = {name: (step, list(columns)) for name, step, columns in transformer.transformers_ if name != "remainder"}
        if list(parts) not in _PART_ORDERS or getattr(transformer, "_sklearn_output_config", {}).get("transform"):
            return None
        numeric, medians, means, scales = _numeric(*parts["numeric"]) if "numeric" in parts else ([], None, None, None)
        flagged = _flagged(*parts["missing"]) if "missing" in parts else []
        categorical, levels, onehot = _categorical(*parts["categorical"]) if "categorical" in parts else ([], [], True)
    except _Unknown:
        return None
    n_outputs = len(transformer.get_feature_names_out())
    return CompiledTransform(numeric, medians, means, scales, flagged, categorical, levels, onehot, n_outputs)


_PART_ORDERS = (
    ["numeric"], ["numeric", "missing"], ["categorical"], ["numeric", "categorical"],
    ["numeric", "missing", "categorical"],
)


class _Unknown(Exception):
    """A fitted part this module does not know how to replay."""


def _numeric(step, columns):
    steps = step.steps if isinstance(step, Pipeline) else [(None, step)]
    imputer, *rest = [s for _, s in steps]
    if not isinstance(imputer, SimpleImputer) or imputer.strategy != "median" or imputer.add_indicator:
        raise _Unknown
    if len(imputer.statistics_) != len(columns) or np.isnan(imputer.statistics_).any():
        raise _Unknown
    means = scales = None
    if rest:
        (scaler,) = rest
        if not isinstance(scaler, StandardScaler) or not (scaler.with_mean and scaler.with_std):
            raise _Unknown
        means, scales = scaler.mean_, scaler.scale_
    return columns, np.asarray(imputer.statistics_, dtype=float), means, scales


def _flagged(step, columns):
    if not isinstance(step, MissingIndicator) or step.features != "all" or not np.isnan(step.missing_values):
        raise _Unknown
    return columns


def _categorical(encoder, columns):
    if isinstance(encoder, OneHotEncoder):
        if encoder.drop is not None or encoder.handle_unknown != "infrequent_if_exist" or encoder.sparse_output:
            raise _Unknown
        onehot = True
    elif isinstance(encoder, OrdinalEncoder):
        if encoder.handle_unknown != "use_encoded_value":
            raise _Unknown
        onehot = False
    else:
        raise _Unknown
    infrequent = getattr(encoder, "infrequent_categories_", None) or [None] * len(columns)
    unknown = np.nan if onehot else float(encoder.unknown_value)
    levels = []
    for categories, rare in zip(encoder.categories_, infrequent):
        rare = np.array([], dtype=object) if rare is None else np.asarray(rare, dtype=object)
        frequent = [c for c in categories if c not in set(rare)]
        levels.append(_Levels(pd.Index(frequent, dtype=object), len(frequent) if len(rare) else None, rare, unknown))
    return columns, levels, onehot
