"""The preprocessing's NumPy form gives the very numbers of its scikit-learn ColumnTransformer:
on every bundled table, and on a table made to reach every branch (missing values and their
indicators, a column empty in fit, infrequent and unknown levels, dates, booleans)."""

import enum
import io
import json

import joblib
import numpy as np
import pandas as pd
import pytest

from automl.data.preprocess import MAX_ONEHOT_LEVELS, MAX_ORDINAL_LEVELS, TablePreprocessor
from automl.data.schema import infer_schema
from conftest import DATA, read_bundled

SUITE = [entry for entry in json.loads((DATA / "suite.json").read_text())]


def _both(preprocessor: TablePreprocessor, table: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    fast = preprocessor.transform(table)
    assert preprocessor._compiled is not None, "the fitted parts were not recognised"
    return fast, preprocessor.transformer_.transform(preprocessor._coerce(table))


@pytest.mark.parametrize("encoding", ["onehot", "ordinal"])
@pytest.mark.parametrize("entry", SUITE, ids=[e["name"] for e in SUITE])
def test_bundled_tables_give_identical_numbers(entry, encoding):
    table = read_bundled(entry["file"].removesuffix(".csv.gz")).drop(columns=entry["target"])
    table = table.sample(n=min(len(table), 4000), random_state=0).reset_index(drop=True)
    half = len(table) // 2
    preprocessor = TablePreprocessor(infer_schema(table.iloc[:half]), encoding).fit(table.iloc[:half])
    fast, slow = _both(preprocessor, table.iloc[half:])
    np.testing.assert_array_equal(fast, slow)


def _awkward(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    many = rng.zipf(1.3, n) % (MAX_ORDINAL_LEVELS + 60)  # long tails: infrequent levels for both encoders
    gaps = rng.normal(size=n)
    gaps[rng.random(n) < 0.2] = np.nan
    return pd.DataFrame({
        "gaps": gaps,
        "empty": np.full(n, np.nan),
        "few": rng.choice(["a", "b", "c", None], n),
        "tail": [f"level{v}" for v in rng.zipf(1.5, n) % (MAX_ONEHOT_LEVELS + 20)],
        "many": [f"v{v}" for v in many],
        "when": pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 1000, n), unit="D"),
        "flag": rng.random(n) < 0.5,
        "count": rng.integers(0, 50, n),
    })


@pytest.mark.parametrize("encoding", ["onehot", "ordinal"])
def test_every_branch_gives_identical_numbers(encoding):
    train, later = _awkward(3000, 0), _awkward(800, 1)
    later.loc[:20, "tail"] = "never seen"
    later.loc[20:40, "many"] = "never seen either"
    later.loc[40:60, "gaps"] = np.nan
    later.loc[60:80, "empty"] = 3.0
    preprocessor = TablePreprocessor(infer_schema(train), encoding).fit(train)
    fast, slow = _both(preprocessor, later)
    np.testing.assert_array_equal(fast, slow)
    one_row = later.iloc[[5]]
    np.testing.assert_array_equal(preprocessor.transform(one_row), slow[5:6])


def test_the_numpy_form_is_not_pickled_and_is_rebuilt_after_loading():
    train = _awkward(500, 2)
    preprocessor = TablePreprocessor(infer_schema(train), "onehot").fit(train)
    expected = preprocessor.transform(train)
    buffer = io.BytesIO()
    joblib.dump(preprocessor, buffer)
    buffer.seek(0)
    restored = joblib.load(buffer)
    assert "_compiled" not in vars(restored)
    np.testing.assert_array_equal(restored.transform(train), expected)
    refit = preprocessor.fit(_awkward(500, 3))  # a refit forgets the old form
    assert "_compiled" not in vars(refit)


class _Colour(str, enum.Enum):
    RED = "red"


@pytest.mark.parametrize("column", [
    pd.Series(["t", "f", None, "t", np.nan]),  # text with missing values (object)
    pd.Series(["t", "f", None, "t"], dtype="str"),  # pandas' text type
    pd.Series([1.0, 2.5, np.nan, 1.0, -0.0, np.inf]),  # numbers as levels: 1.0 reads "1"
    pd.Series([3, 1, 3, 7], dtype="int64"),
    pd.Series([0.1, 2.0, 0.1], dtype="float32"),  # read as the Python floats they become
    pd.Series([1, 1.0, True, "1", None], dtype=object),  # mixed: True stays apart from 1
    pd.Series(pd.Categorical(["x", "y", None, "x"])),
    pd.Series([1, None, 3], dtype="Int64"),
    pd.Series([_Colour.RED, None, _Colour.RED], dtype=object),  # a str subclass whose text is not its value
    pd.Series([np.str_("a"), "b", None], dtype=object),
    pd.Series(np.array([2.0**53 + 1, 1.0], dtype=np.longdouble)),  # not rounded to a float64
    pd.Series([True, False, True]),
    pd.Series(np.array([np.iinfo(np.uint64).max, 0], dtype=np.uint64)),
    pd.Series([], dtype=object),
    pd.Series([None, np.nan, pd.NA], dtype=object),  # every value missing
], ids=["object", "str", "float", "int", "float32", "mixed", "categorical", "nullable", "str-enum", "numpy-str",
        "longdouble", "bool", "uint64", "empty", "all-missing"])
def test_categorical_levels_read_as_value_by_value(column):
    """The column-at-once conversion of a categorical column gives what converting each value with
    ``level_text`` gives (missing values as ``MISSING_CATEGORY``)."""
    from automl.data.preprocess import MISSING_CATEGORY, _category_text, level_text

    expected = [MISSING_CATEGORY if pd.isna(v) else level_text(v) for v in column.to_numpy(dtype=object, na_value=None)]
    got = _category_text(column)
    assert got.dtype == object and list(got) == expected
    assert all(type(v) is str for v in got)
