"""One framework on one dataset, in this process: the unit of work of ``benchmarks.run``.

    python -m benchmarks._bench_one --framework rf --dataset penguins --budget 60 --seed 0

Reads the table from benchmarks/data (see suite.json), splits it 75/25 (stratified for
classification, seeded), fits the framework on the training part within the budget, predicts
the test part and scores it here, with the same code for every framework:

- binary: ROC AUC of the probability of the positive class (the greater label in sorted order);
- multiclass: log loss over every class of the whole table (a class the model never saw gets
  probability 0, clipped by scikit-learn);
- regression: RMSE.

``value`` is the metric as usually reported (AUC, log loss, RMSE); ``score`` is the same number
in scikit-learn's greater-is-better convention, the convention of the metric names in
suite.json (``roc_auc``, ``neg_log_loss``, ``neg_root_mean_squared_error``): log loss and RMSE
are negated. A framework that raises is recorded with ``error`` set and no score.

Time: ``fit_seconds`` is the framework's own fit call (``fit_best``, ``AutoML.fit``,
``TabularPredictor.fit``), without its imports (``fit_total_seconds`` has them);
``cores_busy`` is how many of the machine's cores were busy during that call, on average, from
``/proc/stat`` (machine-wide, so nothing else may run meanwhile); ``startup_seconds`` is this
process's start-up before the run (given ``--launched``).

Prediction is timed three ways: ``predict_seconds``, the first prediction of the test split in
this process (for automl that includes unpickling the model); ``warm_predict_seconds``, the same
prediction once more; and, for the AutoML frameworks, ``fresh_predict_seconds``: the model saved
as its framework saves it (``model_bytes`` on disk), then loaded and used to predict the test split
in a new process of the same Python, timed from before the framework's import to after the
prediction (pandas is already imported and the test rows read: that is not the model's cost).

The JSON record is the last line of standard output; everything the framework prints (to either
stream, from Python or native code) goes to standard error. This module imports neither automl
nor any framework at import time, so it runs in another framework's virtualenv (AutoGluon pins an
older pandas) given only pandas, numpy and scikit-learn.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np
import pandas as pd

DATA = Path(__file__).resolve().parent / "data"
TEST_SIZE = 0.25
TASKS = ("binary", "multiclass", "regression")


def load_suite(data: Path = DATA) -> dict[str, dict]:
    """suite.json as ``{name: entry}`` (entry: file, target, task, metric, rows, features, source)."""
    return {entry["name"]: entry for entry in json.loads((data / "suite.json").read_text())}


def split(entry: dict, seed: int, data: Path = DATA):
    """``X_train, X_test, y_train, y_test, labels`` of one dataset; ``labels``: every class (sorted) or None."""
    from sklearn.model_selection import train_test_split

    table = pd.read_csv(data / entry["file"])
    table = table[table[entry["target"]].notna()].reset_index(drop=True)
    y = table.pop(entry["target"])
    classification = entry["task"] != "regression"
    X_train, X_test, y_train, y_test = train_test_split(
        table, y, test_size=TEST_SIZE, random_state=seed, stratify=y if classification else None
    )
    labels = sorted(y.unique().tolist()) if classification else None
    return X_train, X_test, y_train, y_test, labels


# --------------------------------------------------------------------------- frameworks
# Each takes (X_train, y_train, task, metric, budget, seed, n_jobs) and returns
# (version, predict) where predict(X) gives probabilities with their class labels
# (classification: ``(proba, classes)``) or the predicted numbers (regression). SAVERS has, for
# some, save(folder) -> bytes on disk, and the code a fresh process runs to load the saved model
# from ``folder`` and predict ``X``.

SAVERS: dict = {}
#: What a framework saved, when it says: automl's model (or ensemble members) and its predict_ms.
SAVED: dict = {}
#: Keyword arguments for automl's fit_best: a variant of automl (``--automl-options`` JSON).
AUTOML_OPTIONS: dict = {}
#: The framework's own fit call, timed by ``fit_call``: seconds and the cores it kept busy.
FIT_CALL: dict = {}


def cpu_ticks() -> tuple[int, int] | None:
    """The machine's (busy, all) CPU time in ticks since boot, from the first line of /proc/stat.

    Machine-wide on purpose: it counts whatever a framework starts (worker processes, helper
    daemons, native thread pools), which a sum over one process tree can miss."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    except (OSError, ValueError):
        return None
    user, nice, system, idle, iowait, irq, softirq, steal = fields
    busy = user + nice + system + irq + softirq + steal
    return busy, busy + idle + iowait


