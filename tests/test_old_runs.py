"""Runs saved by the previous release (0.1.0) keep loading and predict as they did when saved.

The run directories in tests/fixtures/runs-0.1.0/ were made by tests/fixtures/make_old_runs.py
with the 0.1.0 code; their pickles name classes by the module paths of that release.
"""

import gzip
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from joblib.numpy_pickle import NumpyUnpickler

import automl

RUNS = Path(__file__).parent / "fixtures" / "runs-0.1.0"
DATA = Path(__file__).resolve().parent.parent / "benchmarks" / "data"
TABLES = {"single": ("penguins", "species"), "ensemble": ("titanic", "survived"), "keras": ("penguins", "species")}

#: Every automl name the 0.1.0 pickles resolve: each must stay importable at this path.
PICKLED_NAMES = {
    "single": {"automl._data:Column", "automl._preprocess:TablePreprocessor"},
    "ensemble": {
        "automl._data:Column", "automl._preprocess:TablePreprocessor", "automl._ensemble:WeightedEnsembleClassifier",
        "automl.plugins._anytime:TimeLimitedBoosting",
        "automl.plugins.hist_gradient_boosting:ClassWeightedBoostingClassifier",
    },
    "keras": {"automl._data:Column", "automl._preprocess:TablePreprocessor", "automl.plugins.keras_mlp:KerasMLPClassifier"},
}


def _features(run: str) -> pd.DataFrame:
    name, target = TABLES[run]
    with gzip.open(DATA / f"{name}.csv.gz", "rt") as f:
        return pd.read_csv(f).drop(columns=target)


def _resolved_names(model_file: Path) -> set[str]:
    seen = set()

    class Recording(NumpyUnpickler):
        def find_class(self, module, name):
            if module.split(".")[0] == "automl":
                seen.add(f"{module}:{name}")
            return super().find_class(module, name)

    with open(model_file, "rb") as f:
        Recording(str(model_file), f, None).load()
    return seen


@pytest.mark.parametrize("run", sorted(TABLES))
def test_a_run_saved_by_0_1_0_loads_and_predicts_as_it_did(run, tmp_path):
    path = shutil.copytree(RUNS / run, tmp_path / run)
    assert _resolved_names(path / "model.joblib") == PICKLED_NAMES[run]
    result = automl.load(path)
    expected = pd.read_csv(path / "expected.csv")
    X = _features(run)
    predictions = result.predict(X)
    assert [str(p) for p in predictions] == [str(p) for p in expected["prediction"]]
    probabilities = result.predict_proba(X)
    columns = [f"proba_{c}" for c in result.classes_]
    np.testing.assert_allclose(probabilities, expected[columns].to_numpy(), rtol=0, atol=1e-6)
