"""AutoMLClassifier / AutoMLRegressor behave as scikit-learn estimators."""

import os

import numpy as np
from sklearn.base import clone
from sklearn.datasets import load_diabetes, load_iris
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

import automl

FAST = dict(models=["logistic_regression", "hist_gradient_boosting"], n_trials=1, cv=3, time_budget=60)


def test_classifier_in_cross_val_score_and_pipeline():
    X, y = load_iris(return_X_y=True)
    estimator = automl.AutoMLClassifier(**FAST)
    scores = cross_val_score(estimator, X, y, cv=3)
    assert scores.mean() > 0.85
    assert not os.path.exists("automl-runs"), "estimators do not save unless asked"

    pipeline = make_pipeline(FunctionTransformer(np.log1p), clone(estimator)).fit(X, y)
    assert pipeline.score(X, y) > 0.9
    fitted = pipeline[-1]
    assert list(fitted.classes_) == [0, 1, 2]
    assert fitted.predict_proba(X).shape == (150, 3)
    # both models, and the ensemble of their trials when it was considered
    assert set(fitted.leaderboard_["model"]) - {"ensemble"} == {"logistic_regression", "hist_gradient_boosting"}


def test_clone_keeps_parameters():
    estimator = automl.AutoMLRegressor(metric="r2", time_budget=30, n_trials=2, seed=5)
    copy = clone(estimator)
    assert copy.get_params() == estimator.get_params()


def test_regressor_fits_and_can_save(tmp_path):
    X, y = load_diabetes(return_X_y=True)
    estimator = automl.AutoMLRegressor(models=["ridge"], n_trials=2, cv=3, save=True, path=tmp_path / "run")
    estimator.fit(X, y)
    assert estimator.score(X, y) > 0.4
    assert estimator.result_.task == "regression"
    assert (tmp_path / "run" / "model.joblib").is_file()