def cores_busy(before: tuple[int, int] | None, after: tuple[int, int] | None) -> float | None:
    """How many of the machine's cores were busy on average between two ``cpu_ticks`` readings."""
    if before is None or after is None or after[1] <= before[1]:
        return None
    return (after[0] - before[0]) / (after[1] - before[1]) * os.cpu_count()


@contextlib.contextmanager
def fit_call():
    """Times the framework's fit call alone (not its imports) and the machine's cores busy meanwhile."""
    ticks, started = cpu_ticks(), time.perf_counter()
    try:
        yield
    finally:
        FIT_CALL.update(seconds=round(time.perf_counter() - started, 3), cores_busy=cores_busy(ticks, cpu_ticks()))


def _automl(X, y, task, metric, budget, seed, n_jobs):
    import automl
    from automl.store.persist import save_run

    # n_jobs -1 (the whole machine) is automl's own default; the variant's options go to fit_best.
    settings = ({} if n_jobs == -1 else {"n_jobs": n_jobs}) | AUTOML_OPTIONS
    with fit_call():
        result = automl.fit_best(
            X, y, task=task, metric=metric, time_budget=budget, seed=seed, save=False, verbose=0, **settings
        )

    def save(folder: Path) -> int:  # the run directory as fit_best writes it (without the study)
        save_run(folder / "run", result, result.manifest)
        return (folder / "run" / "model.joblib").stat().st_size

    method = "predict" if task == "regression" else "predict_proba"
    SAVERS["automl"] = (save, f"import automl; automl.load(folder + '/run').{method}(X)")
    ensemble = result.manifest.get("ensemble") or {}
    saved = ensemble if ensemble.get("saved") else {}
    members, dropped = ([m["model"] for m in saved.get(key, [])] for key in ("members", "dropped"))
    SAVED["automl"] = {
        "model": result.model_name, "members": members, "dropped": dropped, "predict_ms": result.manifest.get("predict_ms"),
    }
    if task == "regression":
        return automl.__version__, result.predict
    return automl.__version__, lambda X_: (result.predict_proba(X_), result.classes_)


_FLAML_METRICS = {"binary": "roc_auc", "multiclass": "log_loss", "regression": "rmse"}


def _flaml(X, y, task, metric, budget, seed, n_jobs):
    try:
        import flaml
    except ImportError as error:
        raise ImportError(f"{error}; install the benchmark extra: pip install -e '.[bench]'") from error

    model = flaml.AutoML()
    with fit_call():
        model.fit(
            X, y, task="regression" if task == "regression" else "classification", time_budget=budget,
        metric=_FLAML_METRICS[task], seed=seed, n_jobs=n_jobs, verbose=0,
    )

    def save(folder: Path) -> int:  # FLAML's way: pickle the AutoML object (its best model and search state)
        import pickle

        with open(folder / "automl.pkl", "wb") as f:
            pickle.dump(model, f, pickle.HIGHEST_PROTOCOL)
        return (folder / "automl.pkl").stat().st_size

    method = "predict" if task == "regression" else "predict_proba"
    SAVERS["flaml"] = (save, f"import pickle; pickle.load(open(folder + '/automl.pkl', 'rb')).{method}(X)")
    if task == "regression":
        return flaml.__version__, model.predict
    return flaml.__version__, lambda X_: (model.predict_proba(X_), model.classes_)


def _categorical(X: pd.DataFrame) -> list:
    return [c for c in X.columns if not pd.api.types.is_numeric_dtype(X[c])]


def _rf(X, y, task, metric, budget, seed, n_jobs):
    """The AMLB baseline: a default random forest after simple imputation and ordinal encoding."""
    import sklearn
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, OrdinalEncoder

    categorical = _categorical(X)
    numeric = [c for c in X.columns if c not in categorical]

    def as_object(frame):  # str / category / mixed object columns -> object with np.nan as missing
        return frame.astype(object).where(frame.notna(), np.nan)

    prepare = ColumnTransformer([
        ("numeric", SimpleImputer(strategy="median"), numeric),
        ("categorical", make_pipeline(
            FunctionTransformer(as_object, feature_names_out="one-to-one"),
            SimpleImputer(strategy="most_frequent"),
            OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1),
        ), categorical),
    ])
    forest = (RandomForestRegressor if task == "regression" else RandomForestClassifier)(n_jobs=n_jobs, random_state=seed)
    with fit_call():
        model = make_pipeline(prepare, forest).fit(_bools_as_float(X), y)
    if task == "regression":
        return sklearn.__version__, lambda X_: model.predict(_bools_as_float(X_))
    return sklearn.__version__, lambda X_: (model.predict_proba(_bools_as_float(X_)), model.classes_)


