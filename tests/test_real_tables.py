"""Real tables in, without preparation; a table with every dtype; the schema at predict time."""

import json
import warnings

import numpy as np
import pandas as pd
import pytest

import automl

from conftest import DATA, read_bundled

SUITE = {entry["name"]: entry for entry in json.loads((DATA / "suite.json").read_text())}


@pytest.mark.parametrize(
    "name, models, expected",
    [
        ("titanic", ["logistic_regression", "random_forest"], {"sex": "categorical", "deck": "categorical", "age": "numeric"}),
        ("penguins", ["logistic_regression", "random_forest"], {"island": "categorical", "sex": "categorical"}),
        ("mpg", ["ridge", "random_forest"], {"name": "categorical", "origin": "categorical", "horsepower": "numeric"}),
        ("adult", ["logistic_regression"], {"workclass": "categorical", "native-country": "categorical"}),
        ("diamonds", ["ridge"], {"cut": "categorical", "clarity": "categorical", "carat": "numeric"}),
    ],
)
def test_real_table_fits_as_it_is(name, models, expected):
    table = read_bundled(name)
    entry = SUITE[name]
    y = table.pop(entry["target"])
    result = automl.fit_best(table, y, models=models, n_trials=1, cv=2, time_budget=120)
    assert result.task == entry["task"]
    manifest = json.loads((result.path / "manifest.json").read_text())
    treatment = {c["name"]: c for c in manifest["columns"]}
    assert list(treatment) == list(table.columns), "every column's treatment is in the manifest"
    for column, kind in expected.items():
        assert treatment[column]["kind"] == kind, column
        assert treatment[column]["dtype"] == str(table[column].dtype)
    if name == "mpg":
        assert "rare levels are grouped" in treatment["name"]["note"]
    assert np.isfinite(result.score)
    assert len(result.predict(table.iloc[:25])) == 25


@pytest.fixture(scope="module")
def every_dtype():
    n = 240
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, n)
    X = pd.DataFrame({
        "float": rng.normal(size=n) + y,
        "int": rng.integers(0, 10, n),
        "nullable_int": pd.array(rng.integers(0, 5, n) + y, dtype="Int64"),
        "nullable_float": pd.array(rng.normal(size=n), dtype="Float64"),
        "bool": rng.integers(0, 2, n).astype(bool),
        "nullable_bool": pd.array(y.astype(bool), dtype="boolean"),
        "string": pd.array(np.where(y == 1, "yes", rng.choice(["no", "maybe"], n)), dtype="string"),
        "str": pd.Series(rng.choice(["a", "b", "c"], n)),
        "category": pd.Categorical(rng.choice(["x", "y", "z"], n)),
        "object": pd.Series(rng.choice(["p", "q"], n), dtype=object),
        "date": pd.date_range("2021-01-01", periods=n, freq="D"),
        "stamp_tz": pd.date_range("2021-01-01 08:15", periods=n, freq="7h", tz="Europe/Paris"),
        "row_id": np.arange(n),
        "note": [f"free text number {k} about nothing in particular" for k in range(n)],
        "constant": "same",
        "empty": np.nan,
    })
    X.loc[::7, "float"] = np.nan
    X.loc[3, "float"] = np.inf
    X.loc[::5, "nullable_float"] = pd.NA
    X.loc[::6, "nullable_int"] = pd.NA
    X.loc[::9, "string"] = pd.NA
    X.loc[::8, "str"] = None
    X.loc[::11, "date"] = pd.NaT
    X.loc[::13, "nullable_bool"] = pd.NA
    labels = np.where(y == 1, "positive", "negative")
    result = automl.fit_best(X, labels, models=["logistic_regression", "random_forest"], n_trials=1, cv=3, save=False)
    return X, labels, result


def test_every_dtype_with_missing_values_fits(every_dtype):
    X, labels, result = every_dtype
    kinds = {c["name"]: (c["kind"], c["note"]) for c in result.manifest["columns"]}
    assert kinds["float"] == ("numeric", "1 inf value(s) read as missing")
    assert kinds["nullable_int"][0] == kinds["nullable_float"][0] == kinds["nullable_bool"][0] == "numeric"
    assert kinds["string"][0] == kinds["str"][0] == kinds["category"][0] == kinds["object"][0] == "categorical"
    assert kinds["date"][0] == kinds["stamp_tz"][0] == "datetime"
    assert kinds["row_id"] == ("dropped", "identifier-like: unique integers in row order")
    assert kinds["note"][0] == "dropped" and kinds["note"][1].startswith("free text")
    assert kinds["constant"] == ("dropped", "constant: a single value")
    assert kinds["empty"] == ("dropped", "all values missing")
    date = next(c for c in result.manifest["columns"] if c["name"] == "stamp_tz")
    assert date["parts"] == ["year", "month", "day", "weekday", "hour"]
    assert result.score > 0.9
    assert set(result.predict(X)) <= {"positive", "negative"}


def test_predict_matches_columns_by_name_and_ignores_extras(every_dtype):
    X, _, result = every_dtype
    expected = result.predict_proba(X)
    shuffled = X[X.columns[::-1]].assign(unused=1)
    with pytest.warns(UserWarning, match=r"ignoring column\(s\) \['unused'\]"):
        np.testing.assert_allclose(result.predict_proba(shuffled), expected)


