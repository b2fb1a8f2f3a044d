"""Large tables: cv="auto" chooses fewer folds or a holdout with sampled trials, large tables are
mapped by the workers from one file with float32 columns where safe. The size thresholds are
lowered here so that a real table of the suite takes the large-table paths in seconds; the
benchmark (benchmarks/large_tables.py) runs them on a million rows."""

import io
import json
import tempfile
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
from conftest import read_bundled

import automl
from automl.data import validation as _validation
from automl.search import payload as _shared_data
from automl.review.oof import out_of_fold
from automl.search.payload import SharedData, compact_floats, load_payload
from automl.data.validation import Validation, choose_validation, make_folds, make_splitter, refit_scale


@pytest.mark.parametrize(
    "rows, columns, budget, folds, capped",
    [
        (5_000, 20, 60, 5, False),  # a usual table: 5 folds on every row
        (50_000, 14, 60, 5, False),  # the suite's largest (adult) in a minute
        (50_000, 14, 15, 3, False),  # ... in 15 s: fewer folds
        (500_000, 14, 120, 3, True),  # a half-million rows in 2 minutes: 3 folds on samples
        (1_000_000, 20, 120, 1, True),  # a million rows: one holdout, samples
        (1_000_000, 20, None, 1, True),  # no budget, but too large for K folds
    ],
)
def test_auto_validation_follows_the_size_of_the_table_and_the_budget(rows, columns, budget, folds, capped):
    plan = choose_validation("auto", rows, columns, budget)
    assert plan.folds == folds
    assert (plan.holdout is not None) == (folds == 1)
    assert (plan.max_train_rows is not None) == capped
    assert f"{rows:,} rows x {columns} columns" in plan.reason
    assert Validation.from_dict(json.loads(json.dumps(plan.to_dict()))) == plan
    assert choose_validation(4, rows, columns, budget) == Validation(folds=4, reason="cv=4")


def test_bad_cv_values_get_clear_errors():
    with pytest.raises(automl.InputError, match="cv must be 'auto', a number of folds"):
        choose_validation("five", 100, 3, 10)
    with pytest.raises(automl.InputError, match="at least 2 folds"):
        choose_validation(1, 100, 3, 10)


def test_sampled_folds_are_stratified_seeded_and_within_their_splits():
    y = np.array([0] * 9_000 + [1] * 1_000)
    X = pd.DataFrame({"x": np.arange(len(y))})
    plan = Validation(folds=1, holdout=0.2, max_train_rows=2_000, max_valid_rows=500)
    folds = make_folds(make_splitter(None, plan, "binary", 3), X, y, "binary", plan, seed=3)
    (train, valid), = folds
    assert len(train) == 2_000 and len(valid) == 500 and not set(train) & set(valid)
    assert abs(y[train].mean() - 0.1) < 0.01 and abs(y[valid].mean() - 0.1) < 0.02  # stratified
    again = make_folds(make_splitter(None, plan, "binary", 3), X, y, "binary", plan, seed=3)
    assert all((a == b).all() for a, b in zip(folds[0], again[0]))
    assert refit_scale(folds, len(y)) == 5.0


def test_float_columns_narrow_only_where_no_value_changes_beyond_rounding():
    table = pd.DataFrame({
        "measure": np.linspace(0.1, 1e6, 100),
        "ids": np.arange(100, dtype=np.float64) + 16_777_217.0,  # whole numbers float32 cannot hold
        "huge": np.full(100, 1e300),
        "gaps": np.r_[np.nan, np.inf, np.arange(98.0)],
        "count": np.arange(100),
        "label": ["a", "b"] * 50,
    })
    narrow = compact_floats(table)
    assert narrow["measure"].dtype == np.float32 and narrow["gaps"].dtype == np.float32
    assert narrow["ids"].dtype == np.float64 and narrow["huge"].dtype == np.float64
    assert narrow["count"].dtype == table["count"].dtype and narrow["label"].equals(table["label"])
    assert np.allclose(narrow["measure"], table["measure"], rtol=1e-6)
    assert table["measure"].dtype == np.float64  # the caller's table is not changed


def test_a_large_table_is_mapped_from_one_file_removed_after(monkeypatch):
    monkeypatch.setattr(_shared_data, "MAPPED_BYTES", 0)
    table = pd.DataFrame({"x": np.linspace(0, 1, 1000), "c": ["u", "v"] * 500})
    with SharedData({"X": table, "y": np.arange(1000)}, {"scorer": "accuracy"}) as shared:
        assert len(shared.payload) < 1000  # the rows are in the file, not in what each worker is sent
        data = load_payload(shared.payload)
        assert isinstance(data["y"], np.memmap) and data["scorer"] == "accuracy"
        assert data["X"]["x"].dtype == np.float32 and list(data["X"]["c"]) == list(table["c"])
        directory = shared._directory
        assert directory.is_dir()
    assert not directory.exists()


