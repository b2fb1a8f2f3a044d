"""When the winner's refit on all rows fails, the next model is saved, and the leaderboard (in
memory and in leaderboard.csv) and the manifest say which model failed, why, and which was saved."""

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.linear_model import LogisticRegression, Ridge

import automl
from automl.store.ensemble import ENSEMBLE

#: CV folds of 3 fit on at most 380 rows of these tables (breast cancer 569, diabetes 442); the refit sees all
FOLD_ROWS_AT_MOST = 400


class FailsOnAllRows(LogisticRegression):
    """Logistic regression that fits on a fold's rows but refuses the refit's (more rows)."""

    def fit(self, X, y, sample_weight=None):
        if len(X) > FOLD_ROWS_AT_MOST:
            raise RuntimeError(f"refusing to fit on {len(X)} rows")
        return super().fit(X, y, sample_weight=sample_weight)


class FailsOnAllRowsPlugin:
    """Logistic regression on scaled inputs: on breast cancer it beats a random forest."""

    @automl.hookimpl
    def automl_models(self):
        return [
            automl.ModelSpec(
                name="fails_on_all_rows", tasks={"binary"},
                search_space=lambda trial, ctx: {"C": trial.suggest_float("C", 0.5, 2.0, log=True)},
                build=lambda params, ctx: FailsOnAllRows(C=params["C"], max_iter=2000),
                default_params={"C": 1.0}, cost=0.5,
            )
        ]


@pytest.fixture(scope="module")
def data():
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    return X, y


def _check_fallback(result, failed: list[str], rows):
    board = result.leaderboard
    assert board["model"].iloc[0] == result.model_name and bool(board["saved"].iloc[0])
    assert board["saved"].sum() == 1
    for model in failed:
        status = board.set_index("model").loc[model, "status"]
        assert status.startswith("refit failed: "), status
    saved = pd.read_csv(result.path / "leaderboard.csv")
    assert saved["model"].iloc[0] == result.model_name and bool(saved["saved"].iloc[0])
    assert saved.set_index("model").loc[failed[0], "status"].startswith("refit failed: ")
    manifest = json.loads((result.path / "manifest.json").read_text())
    fallback = manifest["refit_fallback"]
    assert fallback["saved"] == result.model_name
    assert [f["model"] for f in fallback["failed"]] == failed
    assert all(f["reason"] for f in fallback["failed"])
    assert automl.load(result.path).predict(rows).shape == (len(rows),)


def test_a_best_single_model_whose_refit_fails_is_labelled_and_the_next_is_saved(data):
    result = automl.fit_best(
        *data, models=["fails_on_all_rows", "random_forest"], plugins=[FailsOnAllRowsPlugin()], cv=3,
        time_budget=None, n_trials=2, ensemble=False, verbose=0,
    )
    scores = result.leaderboard.set_index("model")["score"]
    assert scores["fails_on_all_rows"] > scores["random_forest"], "the failing model must rank first"
    assert result.model_name == "random_forest"
    _check_fallback(result, ["fails_on_all_rows"], data[0].head(5))
    assert "RuntimeError: refusing to fit on 569 rows" in result.manifest["refit_fallback"]["failed"][0]["reason"]


class HalfRidge(RegressorMixin, BaseEstimator):
    """Ridge regression on one half of the columns; with ``fail_above``, it refuses to fit on
    more rows than that (a fold's rows pass, the refit's do not)."""

    def __init__(self, half=0, alpha=1.0, fail_above=None):
        self.half, self.alpha, self.fail_above = half, alpha, fail_above

    def fit(self, X, y):
        if self.fail_above is not None and len(X) > self.fail_above:
            raise RuntimeError(f"refusing to fit on {len(X)} rows")
        self.ridge_ = Ridge(alpha=self.alpha).fit(self._half(X), y)
        return self

    def predict(self, X):
        return self.ridge_.predict(self._half(X))

    def _half(self, X):
        X = np.asarray(X)
        middle = X.shape[1] // 2
        return X[:, :middle] if self.half == 0 else X[:, middle:]


class HalvesPlugin:
    """Two models that each see half of the columns: their average is clearly better than
    either, so the ensemble of both wins, and the first cannot be refit on all rows."""

    @automl.hookimpl
    def automl_models(self):
        def spec(name, half, fail_above):
            return automl.ModelSpec(
                name=name, tasks={"regression"},
                search_space=lambda trial, ctx: {"alpha": trial.suggest_float("alpha", 0.01, 1.0, log=True)},
                build=lambda params, ctx: HalfRidge(half=half, fail_above=fail_above, **params),
                default_params={"alpha": 0.1},
            )

        return [spec("first_half_fails_on_all_rows", 0, FOLD_ROWS_AT_MOST), spec("second_half", 1, None)]


def test_an_ensemble_whose_member_fails_to_refit_is_labelled_and_a_single_model_is_saved():
    X, y = load_diabetes(return_X_y=True, as_frame=True)  # 442 rows: folds of 3 fit on 294
    result = automl.fit_best(
        X, y, models=["first_half_fails_on_all_rows", "second_half"], plugins=[HalvesPlugin()], cv=3,
        time_budget=None, n_trials=3, verbose=0,
    )
    ensemble = result.manifest["ensemble"]
    assert {m["model"] for m in ensemble["members"]} == {"first_half_fails_on_all_rows", "second_half"}
    assert ensemble["status"].startswith("refit failed: ") and not ensemble["saved"]
    assert result.model_name == "second_half"
    board = result.leaderboard.set_index("model")
    assert board.loc[ENSEMBLE, "score"] > board["score"].drop(ENSEMBLE).max()
    # the ensemble failed; then the best single model is refit alone, and fails too if it is the first half
    failed = [ENSEMBLE]
    if board.loc["first_half_fails_on_all_rows", "score"] > board.loc["second_half", "score"]:
        failed.append("first_half_fails_on_all_rows")
    _check_fallback(result, failed, X.head(5))
