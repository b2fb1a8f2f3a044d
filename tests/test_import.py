import json
import subprocess
import sys


# what `import automl` must leave out: the engine loads on first use, TensorFlow only for Keras
HEAVY = {
    "tensorflow", "keras", "sklearn", "optuna", "pandas", "numpy", "scipy", "joblib", "cloudpickle",
    "threadpoolctl", "matplotlib", "fastapi", "uvicorn", "httpx", "mlflow", "pyarrow", "lightgbm", "psycopg",
    "catboost", "xgboost",
}


def test_import_is_light_and_leaves_tensorflow_out():
    """In a fresh interpreter, ``import automl`` loads the standard library and pluggy, nothing else."""
    code = (
        "import json, sys; before = set(sys.modules); import automl; "
        "print(json.dumps(sorted(set(sys.modules) - before)))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = {name.split(".")[0] for name in json.loads(done.stdout)}
    assert "automl" in loaded and "pluggy" in loaded, loaded  # the import did run, in this interpreter
    assert not loaded & HEAVY, f"import automl loaded {sorted(loaded & HEAVY)}"
    assert loaded - sys.stdlib_module_names <= {"automl", "pluggy"}, "only pluggy besides the standard library"


def test_listing_models_does_not_import_tensorflow():
    code = "import sys, automl; automl.list_models(); print('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_public_surface():
    import automl

    for name in automl.__all__:
        assert getattr(automl, name) is not None
    assert set(automl.__all__) <= set(dir(automl))


def test_parent_never_imports_tensorflow_while_keras_trains(tmp_path):
    script = tmp_path / "train.py"
    # no `if __name__ == "__main__":` guard: workers must not re-run this script
    script.write_text(
        "import sys, automl\n"
        "from sklearn.datasets import load_breast_cancer\n"
        "X, y = load_breast_cancer(return_X_y=True, as_frame=True)\n"
        "result = automl.fit_best(X, y, models=['keras_mlp'], n_trials=1, cv=2, path='run')\n"
        "print(result.model_name, 'tensorflow' in sys.modules)\n"
        "result.predict(X)\n"
        "print('tensorflow' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr
    # the network trained in a trial process; its light form predicts, here and in a fresh process
    assert done.stdout.split("\n")[:2] == ["keras_mlp False", "False"], "TensorFlow loaded to predict"
    assert loaded_to_predict(tmp_path / "run", "from sklearn.datasets import load_breast_cancer as load") == set()


#: What predicting with a saved run must not load, whatever model it holds (pyarrow is not here:
#: pandas 3 loads it for its string columns).
NOT_FOR_PREDICTING = {"tensorflow", "keras", "optuna", "matplotlib", "fastapi", "uvicorn", "mlflow", "httpx"}


def loaded_to_predict(run, import_loader: str) -> set[str]:
    """The modules of NOT_FOR_PREDICTING that ``automl.load(run).predict`` loads in a fresh process."""
    code = (
        f"import json, sys; {import_loader}; import automl\n"
        "X, y = load(return_X_y=True, as_frame=True)\n"
        f"automl.load({str(run)!r}).predict(X)\n"
        "print(json.dumps(sorted({name.split('.')[0] for name in sys.modules})))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout)) & NOT_FOR_PREDICTING
