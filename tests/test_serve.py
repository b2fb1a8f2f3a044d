"""automl serve, run as a user runs it: the real server in a subprocess, real HTTP over loopback."""

import concurrent.futures
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_diabetes, load_wine

import automl

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

AUTOML = shutil.which("automl", path=str(Path(sys.executable).parent)) or "automl"
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
MAX_ROWS = 1000


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """``automl serve RUN`` in a subprocess, with a client for it; its log goes to a file."""

    def __init__(self, run: Path, log: Path, *args: str):
        self.log = log
        port = free_port()
        with open(log, "wb") as out:  # a file, not a pipe: a full pipe would block the server
            self.process = subprocess.Popen(
                [AUTOML, "serve", str(run), "--port", str(port), *args], stdout=out, stderr=subprocess.STDOUT, env=ENV,
            )
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60)
        deadline = time.monotonic() + 60
        while True:
            if self.process.poll() is not None:
                raise AssertionError(f"automl serve exited {self.process.returncode}:\n{log.read_text()}")
            try:
                if self.client.get("/health").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"automl serve did not answer /health within 60 s:\n{log.read_text()}")
            time.sleep(0.1)

    def stop(self) -> None:
        self.client.close()
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def records(frame: pd.DataFrame) -> list[dict]:
    return frame.to_dict(orient="records")


@pytest.fixture(scope="module")
def wine(tmp_path_factory):
    X, y = load_wine(return_X_y=True, as_frame=True)
    y = y.map({0: "barolo", 1: "grignolino", 2: "barbera"}).rename("cultivar")
    run = tmp_path_factory.mktemp("wine") / "run"
    automl.fit_best(X, y, models=["logistic_regression"], n_trials=2, cv=3, time_budget=None, test_size=0.2,
                    path=run, seed=0)
    return run, X


@pytest.fixture(scope="module")
def wine_server(wine, tmp_path_factory):
    run, _ = wine
    server = Server(run, tmp_path_factory.mktemp("logs") / "wine.log", "--max-rows", str(MAX_ROWS))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def diabetes(tmp_path_factory):
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    X = X.assign(
        clinic=np.array(["north", "south", "east"])[np.arange(len(X)) % 3],
        visit=pd.date_range("2020-01-01", periods=len(X), freq="D"),
        patient_id=np.arange(len(X)),  # identifier-like: the search drops it
    )
    run = tmp_path_factory.mktemp("diabetes") / "run"
    automl.fit_best(X, y, models=["ridge"], n_trials=2, cv=3, time_budget=None, path=run, seed=0)
    return run, X


@pytest.fixture(scope="module")
def diabetes_server(diabetes, tmp_path_factory):
    run, _ = diabetes
    server = Server(run, tmp_path_factory.mktemp("logs") / "diabetes.log")
    yield server
    server.stop()


