"""Monitoring: `automl.evaluate` and `automl evaluate` on real runs, real tables and real shifts."""

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import read_bundled
from sklearn.datasets import load_digits, load_wine

import automl
from automl.data.schema import Column, infer_schema
from automl.review.evaluate import population_stability_index
from automl.data.profile import MAX_LEVELS, profile_table

AUTOML = shutil.which("automl", path=str(Path(sys.executable).parent)) or "automl"
FEATURES = ["age", "workclass", "fnlwgt", "education-num", "marital-status", "occupation", "relationship",
            "race", "sex", "capital-gain", "capital-loss", "hours-per-week", "native-country"]


def automl_cli(*args):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run([AUTOML, *args], capture_output=True, text=True, env=env, timeout=300, check=False)


def fit(X, y, path, model):
    return automl.fit_best(X, y, models=[model], n_trials=2, cv=3, time_budget=None, path=path, seed=0)


@pytest.fixture(scope="module")
def adult(tmp_path_factory):
    """A binary run on 4000 adult rows, and 2000 other rows of the same table to monitor."""
    table = read_bundled("adult").sample(6000, random_state=1).reset_index(drop=True)
    train, holdout = table.iloc[:4000], table.iloc[4000:].reset_index(drop=True)
    folder = tmp_path_factory.mktemp("adult")
    result = fit(train[FEATURES], train["income"], folder / "run", "logistic_regression")
    return result, holdout, folder


@pytest.fixture(scope="module")
def shifted(adult):
    """The holdout with three columns broken the ways production data breaks."""
    _, holdout, _ = adult
    table = holdout.copy()
    table["age"] = table["age"] * 1.5 + 10  # a unit or pipeline change
    table["workclass"] = "Gig-" + table["workclass"].astype(str)  # levels renamed upstream
    table.loc[table.index % 5 < 2, "hours-per-week"] = np.nan  # a source that stopped filling a field
    return table


@pytest.fixture(scope="module")
def wine(tmp_path_factory):
    """A multiclass run (string labels, neg_log_loss) on the wine data."""
    X, y = load_wine(return_X_y=True, as_frame=True)
    labels = y.map({0: "barolo", 1: "grignolino", 2: "barbera"}).rename("cultivar")
    result = fit(X, labels, tmp_path_factory.mktemp("wine") / "run", "logistic_regression")
    return result, X, labels


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    """A multiclass run on 1200 8x8 digit images, and the other 597 to monitor. Three border
    pixels are blank in every image: they are dropped at fit time, so no drift is measured on them."""
    X, y = load_digits(return_X_y=True, as_frame=True)
    train, new = slice(0, 1200), slice(1200, None)
    result = fit(X.iloc[train], y.iloc[train], tmp_path_factory.mktemp("digits") / "run", "logistic_regression")
    return result, X.iloc[train], X.iloc[new].reset_index(drop=True), y.iloc[new].reset_index(drop=True)


# --- PSI and the training profile -------------------------------------------------------------

def test_psi_is_zero_for_identical_and_large_for_disjoint_distributions():
    shares = [0.1, 0.2, 0.3, 0.4]
    assert population_stability_index(shares, shares) == pytest.approx(0.0, abs=1e-12)
    disjoint = population_stability_index([0.5, 0.5, 0, 0], [0, 0, 0.5, 0.5])
    assert disjoint == pytest.approx(4 * (0.5 - 1e-4) * math.log(0.5 / 1e-4), rel=1e-9) and disjoint > 15
    # a textbook moderate shift lands between the usual 0.1 and 0.25 marks
    assert 0.1 < population_stability_index([0.25] * 4, [0.1, 0.2, 0.3, 0.4]) < 0.25
    # symmetric, and growing with the shift
    assert population_stability_index([0.5, 0.5], [0.7, 0.3]) == pytest.approx(population_stability_index([0.7, 0.3], [0.5, 0.5]))
    assert population_stability_index([0.5, 0.5], [0.9, 0.1]) > population_stability_index([0.5, 0.5], [0.7, 0.3])


