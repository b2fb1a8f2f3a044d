"""The automl command, run as a user runs it: a real subprocess on real files."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from sklearn.datasets import load_wine

AUTOML = shutil.which("automl", path=str(Path(sys.executable).parent)) or "automl"


def automl_cli(*args, check=True):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([AUTOML, *args], capture_output=True, text=True, env=env, timeout=300)
    if check and done.returncode != 0:
        raise AssertionError(f"automl {' '.join(args)} exited {done.returncode}:\n{done.stderr}")
    return done


@pytest.fixture
def wine_csv(tmp_path):
    X, y = load_wine(return_X_y=True, as_frame=True)
    table = X.assign(cultivar=y.map({0: "barolo", 1: "grignolino", 2: "barbera"}))
    path = tmp_path / "wine.csv"
    table.to_csv(path, index=False)
    return path, table


def test_fit_then_predict_round_trip(wine_csv, tmp_path):
    path, table = wine_csv
    run = tmp_path / "run"
    fit = automl_cli("fit", str(path), "--target", "cultivar", "--n-trials", "2", "--cv", "3",
                     "--models", "logistic_regression,hist_gradient_boosting", "--path", str(run), "--seed", "3",
                     "--max-predict-ms", "10000")
    assert "logistic_regression" in fit.stdout and "hist_gradient_boosting" in fit.stdout
    assert f"saved to: {run}" in fit.stdout
    assert json.loads((run / "manifest.json").read_text())["max_predict_ms"] == 10000
    assert "best: " in fit.stdout and "neg_log_loss" in fit.stdout
    assert (run / "model.joblib").is_file()

    out = tmp_path / "predictions.csv"
    automl_cli("predict", str(run), str(path), "--output", str(out), "--proba")
    predictions = pd.read_csv(out)
    assert len(predictions) == len(table)
    assert list(predictions.columns) == ["prediction", "proba_barbera", "proba_barolo", "proba_grignolino"]
    assert (predictions["prediction"] == table["cultivar"]).mean() > 0.9

    # to standard output, without the target column
    printed = automl_cli("predict", str(run), str(path)).stdout.splitlines()
    assert printed[0] == "prediction" and len(printed) == len(table) + 1
    assert printed[1:] == predictions["prediction"].tolist()


def test_parquet_input(wine_csv, tmp_path):
    _, table = wine_csv
    parquet = tmp_path / "wine.parquet"
    table.to_parquet(parquet)
    run = tmp_path / "run"
    automl_cli("fit", str(parquet), "--target", "cultivar", "--n-trials", "1", "--cv", "3",
               "--models", "logistic_regression", "--path", str(run), "-q")
    assert (run / "manifest.json").is_file()


def test_models_lists_names_tasks_and_distribution():
    lines = automl_cli("models").stdout.splitlines()
    by_name = {line.split()[0]: line for line in lines}
    assert {"logistic_regression", "ridge", "random_forest", "extra_trees", "hist_gradient_boosting", "keras_mlp"} <= set(by_name)
    assert "binary,multiclass,regression" in by_name["random_forest"]
    assert "automl-select" in by_name["keras_mlp"]


def test_errors_are_one_clear_line_and_exit_2(wine_csv, tmp_path):
    path, _ = wine_csv
    done = automl_cli("fit", str(path), "--target", "nope", check=False)
    assert done.returncode == 2
    assert "target column 'nope' is not in" in done.stderr
    assert "Traceback" not in done.stderr
    done = automl_cli("predict", str(tmp_path / "missing-run"), str(path), check=False)
    assert done.returncode == 2 and "manifest.json is missing" in done.stderr


#: TensorFlow's C++ start-up lines, which a newcomer's first `automl fit` used to print.
TENSORFLOW_NOISE = (
    "oneDNN custom operations are on",
    "All log messages before absl::InitializeLog() is called are written to STDERR",
    "Could not find cuda drivers",
    "failed call to cuInit",
)


def test_a_keras_fit_prints_no_tensorflow_start_up_lines(tmp_path):
    """The README's first command, with the Keras model and TensorFlow's variables unset as on a
    fresh machine (the suite's conftest sets TF_CPP_MIN_LOG_LEVEL): no C++ log lines."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("TF_")}
    penguins = Path(__file__).resolve().parent.parent / "benchmarks" / "data" / "penguins.csv.gz"
    done = subprocess.run(
        [AUTOML, "fit", str(penguins), "--target", "species", "--models", "keras_mlp", "--n-trials", "1",
         "--cv", "2", "--no-ensemble", "--time-budget", "120", "--path", str(tmp_path / "run")],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "best: keras_mlp" in done.stdout  # TensorFlow was imported and trained in the worker
    output = done.stdout + done.stderr
    assert [line for line in TENSORFLOW_NOISE if line in output] == [], done.stderr