def test_records_and_columns_give_what_load_predicts(wine, wine_server):
    run, X = wine
    rows = X.iloc[::9]
    loaded = automl.load(run)
    answer = wine_server.client.post("/predict", json={"records": records(rows)})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["predictions"] == loaded.predict(rows).tolist()
    assert body["classes"] == ["barbera", "barolo", "grignolino"] == loaded.classes_.tolist()
    proba = np.array(body["probabilities"])
    assert proba.shape == (len(rows), 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_allclose(proba, loaded.predict_proba(rows))
    assert body["warnings"] == []

    by_column = wine_server.client.post("/predict", json={"columns": rows.to_dict(orient="list")}).json()
    assert by_column["predictions"] == body["predictions"]
    np.testing.assert_allclose(by_column["probabilities"], proba)


def test_extra_columns_are_ignored_and_named(wine, wine_server):
    _, X = wine
    rows = [{**row, "vintage": 2019, "cellar": "B"} for row in records(X.head(2))]
    body = wine_server.client.post("/predict", json={"records": rows}).json()
    assert len(body["predictions"]) == 2
    assert body["warnings"] == ["ignored column(s) ['cellar', 'vintage'] that the model was not trained with"]


def test_model_describes_the_run(wine, wine_server):
    run, X = wine
    manifest = automl.load(run).manifest
    info = wine_server.client.get("/model").json()
    assert info["model"] == "logistic_regression" and info["task"] == "multiclass"
    assert info["metric"] == "neg_log_loss"
    assert info["cv_score"] == pytest.approx(manifest["cv_score"])
    assert info["test_score"] == pytest.approx(manifest["test_score"])
    assert info["target"] == "cultivar"
    assert info["classes"] == ["barbera", "barolo", "grignolino"]
    assert [c["name"] for c in info["columns"]] == list(X.columns)
    assert all(c["kind"] == "numeric" and c["dtype"] == "float64" and c["required"] for c in info["columns"])
    assert info["versions"]["scikit-learn"] == manifest["versions"]["scikit-learn"]
    assert info["max_rows"] == MAX_ROWS


def test_openapi_names_the_saved_columns(wine, wine_server):
    _, X = wine
    spec = wine_server.client.get("/openapi.json").json()
    record = spec["components"]["schemas"]["Record"]
    assert list(record["properties"]) == list(X.columns)
    assert sorted(record["required"]) == sorted(X.columns)
    assert {"type": "number"} in record["properties"]["proline"]["anyOf"]
    assert "/predict" in spec["paths"] and "413" in spec["paths"]["/predict"]["post"]["responses"]
    docs = wine_server.client.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()


def _wine_rows(n=3):
    X, _ = load_wine(return_X_y=True, as_frame=True)
    return records(X.head(n))


def _without(rows, index, column):
    rows = [dict(r) for r in rows]
    del rows[index][column]
    return rows


def _with(rows, index, column, value):
    rows = [dict(r) for r in rows]
    rows[index][column] = value
    return rows


def _columns(rows):
    return pd.DataFrame(rows).to_dict(orient="list")


BAD_REQUESTS = {
    "malformed JSON": ({"content": b'{"records": [{"alcohol": 13.2,', "headers": {"content-type": "application/json"}},
                       422, ["not valid JSON"]),
    "not JSON": ({"content": b"alcohol=13.2", "headers": {"content-type": "application/x-www-form-urlencoded"}},
                 422, ["Content-Type: application/json"]),
    "missing column": ({"json": {"records": _without(_wine_rows(), 1, "proline")}}, 422,
                       ["'proline'", "missing", "row 1"]),
    "wrong type": ({"json": {"records": _with(_wine_rows(), 2, "hue", "very red")}}, 422,
                   ["'hue'", "row 2", "expected a number", '"very red"']),
    "wrong type in a column": ({"json": {"columns": _columns(_with(_wine_rows(), 1, "ash", [1, 2]))}}, 422,
                               ["'ash'", "row 1", "expected a number"]),
    "missing column in columns form": ({"json": {"columns": _columns(_without(_wine_rows(1), 0, "hue"))}}, 422,
                                       ["column 'hue' is missing"]),
    "columns of different lengths": ({"json": {"columns": {**_columns(_wine_rows(3)), "ash": [2.0]}}}, 422,
                                     ["different lengths", "'ash' has 1"]),
    "empty batch": ({"json": {"records": []}}, 422, ["batch is empty"]),
    "empty columns": ({"json": {"columns": _columns(_wine_rows(1)) | {"ash": []}}}, 422, ["batch is empty", "'ash'"]),
    "oversized batch": ({"json": {"records": _wine_rows(1) * (MAX_ROWS + 1)}}, 413, [f"at most {MAX_ROWS} rows"]),
    "neither form": ({"json": {}}, 422, ['neither "records" nor "columns"']),
    "unknown key": ({"json": {"rows": _wine_rows(1)}}, 422, ["unknown key 'rows'"]),
    "a row that is not an object": ({"json": {"records": [[1, 2, 3]]}}, 422, ["row 0", "object"]),
}


@pytest.mark.parametrize("case", list(BAD_REQUESTS))
def test_bad_requests_get_4xx_naming_the_problem(wine_server, case):
    request, status, phrases = BAD_REQUESTS[case]
    answer = wine_server.client.post("/predict", **request)
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    for phrase in phrases:
        assert phrase in error


def test_many_concurrent_requests_all_answered(wine, wine_server):
    run, X = wine
    loaded = automl.load(run)
    batches = [X.iloc[i % len(X): i % len(X) + 1 + i % 7] for i in range(0, 50 * 11, 11)]

    def ask(batch):
        return wine_server.client.post("/predict", json={"records": records(batch)})

    with concurrent.futures.ThreadPoolExecutor(max_workers=10) as pool:
        answers = list(pool.map(ask, batches))
        health = [pool.submit(wine_server.client.get, "/health") for _ in range(10)]
        assert all(h.result().status_code == 200 for h in health)
    for batch, answer in zip(batches, answers, strict=True):
        assert answer.status_code == 200, answer.text
        assert answer.json()["predictions"] == loaded.predict(batch).tolist()


def test_regression_with_categories_dates_and_a_dropped_column(diabetes, diabetes_server):
    run, X = diabetes
    loaded = automl.load(run)
    kinds = {c["name"]: c["kind"] for c in diabetes_server.client.get("/model").json()["columns"]}
    assert kinds["clinic"] == "categorical" and kinds["visit"] == "datetime" and kinds["patient_id"] == "dropped"

    rows = X.iloc[::40]
    sent = rows.drop(columns="patient_id").assign(visit=rows["visit"].dt.strftime("%Y-%m-%dT%H:%M:%S"))
    answer = diabetes_server.client.post("/predict", json={"records": records(sent)})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert set(body) == {"predictions", "warnings"}
    np.testing.assert_allclose(body["predictions"], loaded.predict(rows))

    unseen = _with(_with(records(sent.head(2)), 0, "clinic", "west"), 1, "clinic", None)
    unseen = _with(_with(unseen, 0, "visit", None), 1, "visit", "2021-03-04")
    assert diabetes_server.client.post("/predict", json={"records": unseen}).status_code == 200

    bad_date = _with(records(sent.head(3)), 2, "visit", "next tuesday-ish")
    answer = diabetes_server.client.post("/predict", json={"records": bad_date})
    assert answer.status_code == 422
    assert "'visit'" in answer.json()["error"] and "row 2" in answer.json()["error"]

    spec = diabetes_server.client.get("/openapi.json").json()["components"]["schemas"]["Record"]
    assert "patient_id" in spec["properties"] and "patient_id" not in spec["required"]


def test_server_still_healthy_after_all_bad_input(wine, wine_server):
    # runs after the bad requests above (pytest keeps the order of a module)
    wine_server.client.post("/predict", content=b"\xff\xfe garbage", headers={"content-type": "application/json"})
    wine_server.client.post("/predict", content=b'{"records": [{"alcohol": Infinity}]}',
                            headers={"content-type": "application/json"})
    assert wine_server.process.poll() is None
    assert wine_server.client.get("/health").json()["status"] == "ok"
    _, X = wine
    assert wine_server.client.post("/predict", json={"records": records(X.head(1))}).status_code == 200
    assert "Traceback" not in wine_server.log.read_text()


def test_damaged_run_dir_exits_2_before_listening(wine, tmp_path):
    run, _ = wine
    damaged = tmp_path / "damaged"
    shutil.copytree(run, damaged)
    model = damaged / "model.joblib"
    model.write_bytes(model.read_bytes()[:-100])
    port = free_port()
    done = subprocess.run([AUTOML, "serve", str(damaged), "--port", str(port)], capture_output=True, text=True,
                          env=ENV, timeout=120)
    assert done.returncode == 2
    assert "model.joblib does not match its checksum" in done.stderr
    assert "Traceback" not in done.stderr

    done = subprocess.run([AUTOML, "serve", str(tmp_path / "nothing")], capture_output=True, text=True,
                          env=ENV, timeout=120)
    assert done.returncode == 2 and "manifest.json is missing" in done.stderr


def test_missing_serve_extra_is_one_line_and_exit_2(monkeypatch, capsys):
    from automl._cli import main

    monkeypatch.setitem(sys.modules, "fastapi", None)  # as if not installed
    assert main(["serve", "some-run"]) == 2
    assert "automl serve needs: pip install 'automl-select[serve]'" in capsys.readouterr().err


def test_import_automl_leaves_the_server_stack_out():
    code = (
        "import sys, automl, automl._cli; automl._cli._parser(); "
        "print(sorted(m for m in ('fastapi', 'uvicorn', 'pydantic', 'starlette', 'sklearn') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_small_requests_inline_and_large_ones_in_the_threadpool_answer_alike(wine, wine_server):
    from automl.deploy.serve import INLINE_ROWS

    run, X = wine
    loaded = automl.load(run)
    large = pd.concat([X] * (INLINE_ROWS // len(X) + 2), ignore_index=True)
    for batch in (X.iloc[:INLINE_ROWS], large):
        answer = wine_server.client.post("/predict", json={"records": records(batch)})
        assert answer.status_code == 200, answer.text
        assert answer.json()["predictions"] == loaded.predict(batch).tolist()
        np.testing.assert_allclose(answer.json()["probabilities"], loaded.predict_proba(batch), rtol=1e-12)