def test_profile_is_small_json_and_copes_with_awkward_columns():
    rng = np.random.default_rng(0)
    n = 1000
    table = pd.DataFrame({
        "constant_with_gaps": np.where(np.arange(n) % 4 == 0, np.nan, 7.0),
        "with_inf": np.where(np.arange(n) % 10 == 0, np.inf, rng.normal(size=n)),
        "small_integers": rng.integers(0, 3, size=n),
        "flag": rng.random(n) < 0.3,
        "when": pd.Timestamp("2024-01-01", tz="UTC") + pd.to_timedelta(rng.integers(0, 365, size=n), unit="D"),
        "many_levels": [f"shop-{i}" for i in rng.integers(0, 80, size=n)],
        "huge": rng.choice([1e308, -1e308, 0.0], size=n),
    })
    profile = profile_table(table, infer_schema(table))
    text = json.dumps(profile, allow_nan=False)  # strict JSON: no NaN or inf anywhere
    assert len(text) < 12_000
    columns = profile["columns"]
    assert set(columns) == set(table.columns)
    for name, column in columns.items():
        shares = column.get("shares") or [*column.get("levels", {}).values(), column.get("other", 0)]
        assert sum(shares) + column["missing"] == pytest.approx(1, abs=1e-4), name
        if "edges" in column:
            assert column["edges"] == sorted(set(column["edges"])), name
    assert columns["constant_with_gaps"]["edges"] == [7.0] and columns["constant_with_gaps"]["missing"] == 0.25
    assert columns["with_inf"]["missing"] == 0.1  # inf is missing to the model, so to the profile too
    assert columns["small_integers"]["edges"] == [0.0, 1.0, 2.0]
    assert columns["when"]["kind"] == "datetime" and 19723 <= columns["when"]["min"] < columns["when"]["max"] <= 20088
    many = columns["many_levels"]
    assert many["n_levels"] == 80 and len(many["levels"]) == MAX_LEVELS and many["other"] > 0
    assert columns["huge"]["mean"] is None or math.isfinite(columns["huge"]["mean"])


def test_the_manifest_on_disk_holds_the_profile(adult):
    result, _, _ = adult
    manifest = json.loads((result.path / "manifest.json").read_text())
    profile = manifest["data_profile"]
    assert profile["n_rows"] == 4000 and set(profile["columns"]) == set(FEATURES)
    assert profile["columns"]["workclass"]["kind"] == "categorical"
    assert len(profile["columns"]["age"]["shares"]) == len(profile["columns"]["age"]["edges"]) + 1
    assert automl.load(result.path).manifest["data_profile"] == profile


# --- the Python API -------------------------------------------------------------------------

def test_same_distribution_is_ok_and_scores_near_cv(adult):
    result, holdout, _ = adult
    evaluation = automl.evaluate(result.path, holdout[FEATURES], holdout["income"])
    assert isinstance(evaluation, automl.Evaluation)
    assert evaluation.verdict == "ok" and evaluation.drifted == []
    assert evaluation.metric == "roc_auc" and evaluation.n_rows == 2000
    assert abs(evaluation.score - result.score) < evaluation.allowed_drop
    assert evaluation.allowed_drop == pytest.approx(max(2 * result.manifest["cv_std"], 0.05 * result.score))
    drift = evaluation.drift
    assert list(drift["column"]) != [] and set(drift["column"]) == set(FEATURES)
    assert (drift["psi"] < 0.1).all() and drift["psi"].is_monotonic_decreasing
    assert evaluation.verdict_line().startswith("verdict: OK — roc_auc")


def test_shifted_columns_are_flagged(adult, shifted):
    result, _, _ = adult
    evaluation = automl.evaluate(result, shifted[FEATURES], shifted["income"])  # a Result works as well as a path
    assert set(evaluation.drifted) == {"age", "workclass", "hours-per-week"}
    assert evaluation.verdict == "drift"  # the model copes: its score holds (unseen levels are ignored)
    rows = evaluation.drift.set_index("column")
    assert (rows.loc[["age", "workclass", "hours-per-week"], "psi"] > 0.25).all()
    assert rows.loc["workclass", "unseen"] > 0.9 and "'Gig-" in rows.loc["workclass", "detail"]
    assert rows.loc["hours-per-week", "missing_new"] == pytest.approx(0.4) and rows.loc["hours-per-week", "missing_train"] == 0
    assert rows.loc["age", "detail"].startswith("mean 38")
    assert (rows.drop(index=["age", "workclass", "hours-per-week"])["status"] == "ok").all()
    line = evaluation.verdict_line()
    assert "3 of 13 columns drifted" in line and "age" in line and "workclass" in line
    # a looser threshold lets the numeric shift through but still catches the unseen levels
    loose = automl.evaluate(result, shifted[FEATURES], shifted["income"], psi_threshold=100)
    assert loose.drifted == ["workclass"]


