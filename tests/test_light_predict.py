"""A saved run predicts light: loading it imports what its model needs and nothing of the search
(Optuna), the reports (matplotlib), the server (FastAPI) or TensorFlow, even with a Keras member
in an ensemble."""

import subprocess
import sys

import numpy as np
import pytest
from sklearn.datasets import load_wine

import automl
from automl.plugins.keras_mlp import KerasMLPClassifier
from automl.store.ensemble import ENSEMBLE

from test_import import loaded_to_predict


@pytest.fixture(scope="module")
def ensemble_run(tmp_path_factory):
    X, y = load_wine(return_X_y=True, as_frame=True)
    path = tmp_path_factory.mktemp("wine") / "run"
    # with this seed and trial count, from the defaults, the ensemble of logistic regression and the MLP is saved
    result = automl.fit_best(
        X, y, models=["keras_mlp", "logistic_regression", "random_forest"], n_trials=3, cv=3, seed=0,
        time_budget=None, path=path, verbose=0, portfolio=False,
    )
    assert result.model_name == ENSEMBLE, result.leaderboard
    members = [pipeline[-1] for pipeline in result.model.estimators_]
    assert any(isinstance(m, KerasMLPClassifier) for m in members), members
    return path, result.predict_proba(X)


def test_an_ensemble_with_a_keras_member_predicts_without_tensorflow(ensemble_run):
    path, _ = ensemble_run
    assert loaded_to_predict(path, "from sklearn.datasets import load_wine as load") == set()


def test_a_fresh_process_predicts_what_the_fit_did(ensemble_run, tmp_path):
    path, expected = ensemble_run
    out = tmp_path / "proba.npy"
    code = (
        "import numpy as np, automl; from sklearn.datasets import load_wine\n"
        "X, y = load_wine(return_X_y=True, as_frame=True)\n"
        f"np.save({str(out)!r}, automl.load({str(path)!r}).predict_proba(X))\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=300)
    np.testing.assert_allclose(np.load(out), expected, rtol=0, atol=1e-12)
