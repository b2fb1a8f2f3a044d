"""The HTTP service behind ``automl serve``: a saved run answers prediction requests.

    POST /predict       {"records": [{column: value, ...}, ...]} or {"columns": {column: [value, ...], ...}}
                        -> {"predictions": [...]}, plus "classes" and "probabilities" (one row of
                        probabilities per input row, in the order of "classes") for classifiers
    GET  /health        {"status": "ok", ...}; answered on the event loop, so it stays quick
                        while large batches are predicted in the threadpool
    GET  /model         what the run's manifest says: model, task, metric, scores, input columns,
                        target, classes, library versions
    GET  /docs, /openapi.json   generated from the run's input columns

Requests are validated against the saved input schema: the request models are built with
``pydantic.create_model`` from ``manifest["columns"]``, so the OpenAPI description names the real
columns. Every column the model uses is required in every row (``null`` is a missing value);
columns the search dropped are optional and ignored. Columns the model was not trained with are
ignored and named in the response's ``"warnings"``, as ``Result.predict`` ignores them with a
warning.

Every error is JSON, ``{"error": "<what is wrong, where>", "detail": [...]}``:

    413  more rows than ``max_rows`` in one request
    422  malformed JSON, a missing column, a value that is not of the column's type, an empty
         batch, columns of different lengths; the message names the column and the rows
    500  the model failed on input that passed validation (logged with its traceback)

The request models and the reading of a request are in ``request_schema``, the wording of
validation errors in ``request_errors``, the answers' shapes in ``responses``; this module makes
the app and runs the server. FastAPI, pydantic and uvicorn are imported only by these modules,
and ``import automl`` never imports them: the CLI imports this one when ``automl serve`` runs.
"""

import logging
import os
import socket
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from .._version import __version__
from .._exceptions import InputError, RunDirectoryError
from ..store.persist import load
from ..store.result import Result
from .request_errors import explain_errors
from .request_schema import RequestSchema
from .responses import ErrorResponse, ModelInfo, error_response, json_values, model_info, prediction_model

__all__ = ["DEFAULT_MAX_ROWS", "create_app", "serve"]

logger = logging.getLogger(__name__)

#: The most rows one request may hold unless ``max_rows`` says otherwise.
DEFAULT_MAX_ROWS = 10_000
#: Requests of at most this many rows are answered on the event loop: the hop to a thread and
#: back costs about as much as their prediction. Larger ones run in the threadpool, so that
#: /health and small requests are not held up behind them.
INLINE_ROWS = 100


def create_app(run: "str | os.PathLike | Result", *, max_rows: int = DEFAULT_MAX_ROWS) -> FastAPI:
    """The FastAPI application that serves ``run``: a run directory (loaded and checked once, now)
    or a :class:`automl.Result`.

    :param max_rows: the most rows one request may hold; larger batches get 413.
    :raises RunDirectoryError: the run directory is missing, damaged, or its model cannot be loaded.
    :raises InputError: ``max_rows`` is not a positive number.
    """
    if max_rows < 1:
        raise InputError(f"max_rows must be at least 1, got {max_rows}")
    result = run if isinstance(run, Result) else load(run)
    where = str(result.path) if result.path is not None else "an unsaved run"
    if not result.manifest.get("columns"):
        raise RunDirectoryError(f"the manifest of {where} lists no input columns; re-run the search with this version")
    try:
        _ = result.model  # unpickle now: a broken model fails at start-up, not on the first request
    except Exception as exc:
        raise RunDirectoryError(f"cannot load the model of {where}: {type(exc).__name__}: {exc}") from exc
    schema = RequestSchema(result.manifest["columns"], max_rows)
    target = result.manifest.get("target")

    app = FastAPI(
        title=f"automl: {result.model_name} ({result.task})",
        version=__version__,
        description=(
            f"Predictions of the `{result.model_name}` model found by automl"
            f"{f' for `{target}`' if target else ''}: {result.metric} {result.score:.4f} in cross-validation"
            f"{f', {result.test_score:.4f} on the test split' if result.test_score is not None else ''}. "
            f"POST rows to /predict as records or columns, at most {max_rows} rows per request."
        ),
    )
    _answer_errors_as_json(app, schema)
    _add_routes(app, result, schema, model_info(result, max_rows))
    logger.info("loaded %s (%s, %s %.4f) from %s", result.model_name, result.task, result.metric, result.score, where)
    return app


def _answer_errors_as_json(app: FastAPI, schema: RequestSchema) -> None:
    """Every error in the one JSON shape: invalid requests explained, HTTP errors and the unexpected."""

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        status, message, detail = explain_errors(list(exc.errors()), schema)
        return error_response(status, message, detail)

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, exc: HTTPException) -> JSONResponse:
        body = {"error": str(exc.detail), "detail": None}
        return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        return error_response(500, f"internal error: {type(exc).__name__}: {exc}")


def _add_routes(app: FastAPI, result: Result, schema: RequestSchema, info: dict[str, Any]) -> None:
    """POST /predict, GET /health and GET /model."""
    PredictRequest = schema.request_model
    responses = {
        200: {"model": prediction_model(result.task)},
        **{status: {"model": ErrorResponse} for status in (413, 422, 500)},
    }

    @app.post("/predict", summary="Predict a batch of rows", responses=responses)
    async def predict(body: PredictRequest) -> JSONResponse:
        if schema.n_rows(body) <= INLINE_ROWS:
            return answer(body)
        return await run_in_threadpool(answer, body)

    def answer(body) -> JSONResponse:
        frame = None
        try:
            frame, notes = schema.to_frame(body)
            if result.task == "regression":
                answer: dict[str, Any] = {"predictions": json_values(result.predict(frame))}
            else:
                # one pass through the pipeline: the prediction is the most probable class
                probabilities = result.predict_proba(frame)
                answer = {
                    "predictions": json_values(result.classes_[np.argmax(probabilities, axis=1)]),
                    "classes": json_values(result.classes_),
                    "probabilities": json_values(probabilities),
                }
        except InputError as exc:
            return error_response(422, str(exc))
        except Exception as exc:
            logger.exception("prediction failed on %s row(s)", "?" if frame is None else len(frame))
            return error_response(500, f"prediction failed: {type(exc).__name__}: {exc}")
        answer["warnings"] = notes
        return JSONResponse(answer)

    @app.get("/health", summary="Is the service up")
    async def health() -> dict[str, str]:
        return {"status": "ok", "model": result.model_name, "task": result.task}

    @app.get("/model", summary="The model being served and its input columns", response_model=ModelInfo)
    async def model() -> dict[str, Any]:
        return info


def _listen(host: str, port: int) -> socket.socket:
    """A socket bound to host:port, so that a busy port is a clear error before the server starts."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except OSError as exc:
        raise InputError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise InputError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return sock


def serve(
    run_dir: "str | os.PathLike",
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    max_rows: int = DEFAULT_MAX_ROWS,
    log_level: str = "info",
) -> None:
    """Load ``run_dir``, listen on ``host:port`` and answer requests until interrupted.

    The model is loaded (checksums verified) before the port is bound: a damaged run directory
    raises :class:`automl.RunDirectoryError` and nothing listens. uvicorn logs through the
    ``logging`` configuration of the caller (the ``automl`` command sets it up).
    """
    import uvicorn

    app = create_app(run_dir, max_rows=max_rows)
    sock = _listen(host, port)
    bound = sock.getsockname()[1]
    config = uvicorn.Config(app, host=host, port=bound, log_level=log_level, log_config=None)
    logger.info("serving %s on http://%s:%d (API description at /docs)", Path(run_dir), host, bound)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()