def test_large_table_paths_end_to_end_on_adult(monkeypatch, tmp_path):
    """adult (48,842 rows, numbers, categories, missing values) taken for a large table: a
    holdout, trials fitted on 3,000 sampled rows, the data mapped by the worker; the winner is
    refit on every row, and the report's out-of-fold check rebuilds the same sampled split."""
    monkeypatch.setattr(_validation, "HOLDOUT_CELLS_PER_SECOND", 1.0)
    monkeypatch.setattr(_validation, "TRIAL_TRAIN_CELLS", 0)
    monkeypatch.setattr(_validation, "MIN_TRIAL_TRAIN_ROWS", 3_000)
    monkeypatch.setattr(_validation, "MAX_VALID_ROWS", 2_000)
    monkeypatch.setattr(_shared_data, "MAPPED_BYTES", 0)
    adult = read_bundled("adult")
    X, y = adult.drop(columns=["income"]), adult["income"]
    result = automl.fit_best(X, y, models=["logistic_regression"], n_trials=3, time_budget=60, seed=1,
                             path=tmp_path / "run", verbose=0)
    plan = result.manifest["validation"]
    assert plan["folds"] == 1 and plan["holdout"] == 0.2
    assert plan["max_train_rows"] == 3_000 and plan["max_valid_rows"] == 2_000
    assert "48,842 rows x 14 columns in 60 s" in plan["reason"]
    assert "StratifiedShuffleSplit" in result.manifest["cv"]
    complete = result.trials[result.trials["state"] == "complete"]
    assert len(complete) >= 1 and all(len(s) == 1 for s in complete["fold_scores"])
    assert 0.8 < result.score <= 1.0
    assert len(result.predict(X.head(50))) == 50
    saved = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert saved["validation"] == plan

    oof = out_of_fold(automl.load(tmp_path / "run"), adult)
    assert len(oof.y) == 2_000 and len(oof.fold_scores) == 1
    # logistic regression is deterministic: the report's refit on the sampled split scores as the search did
    assert oof.fold_scores[0] == pytest.approx(oof.search_fold_scores[0], abs=1e-3)


def test_a_refit_that_would_not_fit_in_time_uses_the_largest_sample_that_does(tmp_path):
    """The sizing rule, then the worker refitting on a seeded, stratified sample of that size."""
    from sklearn.datasets import load_breast_cancer

    from automl.fit.refit import REFIT_ROWS_SAFETY, _refit_rows
    from automl._plugins import collect_models, get_plugin_manager
    from automl.search.trial_process import TrialProcess
    from automl.search.studies import ModelSearch, build_pipeline
    from automl.data.schema import infer_schema
    from automl._spec import ModelContext

    model = collect_models(get_plugin_manager())["logistic_regression"]
    search = ModelSearch(model=model, study=None, fold_fit_seconds=[2.0])  # 2 s per trial fit
    # trials fitted on a tenth of the rows: the refit on all of them would take ~20 s
    assert _refit_rows(search, 10.0, 100_000, seconds=60.0) is None
    assert _refit_rows(search, 10.0, 100_000, seconds=20.0) == int(100_000 * REFIT_ROWS_SAFETY * 20 / 20)
    assert _refit_rows(search, 10.0, 100_000, seconds=1.0) == 10_000  # never fewer than a trial saw

    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    context = ModelContext(task="binary", seed=0, n_samples=len(X), n_features=X.shape[1], n_classes=2)
    runner = TrialProcess({"X": X, "y": y.to_numpy(), "search_rows": np.arange(len(y)), "test_rows": None,
                           "folds": None, "scorer": None})
    try:
        pipeline = build_pipeline(model, model.spec.default_params, context, infer_schema(X))
        answer = runner.refit(pipeline, on_search_rows=False, timeout=60, max_rows=200, seed=0)
        assert answer["rows"] == 200
        whole = runner.refit(pipeline, on_search_rows=False, timeout=60)
        assert whole["rows"] == len(y)
        # the fitted model comes back through a file of the parent's, removed once read
        refitted = joblib.load(io.BytesIO(whole["model"]))
        assert refitted.predict(X.iloc[:5]).shape == (5,)
        assert not list(Path(tempfile.gettempdir()).glob("automl-refit-*"))
        # a worker stopped by force costs a restart, which the ensemble's refit counts; the
        # first start's forkserver boot is not part of it
        assert runner.restart_seconds == 0.0
        runner.kill()
        assert 0.0 < runner.restart_seconds <= runner.start_seconds
        runner.refit(pipeline, on_search_rows=False, timeout=60)
        assert runner.restart_seconds == 0.0
    finally:
        runner.close()