def _bools_as_float(X: pd.DataFrame) -> pd.DataFrame:
    bools = [c for c in X.columns if pd.api.types.is_bool_dtype(X[c])]
    return X.astype({c: "float64" for c in bools}) if bools else X


def _const(X, y, task, metric, budget, seed, n_jobs):
    """Class priors (classification) or the mean (regression), whatever the features."""
    import sklearn
    from sklearn.dummy import DummyClassifier, DummyRegressor

    blank = np.zeros((len(X), 1))
    if task == "regression":
        model = DummyRegressor(strategy="mean").fit(blank, y)
        return sklearn.__version__, lambda X_: model.predict(np.zeros((len(X_), 1)))
    model = DummyClassifier(strategy="prior").fit(blank, y)
    return sklearn.__version__, lambda X_: (model.predict_proba(np.zeros((len(X_), 1))), model.classes_)


_AUTOGLUON_METRICS = {"binary": "roc_auc", "multiclass": "log_loss", "regression": "root_mean_squared_error"}


def _autogluon(X, y, task, metric, budget, seed, n_jobs):
    """AutoGluon 1.6 with presets="best_quality" (as AMLB runs it; AutoGluon takes no seed here)."""
    try:
        from autogluon.tabular import TabularPredictor
        from autogluon.tabular.version import __version__
    except ImportError as error:
        raise ImportError(
            f"autogluon.tabular not importable by {sys.executable} ({error}); it pins pandas < 2.4: install "
            f"'autogluon.tabular[all]==1.6.*' into a venv of its own, pass --python autogluon=VENV/bin/python"
        ) from error

    label = "__target__"
    directory = tempfile.mkdtemp(prefix="autogluon-")
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    with fit_call():
        predictor = TabularPredictor(
            label=label, problem_type=task, eval_metric=_AUTOGLUON_METRICS[task], path=directory, verbosity=0
        ).fit(
            X.assign(**{label: y.to_numpy()}), time_limit=budget, presets="best_quality",
            num_cpus="auto" if n_jobs == -1 else n_jobs,
        )
    def save(folder: Path) -> int:  # the predictor's own directory, written by fit
        return sum(f.stat().st_size for f in Path(directory).rglob("*") if f.is_file())

    method = "predict" if task == "regression" else "predict_proba"
    SAVERS["autogluon"] = (
        save, f"from autogluon.tabular import TabularPredictor; TabularPredictor.load({directory!r}).{method}(X)",
    )
    if task == "regression":
        return __version__, lambda X_: predictor.predict(X_, as_pandas=False)

    def predict(X_):
        proba = predictor.predict_proba(X_, as_multiclass=True)
        return proba.to_numpy(), proba.columns.to_numpy()

    return __version__, predict


FRAMEWORKS = {"automl": _automl, "flaml": _flaml, "rf": _rf, "const": _const, "autogluon": _autogluon}
# Frameworks whose result does not depend on the time budget (run once per dataset in a scaling run).
BUDGET_FREE = {"rf", "const"}


# --------------------------------------------------------------------------- scoring

def score(task: str, y_test, prediction, labels) -> float:
    """The metric as usually reported: ROC AUC, log loss or RMSE (see the module's docstring)."""
    from sklearn.metrics import log_loss, roc_auc_score

    y_test = np.asarray(y_test)
    if task == "regression":
        prediction = np.asarray(prediction, dtype=float).ravel()
        return float(np.sqrt(np.mean((y_test.astype(float) - prediction) ** 2)))
    proba = aligned_proba(*prediction, labels)
    if task == "binary":
        return float(roc_auc_score(y_test == labels[-1], proba[:, -1]))
    return float(log_loss(y_test, proba, labels=labels))


def aligned_proba(proba, classes, labels) -> np.ndarray:
    """``proba`` with one column per label of ``labels`` in that order (0 for a class the model lacks)."""
    proba = np.asarray(proba, dtype=float)
    position = {label: i for i, label in enumerate(labels)}
    out = np.zeros((len(proba), len(labels)))
    for j, cls in enumerate(np.asarray(classes).tolist()):
        if cls not in position:
            raise ValueError(f"the model predicts class {cls!r}, which is not among the dataset's labels {labels}")
        out[:, position[cls]] = proba[:, j]
    return out