def test_shuffled_labels_are_degraded(adult):
    result, holdout, _ = adult
    shuffled = holdout["income"].sample(frac=1, random_state=3).to_numpy()
    evaluation = automl.evaluate(result.path, holdout[FEATURES], shuffled)
    assert evaluation.verdict == "degraded" and evaluation.degraded
    assert evaluation.score < 0.6 < result.score - evaluation.allowed_drop
    assert evaluation.drifted == []
    assert evaluation.verdict_line().startswith("verdict: DEGRADED — roc_auc")
    # an explicit allowance in the metric's units overrides the default
    assert automl.evaluate(result.path, holdout[FEATURES], shuffled, max_score_drop=0.5).verdict == "ok"


def test_a_batch_without_every_class_is_scored_on_all_training_classes(wine):
    result, X, labels = wine
    some = labels != "barbera"
    evaluation = automl.evaluate(result, X[some], labels[some])
    assert evaluation.metric == "neg_log_loss" and math.isfinite(evaluation.score)
    assert evaluation.verdict in ("ok", "drift")  # only two of three cultivars: their chemistry differs


def test_bad_input_is_named(adult, wine):
    result, holdout, _ = adult
    with pytest.raises(automl.InputError, match=r"missing column\(s\) \['age', 'sex'\]"):
        automl.evaluate(result, holdout[FEATURES].drop(columns=["age", "sex"]), holdout["income"])
    wine_result, X, labels = wine
    renamed = labels.replace({"barolo": "nebbiolo"})
    with pytest.raises(automl.InputError, match=r"label\(s\) \['nebbiolo'\] that the model was not trained with"):
        automl.evaluate(wine_result, X, renamed)
    with pytest.raises(automl.InputError, match="y has 1 missing value"):
        automl.evaluate(wine_result, X, labels.where(labels.index != 5))
    with pytest.raises(automl.InputError, match="psi_threshold"):
        automl.evaluate(wine_result, X, labels, psi_threshold=0)


def test_a_run_saved_without_a_profile_is_still_scored(adult, tmp_path):
    result, holdout, _ = adult
    old = _without_profile(result.path, tmp_path / "old-run")
    evaluation = automl.evaluate(old, holdout[FEATURES], holdout["income"])
    assert evaluation.drift is None and evaluation.drifted == []
    assert evaluation.verdict == "ok" and evaluation.score == pytest.approx(
        automl.evaluate(result.path, holdout[FEATURES], holdout["income"]).score
    )
    assert "drift not checked" in evaluation.verdict_line()
    assert evaluation.to_dict()["drift"] is None


def test_dates_and_regression(tmp_path):
    table = read_bundled("diamonds").sample(3000, random_state=2).reset_index(drop=True)
    rng = np.random.default_rng(2)
    table["listed"] = pd.Timestamp("2023-01-01") + pd.to_timedelta(rng.integers(0, 365, size=len(table)), unit="D")
    table["listing_id"] = np.arange(len(table))  # identifier-like: dropped, so not needed later
    features = ["carat", "cut", "color", "clarity", "depth", "table", "listed"]
    train, new = table.iloc[:2000], table.iloc[2000:].reset_index(drop=True)
    result = fit(train[[*features, "listing_id"]], train["price"], tmp_path / "run", "ridge")
    assert result.manifest["data_profile"]["columns"]["listed"]["kind"] == "datetime"
    assert "listing_id" not in result.manifest["data_profile"]["columns"]
    same = automl.evaluate(result.path, new[features], new["price"])
    assert same.verdict == "ok" and same.metric == "neg_root_mean_squared_error"
    later = new.assign(listed=new["listed"] + pd.Timedelta(days=400))
    moved = automl.evaluate(result.path, later[features], later["price"], max_score_drop=1e9)
    assert moved.drifted == ["listed"] and moved.verdict == "drift"
    assert "→ 2024" in moved.drift.set_index("column").loc["listed", "detail"]