def test_unseen_categories_and_new_missing_values_are_handled(every_dtype):
    X, _, result = every_dtype
    batch = X.iloc[:10].copy()
    batch["str"] = "never seen"
    batch["category"] = pd.Categorical(["w"] * 10)
    batch["int"] = np.nan  # missing where training had none
    batch["date"] = batch["date"].astype(str)  # text, as a CSV would give
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        proba = result.predict_proba(batch)
    assert proba.shape == (10, 2) and np.isfinite(proba).all()


def test_missing_column_and_uncoercible_values_name_the_column(every_dtype):
    X, _, result = every_dtype
    with pytest.raises(automl.InputError, match=r"missing column\(s\) \['nullable_float'\]"):
        result.predict(X.drop(columns=["nullable_float"]))
    with pytest.raises(automl.InputError, match=r"column 'float' should be numeric .* holds values that are not numbers"):
        result.predict(X.assign(float="high"))
    with pytest.raises(automl.InputError, match=r"column 'date' should hold dates and times"):
        result.predict(X.assign(date="not a date"))


@pytest.mark.parametrize(
    "make_target, expected_classes",
    [
        (lambda y: y.astype(bool), [False, True]),
        (lambda y: pd.Series(pd.Categorical(np.where(y == 1, "benign", "malignant"))), ["benign", "malignant"]),
        (lambda y: pd.Series(np.where(y == 1, "benign", "malignant"), dtype="string"), ["benign", "malignant"]),
    ],
    ids=["bool", "category", "string"],
)
def test_target_types_are_kept(make_target, expected_classes):
    from sklearn.datasets import load_breast_cancer

    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    result = automl.fit_best(X, make_target(y), models=["logistic_regression"], n_trials=1, cv=3, save=False)
    assert result.manifest["classes"] == expected_classes
    assert set(result.predict(X).tolist()) == set(expected_classes)


def test_values_that_arrive_as_python_objects():
    """Decimals from a database, dates from .dt.date, periods and durations are read for what they are."""
    import datetime
    import decimal

    n = 120
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, n)
    X = pd.DataFrame({
        "amount": [decimal.Decimal(f"{v:.2f}") for v in rng.normal(size=n) + 2 * y],
        "day": [datetime.date(2022, 1, 1) + datetime.timedelta(days=int(d)) for d in rng.integers(0, 300, n)],
        "month": pd.Series(pd.period_range("2020-01", periods=n, freq="M")),
        "wait": pd.to_timedelta(rng.integers(0, 48, n) + 10 * y, unit="h"),
        "tags": [["a", "b"], ["c"]] * (n // 2),
        # Python ints past int64 (ids from another system, hashes): pandas keeps them as objects
        "big": [10**30 + int(v) * 10**25 for v in rng.integers(0, 50, n) + 20 * y],
    })
    result = automl.fit_best(X, y, models=["logistic_regression"], n_trials=1, cv=3, save=False)
    kinds = {c["name"]: (c["kind"], c["note"]) for c in result.manifest["columns"]}
    assert kinds["amount"][0] == "numeric"
    assert kinds["day"][0] == kinds["month"][0] == "datetime"
    assert kinds["wait"] == ("numeric", "a duration, in seconds")
    assert kinds["tags"] == ("dropped", "unhashable values (lists or dicts)")
    assert kinds["big"][0] == "numeric"
    assert result.score > 0.8
    assert result.predict(X.head(3)).shape == (3,)


def test_wrong_kinds_of_values_at_predict_time_name_the_column(every_dtype):
    X, _, result = every_dtype
    with pytest.raises(automl.InputError, match=r"column 'date' should hold dates and times .* int64 numbers"):
        result.predict(X.assign(date=X["date"].astype("int64")))
    with pytest.raises(automl.InputError, match=r"column 'float' should be numeric .* datetime64"):
        result.predict(X.assign(float=X["date"]))
    with pytest.raises(automl.InputError, match=r"duplicate column names \['str'\]"):
        result.predict(pd.concat([X, X[["str"]]], axis=1))
    with pytest.raises(automl.InputError, match="no rows"):
        result.predict(X.iloc[:0])


@pytest.mark.parametrize(
    "X, y, message",
    [
        (pd.DataFrame({"c": np.arange(40) + 1j, "z": np.arange(40)}), np.arange(40) % 2, "holds complex numbers"),
        (pd.DataFrame({"d": pd.date_range("2020", periods=40), "d__days": np.arange(40)}), np.arange(40) % 2,
         r"\['d__days'\] clash with the calendar features"),
    ],
    ids=["complex", "derived-name-clash"],
)
def test_tables_that_cannot_be_read(X, y, message):
    with pytest.raises(automl.InputError, match=message):
        automl.fit_best(X, y, models=["logistic_regression"], n_trials=1, save=False)


def test_unusual_targets():
    from automl.data.schema import prepare_target

    big = pd.Series(np.array([2**63 + 1, 1] * 10, dtype=np.uint64))
    assert set(prepare_target(big, 20, "auto")[0].tolist()) == {2**63 + 1, 1}
    assert prepare_target(pd.Series(pd.Categorical([0.5, 1.5] * 10)), 20, "auto")[1] == "binary"
    assert prepare_target(pd.Series([1, 2, np.int64(1)] * 5, dtype=object), 15, "auto")[1] == "binary"
    import decimal

    values, task = prepare_target(pd.Series([decimal.Decimal(f"{v:.3f}") for v in np.linspace(0, 1, 40)]), 40, "auto")
    assert task == "regression" and values.dtype == float