def _fingerprint(index) -> str:
    """Short hash of the test rows' positions: every framework of one run must show the same."""
    return hashlib.sha256(np.asarray(index, dtype=np.int64).tobytes()).hexdigest()[:12]


# --------------------------------------------------------------------------- one run

def run_one(framework: str, dataset: str, budget: float, seed: int, n_jobs: int = -1, data: Path = DATA) -> dict:
    """Fit, predict and score; always returns a record (``error`` set on failure)."""
    entry = load_suite(data)[dataset]
    task = entry["task"]
    record = {
        "dataset": dataset, "framework": framework, "task": task, "metric": entry["metric"],
        "score": None, "value": None, "fit_seconds": None, "predict_seconds": None, "budget": budget,
        "seed": seed, "n_jobs": n_jobs, "error": None, "version": None, "n_train": None, "n_test": None,
        "split": None, "python": platform.python_version(), "pandas": pd.__version__,
    }
    if task not in TASKS:
        record["error"] = f"unknown task {task!r} in suite.json"
        return record
    try:
        X_train, X_test, y_train, y_test, labels = split(entry, seed, data)
        record.update(n_train=len(X_train), n_test=len(X_test), split=_fingerprint(X_test.index))
        fit = FRAMEWORKS[framework]
        started = time.perf_counter()
        try:
            record["version"], predict = fit(X_train, y_train, task, entry["metric"], budget, seed, n_jobs)
        finally:
            # fit_seconds: the fit call alone; with the framework's imports: fit_total_seconds
            record["fit_total_seconds"] = round(time.perf_counter() - started, 3)
            record["fit_seconds"] = FIT_CALL.get("seconds", record["fit_total_seconds"])
            record["cores_busy"] = FIT_CALL.get("cores_busy")
        started = time.perf_counter()
        prediction = predict(X_test)
        record["predict_seconds"] = round(time.perf_counter() - started, 3)
        value = score(task, y_test, prediction, labels)
        record.update(value=value, score=value if task == "binary" else -value)
        started = time.perf_counter()
        predict(X_test)
        record["warm_predict_seconds"] = round(time.perf_counter() - started, 4)
        if framework in SAVERS:
            record.update(_fresh_predict(*SAVERS[framework], X_test))
        if framework in SAVED:
            record["saved"] = SAVED[framework]
    except Exception as error:  # noqa: BLE001 - every failure is a result of the benchmark
        record["error"] = f"{type(error).__name__}: {error}"
        record["traceback"] = traceback.format_exc(limit=-8)
    return record


def _fresh_predict(save, code: str, X_test: pd.DataFrame) -> dict:
    """The saved model's size, and a new process's time to load it and predict ``X_test``."""
    with tempfile.TemporaryDirectory(prefix="fresh-predict-") as folder:
        size = save(Path(folder))
        X_test.to_csv(Path(folder) / "X.csv", index=False)
        script = (
            "import time, pandas as pd\n"
            f"folder = {folder!r}\n"
            "X = pd.read_csv(folder + '/X.csv')\n"
            "started = time.perf_counter()\n"
            f"{code}\n"
            "print(time.perf_counter() - started)\n"
        )
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        return {"model_bytes": size, "fresh_predict_seconds": None, "fresh_error": done.stderr[-2000:]}
    return {"model_bytes": size, "fresh_predict_seconds": round(float(done.stdout.strip().splitlines()[-1]), 4)}


@contextlib.contextmanager
def _stdout_to_stderr():
    """Meanwhile, whatever is written to file descriptor 1 (Python or native code) goes to 2."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--framework", required=True, choices=sorted(FRAMEWORKS))
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--budget", type=float, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-jobs", type=int, default=-1, help="-1: the whole machine, as the framework uses it")
    parser.add_argument("--automl-options", default="{}", help="JSON object of fit_best keyword arguments")
    parser.add_argument("--launched", type=float, default=None, help="time.time() when the parent started us")
    args = parser.parse_args(argv)
    started = time.time()
    AUTOML_OPTIONS.update(json.loads(args.automl_options))
    with _stdout_to_stderr():
        record = run_one(args.framework, args.dataset, args.budget, args.seed, args.n_jobs)
    if args.launched is not None:  # the interpreter's start-up and the imports of pandas and numpy
        record["startup_seconds"] = round(started - args.launched, 3)
    if AUTOML_OPTIONS and args.framework == "automl":
        record["automl_options"] = AUTOML_OPTIONS
    print(json.dumps(record), flush=True)


if __name__ == "__main__":
    main()
