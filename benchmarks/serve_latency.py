"""Latency of ``automl serve`` over loopback, next to the same predictions made in-process.

    python -m benchmarks.serve_latency [--dataset adult] [--fit-rows 5000] [--single 500] [--batches 50] \
        [--models logistic_regression] [--n-trials 1] [--output serve_latency_lr.md]

Fits a small run (by default logistic regression, one trial, 3 folds; ``--models`` and
``--n-trials`` choose others, and the table says what was saved) on rows of a bundled table, starts the
real server (``automl serve RUN --port P``, access log on, as a user starts it) in a subprocess,
and times sequential requests from one keep-alive client: single-row requests, then 1,000-row
requests as records and as columns, each built from rows the model was not fitted on. The
baseline is ``Result.predict_proba`` (and the most probable class) on the same rows in this process: the
difference is what HTTP, JSON and validation cost. Results go to benchmarks/results/ (``--output``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd

import automl

DATA = Path(__file__).resolve().parent / "data"
RESULTS = Path(__file__).resolve().parent / "results"
BATCH_ROWS = 1000
WARM_UP = 20


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start_server(run: Path, log: Path) -> tuple[subprocess.Popen, httpx.Client]:
    automl_command = shutil.which("automl", path=str(Path(sys.executable).parent)) or "automl"
    port = _free_port()
    with open(log, "wb") as out:
        process = subprocess.Popen([automl_command, "serve", str(run), "--port", str(port)], stdout=out,
                                   stderr=subprocess.STDOUT, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if client.get("/health").status_code == 200:
                return process, client
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit(f"automl serve did not start:\n{log.read_text()}")


def _json_body(form: str, frame: pd.DataFrame) -> bytes:
    """The request body for ``frame``, missing values as null (JSON has no NaN)."""
    plain = frame.astype(object).where(frame.notna(), None)
    values = plain.to_dict(orient="records") if form == "records" else plain.to_dict(orient="list")
    return json.dumps({form: values}, allow_nan=False).encode()


def _time_requests(client: httpx.Client, bodies: list[bytes], expected_rows: int) -> np.ndarray:
    """Seconds per request, each body sent in turn; every answer is checked."""
    seconds = []
    for body in bodies:
        t0 = time.perf_counter()
        answer = client.post("/predict", content=body, headers={"content-type": "application/json"})
        seconds.append(time.perf_counter() - t0)
        if answer.status_code != 200 or len(answer.json()["predictions"]) != expected_rows:
            raise SystemExit(f"bad answer {answer.status_code}: {answer.text[:500]}")
    return np.array(seconds)


def _time_in_process(result, frames: list[pd.DataFrame]) -> np.ndarray:
    seconds = []
    for frame in frames:
        t0 = time.perf_counter()
        probabilities = result.predict_proba(frame)
        result.classes_[probabilities.argmax(axis=1)]
        seconds.append(time.perf_counter() - t0)
    return np.array(seconds)


def _source() -> str:
    """Which automl was measured: its folder and, when it is a git checkout, the commit."""
    folder = Path(automl.__file__).resolve().parent.parent
    done = subprocess.run(["git", "-C", str(folder), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", str(folder), "status", "--porcelain", "automl", "plugins"], capture_output=True, text=True)
    commit = done.stdout.strip() + (" with uncommitted changes" if dirty.stdout.strip() else "") if done.returncode == 0 else "not a git checkout"
    return f"from {folder} ({commit})"


def _row(name: str, n_rows: int, seconds: np.ndarray, baseline: np.ndarray | None) -> str:
    p50, p99 = np.percentile(seconds, [50, 99]) * 1000
    rate = n_rows * len(seconds) / seconds.sum()
    base = f"{np.percentile(baseline, 50) * 1000:.1f} ms" if baseline is not None else "-"
    return f"| {name} | {len(seconds)} | {p50:.1f} ms | {p99:.1f} ms | {rate:,.0f} | {base} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="adult")
    parser.add_argument("--fit-rows", type=int, default=5000, help="rows the model is fitted on (default 5000)")
    parser.add_argument("--single", type=int, default=500, help="single-row requests (default 500)")
    parser.add_argument("--batches", type=int, default=50, help=f"{BATCH_ROWS}-row requests per form (default 50)")
    parser.add_argument("--models", default="logistic_regression", help="models to search, comma-separated")
    parser.add_argument("--n-trials", type=int, default=1, help="trials per model (default 1)")
    parser.add_argument("--output", default="serve_latency_lr.md", help="file name under benchmarks/results/")
    args = parser.parse_args()

    suite = {entry["name"]: entry for entry in json.loads((DATA / "suite.json").read_text())}
    table = pd.read_csv(DATA / suite[args.dataset]["file"])
    target = suite[args.dataset]["target"]
    table = table.sample(frac=1.0, random_state=0).reset_index(drop=True)
    fit_part, request_part = table.iloc[: args.fit_rows], table.iloc[args.fit_rows:].drop(columns=[target])
    rng = np.random.default_rng(0)

    with tempfile.TemporaryDirectory(prefix="serve-latency-") as tmp:
        run = Path(tmp) / "run"
        automl.fit_best(fit_part.drop(columns=[target]), fit_part[target], models=args.models.split(","),
                        n_trials=args.n_trials, cv=3, time_budget=None, path=run, seed=0)
        result = automl.load(run)
        singles = [request_part.iloc[[i]] for i in rng.integers(0, len(request_part), args.single)]
        batches = [request_part.iloc[rng.integers(0, len(request_part), BATCH_ROWS)] for _ in range(args.batches)]
        single_bodies = [_json_body("records", f) for f in singles]
        record_bodies = [_json_body("records", f) for f in batches]
        column_bodies = [_json_body("columns", f) for f in batches]

        process, client = _start_server(run, Path(tmp) / "server.log")
        try:
            _time_requests(client, single_bodies[:WARM_UP], 1)
            single = _time_requests(client, single_bodies, 1)
            records = _time_requests(client, record_bodies, BATCH_ROWS)
            columns = _time_requests(client, column_bodies, BATCH_ROWS)
        finally:
            client.close()
            process.terminate()
            process.wait(timeout=30)
        _time_in_process(result, singles[:WARM_UP])
        single_base = _time_in_process(result, singles)
        batch_base = _time_in_process(result, batches)

    n_categorical = sum(c["kind"] == "categorical" for c in result.manifest["columns"])
    command = (f"python -m benchmarks.serve_latency --dataset {args.dataset} --fit-rows {args.fit_rows} "
               f"--single {args.single} --batches {args.batches} --models {args.models} --n-trials {args.n_trials} "
               f"--output {args.output}")
    saved = result.model_name
    if saved == "ensemble":
        saved += " of " + ", ".join(m["model"] for m in result.manifest["ensemble"]["members"])
    lines = [
        "# Serving latency",
        "",
        f"`{command}`",
        "",
        f"{args.dataset}: {request_part.shape[1]} input columns ({n_categorical} categorical), {saved}"
        f" (searched: {args.models}, {args.n_trials} trial(s) each) fitted on {args.fit_rows} rows; requests are built from the other {len(request_part)} rows. One"
        " keep-alive client sends the requests one after another to `automl serve` (one uvicorn worker, access"
        " log on) over loopback; each time is the whole round trip: the request, its validation against the"
        " saved schema, one predict_proba pass (the prediction is the most probable class), and the JSON answer.",
        "",
        "| request | requests | p50 | p99 | rows/s | in-process p50 |",
        "| --- | --- | --- | --- | --- | --- |",
        _row("1 row (records)", 1, single, single_base),
        _row(f"{BATCH_ROWS:,} rows (records)", BATCH_ROWS, records, batch_base),
        _row(f"{BATCH_ROWS:,} rows (columns)", BATCH_ROWS, columns, batch_base),
        "",
        "In-process: `Result.predict_proba` and the most probable class on the same rows as a DataFrame, what the"
        " server runs per request.",
        "",
        f"automl {_source()}.",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores shared with other jobs, Python"
        f" {platform.python_version()}, {platform.system()}; client and server on the same machine."
        " Single runs on a shared machine: compare rows of one run, not runs.",
    ]
    text = "\n".join(lines) + "\n"
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / args.output).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