def _without_profile(run: Path, copy: Path) -> Path:
    shutil.copytree(run, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    del manifest["data_profile"]
    (copy / "manifest.json").write_text(json.dumps(manifest))
    return copy


# --- the command ------------------------------------------------------------------------------

def test_cli_ok_prints_score_table_and_verdict_and_exits_0(adult, tmp_path):
    result, holdout, folder = adult
    data = folder / "holdout.csv"
    holdout.to_csv(data, index=False)
    done = automl_cli("evaluate", str(result.path), str(data), "--target", "income", "-o", str(tmp_path / "drift.json"))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("roc_auc on 2000 new rows: ") and "CV estimate: " in lines[0]
    assert lines[2].split() == ["column", "kind", "psi", "missing", "unseen", "status", "detail"]
    assert lines[-1].startswith("verdict: OK — ")
    written = json.loads((tmp_path / "drift.json").read_text())
    assert written["verdict"] == "ok" and len(written["drift"]) == len(FEATURES)
    assert written["score"] == pytest.approx(automl.evaluate(result, holdout[FEATURES], holdout["income"]).score)


def test_cli_drift_exits_1_naming_the_columns(adult, shifted, tmp_path):
    result, _, _ = adult
    data = tmp_path / "shifted.csv"
    shifted.to_csv(data, index=False)
    done = automl_cli("evaluate", str(result.path), str(data), "--target", "income", "-q", "-o", str(tmp_path / "drift.csv"))
    assert done.returncode == 1, done.stderr
    verdict = done.stdout.splitlines()[-1]
    assert verdict.startswith("verdict: DRIFT — 3 of 13 columns drifted (PSI > 0.25 or unseen > 5%): ")
    for name in ("age", "workclass", "hours-per-week"):
        assert name in verdict
    table = pd.read_csv(tmp_path / "drift.csv")
    assert set(table.loc[table["status"] == "drift", "column"]) == {"age", "workclass", "hours-per-week"}
    assert table["psi"].is_monotonic_decreasing


def test_cli_degraded_exits_1(adult, tmp_path):
    result, holdout, _ = adult
    data = tmp_path / "shuffled.csv"
    holdout.assign(income=holdout["income"].sample(frac=1, random_state=3).to_numpy()).to_csv(data, index=False)
    done = automl_cli("evaluate", str(result.path), str(data), "--target", "income", "-q")
    assert done.returncode == 1, done.stderr
    assert done.stdout.splitlines()[-1].startswith("verdict: DEGRADED — roc_auc")


@pytest.mark.parametrize("case, message", [
    ("missing column", "missing column(s) ['occupation']"),
    ("unknown label", "label(s) ['>100K'] that the model was not trained with"),
    ("missing target", "target column 'income' is not in"),
])
def test_cli_bad_input_exits_2_with_one_line(adult, tmp_path, case, message):
    result, holdout, _ = adult
    table = holdout.head(300)
    if case == "missing column":
        table = table.drop(columns=["occupation"])
    elif case == "unknown label":
        table = table.assign(income=np.where(np.arange(len(table)) % 2, ">100K", table["income"]))
    else:
        table = table.drop(columns=["income"])
    data = tmp_path / "bad.csv"
    table.to_csv(data, index=False)
    done = automl_cli("evaluate", str(result.path), str(data), "--target", "income")
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr
    assert done.stdout == ""


def test_cli_on_a_run_without_a_profile(adult, tmp_path):
    result, holdout, _ = adult
    old = _without_profile(result.path, tmp_path / "old-run")
    data = tmp_path / "holdout.csv"
    holdout.to_csv(data, index=False)
    done = automl_cli("evaluate", str(old), str(data), "--target", "income", "-q")
    assert done.returncode == 0, done.stderr
    assert "drift not checked" in done.stdout.splitlines()[-1]


# --- columns without a drift measure ----------------------------------------------------------

BLANK_PIXELS = ["pixel_0_0", "pixel_4_0", "pixel_4_7"]


def test_columns_dropped_at_fit_time_are_listed_as_not_checked(digits):
    result, _, new, labels = digits
    evaluation = automl.evaluate(result, new, labels)
    unchecked = evaluation.not_checked
    assert unchecked["column"].tolist() == BLANK_PIXELS and (unchecked["kind"] == "dropped").all()
    assert unchecked["reason"].str.startswith("not used by the model (dropped at fit time: constant").all()
    # every training column is either measured or named as not measured
    assert sorted([*evaluation.drift["column"], *unchecked["column"]]) == sorted(new.columns)
    assert evaluation.unchecked_used == []  # dropped columns cannot hurt the model: not in the verdict
    assert "not checked" not in evaluation.verdict_line()
    text = evaluation.report()
    assert text.splitlines()[-6].split() == ["not", "checked", "kind", "why"]
    for name in BLANK_PIXELS:
        assert any(line.startswith(name) and "dropped at fit time" in line for line in text.splitlines())
    assert [row["column"] for row in evaluation.to_dict()["not_checked"]] == BLANK_PIXELS


def _with_two_profiles_lost(run: Path, copy: Path, train: pd.DataFrame) -> Path:
    """A copy of ``run`` whose profile lacks two used columns, as a failed profile leaves it:
    pixel_3_3 failed with its reason recorded, pixel_4_4 has no entry and no reason (as runs
    saved before the reasons were recorded). No table the schema accepts makes a summary fail
    today, so the failure is made by profiling pixel_3_3 as a kind it cannot be read as."""
    shutil.copytree(run, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    schema = [Column(**{**c, "parts": tuple(c["parts"])}) for c in manifest["columns"]]
    wrong = [c._replace(kind="datetime", parts=("year",)) if c.name == "pixel_3_3" else c for c in schema]
    profile = profile_table(train, wrong)
    assert list(profile["skipped"]) == ["pixel_3_3"] and "should hold dates" in profile["skipped"]["pixel_3_3"]
    del profile["columns"]["pixel_4_4"]
    manifest["data_profile"] = profile
    (copy / "manifest.json").write_text(json.dumps(manifest))
    return copy


def test_a_used_column_without_a_training_profile_is_named_with_why(digits, tmp_path):
    result, train, new, labels = digits
    run = _with_two_profiles_lost(result.path, tmp_path / "run", train)
    evaluation = automl.evaluate(run, new, labels)
    assert evaluation.unchecked_used == ["pixel_3_3", "pixel_4_4"]
    reasons = evaluation.not_checked.set_index("column")["reason"]
    assert reasons["pixel_3_3"].startswith("its training profile failed at fit time: InputError: column 'pixel_3_3'")
    assert reasons["pixel_4_4"] == "no training profile was recorded for it at fit time"
    assert len(evaluation.drift) == 64 - 3 - 2
    line = evaluation.verdict_line()
    assert line.endswith("; 2 column(s) the model uses not checked (no training profile): pixel_3_3, pixel_4_4")
    assert "pixel_4_4" in evaluation.report() and "no training profile was recorded" in evaluation.report()


def test_cli_and_html_report_name_the_columns_not_checked(digits, tmp_path):
    result, train, new, labels = digits
    run = _with_two_profiles_lost(result.path, tmp_path / "run", train)
    data = tmp_path / "new.csv"
    new.assign(digit=labels).to_csv(data, index=False)
    done = automl_cli("evaluate", str(run), str(data), "--target", "digit", "-q", "-o", str(tmp_path / "drift.csv"))
    assert done.returncode in (0, 1), done.stderr
    lines = done.stdout.splitlines()
    assert "pixel_3_3, pixel_4_4" in lines[-1]
    for name in ["pixel_3_3", "pixel_4_4", *BLANK_PIXELS]:
        assert any(line.startswith(name + " ") for line in lines), name  # a row of its own, with why
    table = pd.read_csv(tmp_path / "drift.csv")
    assert len(table) == 64 and set(table["column"]) == set(new.columns)
    assert sorted(table.loc[table["status"] == "not checked", "column"]) == sorted(["pixel_3_3", "pixel_4_4", *BLANK_PIXELS])
    page = automl.report(run).read_text()
    assert "59 of 61 used columns; not checked: pixel_3_3, pixel_4_4" in page
    assert "no: its training profile failed at fit time: InputError" in page and "no: not used by the model" in page
