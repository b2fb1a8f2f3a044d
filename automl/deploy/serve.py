"""The HTTP service behind ``automl serve``: a saved run answers prediction requests.

    POST /predict       {"records": [{column: value, ...}, ...]} or {"columns": {column: [value, ...], ...}}
                        -> {"predictions": [...]}, plus "classes" and "probabilities" (one row of
                        probabilities per input row, in the order of "classes") for classifiers
    GET  /health        {"status": "ok", ...}; answered on the event loop, so it stays quick
                        while predictions run in the threadpool
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

FastAPI, pydantic and uvicorn are imported only here, and ``import automl`` never imports this
module: the CLI imports it when ``automl serve`` runs.
"""

import collections
import json
import logging
import os
import socket
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pandas as pd
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, create_model, model_validator
from starlette.exceptions import HTTPException

from .. import __version__
from .._exceptions import InputError, RunDirectoryError
from ..store.persist import load
from ..store.result import Result

__all__ = ["DEFAULT_MAX_ROWS", "create_app", "serve"]

logger = logging.getLogger(__name__)

#: The most rows one request may hold unless ``max_rows`` says otherwise.
DEFAULT_MAX_ROWS = 10_000
_SHAPES = 'send {"records": [{column: value, ...}, ...]} or {"columns": {column: [values], ...}}'
#: Error entries returned in "detail"; the one-line "error" covers all of them.
_MAX_DETAIL = 20
#: Rows named in one message before the rest are counted.
_ROWS_NAMED = 5


class ColumnInfo(BaseModel):
    """One input column as the search saw it."""

    name: str
    dtype: str = Field(description="the dtype the column had in training")
    kind: str = Field(description="numeric, categorical, datetime, or dropped (ignored by the model)")
    note: str = Field(description="what the search noticed or did (why a column was dropped, ...)")
    required: bool = Field(description="whether every request row must hold this column")


class ModelInfo(BaseModel):
    """What the run's manifest says about the model being served."""

    model: str
    task: str
    metric: str
    cv_score: float | None
    cv_std: float | None
    test_score: float | None
    target: str | None
    classes: list[Any] | None
    params: dict[str, Any]
    columns: list[ColumnInfo]
    n_rows: int | None = Field(description="rows the model was trained on")
    created: str | None
    versions: dict[str, str | None]
    max_rows: int = Field(description="the most rows one request may hold")


class ErrorResponse(BaseModel):
    """Every error the service returns."""

    error: str = Field(description="what is wrong and where: the column and the rows")
    detail: list[dict[str, Any]] | None = Field(None, description="the first validation errors, one per value")


class _OneForm(BaseModel):
    """Base of the request model: exactly one of ``records`` and ``columns``."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="after")
    def _exactly_one_form(self):
        if (self.records is None) == (self.columns is None):
            both = self.records is not None
            raise ValueError(f'the body holds {"both" if both else "neither"} "records" {"and" if both else "nor"} '
                             f'"columns"; {_SHAPES}')
        return self


def _value_type(column: dict[str, Any]) -> tuple[Any, str]:
    """The pydantic type of one value of ``column``, and how an error message describes it."""
    kind, dtype = column["kind"], column["dtype"]
    if kind == "numeric" and dtype.startswith("timedelta"):
        return str | float | None, "a duration (text such as '1 days 02:00:00') or null"
    if kind == "numeric":
        return float | None, "a number or null"
    if kind == "datetime":
        return str | None, "a date and time as text (e.g. '2024-05-01T12:00:00') or null"
    if kind == "categorical":
        return str | int | float | bool | None, "text, a number, true/false or null"
    return Any, "any value"


class _Schema:
    """The run's input columns as request models, and the way from a request back to a table."""

    def __init__(self, columns: list[dict[str, Any]], max_rows: int):
        self.max_rows = max_rows
        # field names are generated: a column may be called "model_config", "json" or "a b"
        self.fields = {f"c{i}": column for i, column in enumerate(columns)}
        self.expected: dict[str, str] = {}
        records: dict[str, Any] = {}
        by_column: dict[str, Any] = {}
        for field, column in self.fields.items():
            name, kind = column["name"], column["kind"]
            value_type, self.expected[name] = _value_type(column)
            about = f"{kind}, {column['dtype']} in training" + (f"; {column['note']}" if column.get("note") else "")
            if kind == "dropped":
                about = f"optional and ignored: the search dropped it ({column.get('note') or 'unused'})"
                records[field] = (Any, Field(None, alias=name, description=about))
                by_column[field] = (list[Any] | None, Field(None, alias=name, description=about))
            else:
                records[field] = (value_type, Field(..., alias=name, description=about))
                by_column[field] = (
                    list[value_type], Field(..., alias=name, description=about, min_length=1, max_length=max_rows),
                )
        extra = ConfigDict(extra="allow")
        Record = create_model("Record", __config__=extra, **records)
        Columns = create_model("Columns", __config__=extra, **by_column)
        self.request_model = create_model(
            "PredictRequest",
            __base__=_OneForm,
            records=(
                Annotated[list[Record], Field(min_length=1, max_length=max_rows)] | None,
                Field(None, description="one object per row: {column: value, ...}"),
            ),
            columns=(Columns | None, Field(None, description="one list of values per column, all of one length")),
        )

    def to_frame(self, body: BaseModel) -> tuple[pd.DataFrame, list[str]]:
        """The validated request as a table with the training columns, and notes for the response."""
        if body.records is not None:
            rows = body.records
            n_rows = len(rows)
            values = {field: [getattr(row, field) for row in rows] for field in self.fields}
            extra = {name for row in rows if row.__pydantic_extra__ for name in row.__pydantic_extra__}
        else:
            values = {field: getattr(body.columns, field) for field in self.fields}
            lengths = {self.fields[f]["name"]: len(v) for f, v in values.items() if v is not None}
            if len(set(lengths.values())) > 1:
                usual = collections.Counter(lengths.values()).most_common(1)[0][0]
                odd = ", ".join(f"{name!r} has {n}" for name, n in lengths.items() if n != usual)
                raise InputError(
                    f"columns have different lengths: {odd} value(s), the other columns {usual}; "
                    "give every column one value per row"
                )
            n_rows = next(iter(lengths.values()))
            extra = set(body.columns.__pydantic_extra__ or {})
        data = {}
        for field, column in self.fields.items():
            column_values = values[field] if values[field] is not None else [None] * n_rows
            if column["kind"] == "numeric" and not column["dtype"].startswith("timedelta"):
                data[column["name"]] = np.array(column_values, dtype=float)  # None becomes NaN
            else:
                data[column["name"]] = pd.Series(column_values, dtype=object)
            if column["kind"] == "datetime":
                _check_dates(column["name"], data[column["name"]], self.expected[column["name"]])
        notes = []
        if extra:
            shown = sorted(extra)[:10]
            more = " ..." if len(extra) > 10 else ""
            notes.append(f"ignored column(s) {shown}{more} that the model was not trained with")
        return pd.DataFrame(data), notes


def _check_dates(name: str, values: pd.Series, expected: str) -> None:
    """Name the first rows whose text is not a date, before the model says only which column."""
    stamps = pd.to_datetime(values, utc=True, format="mixed", errors="coerce")
    bad = np.flatnonzero(values.notna().to_numpy() & stamps.isna().to_numpy())
    if len(bad):
        raise InputError(
            f"column {name!r} in {_rows_text(bad.tolist())}: expected {expected}, got {_short(values.iloc[bad[0]])}"
        )


def _rows_text(rows: list[int]) -> str:
    if len(rows) == 1:
        return f"row {rows[0]}"
    named = ", ".join(str(r) for r in rows[:_ROWS_NAMED])
    return f"rows {named}" + (f", ... ({len(rows)} rows)" if len(rows) > _ROWS_NAMED else "")


def _short(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def _explain(errors: list[dict[str, Any]], schema: _Schema) -> tuple[int, str, list[dict[str, Any]]]:
    """An HTTP status, one line naming every problem (column and rows), and the first errors."""
    general: list[str] = []
    # (column, problem) -> rows, so that one bad column in 1,000 rows is one phrase
    by_column: dict[tuple[str, str], list[int]] = {}
    first_value: dict[tuple[str, str], Any] = {}
    for error in errors:
        loc = tuple(error.get("loc", ()))[1:]  # drop "body"
        kind = error.get("type", "")
        if kind == "too_long":
            message = f"the batch is too large: at most {schema.max_rows} rows per request (automl serve --max-rows)"
            return 413, message, _detail(errors)
        place = _value_place(loc)
        if place is None:
            message = _describe(loc, error)
            if message not in general:
                general.append(message)
            continue
        row, column = place
        key = (column, "missing" if kind == "missing" else "type")
        rows = by_column.setdefault(key, [])
        if not rows or rows[-1] != row:  # a union type reports one error per member
            rows.append(row)
        first_value.setdefault(key, error.get("input"))
    messages = general + [
        f"column {column!r} is missing in {_rows_text(rows)}" if problem == "missing" else
        f"column {column!r} in {_rows_text(rows)}: expected {schema.expected.get(column, 'another value')}, "
        f"got {_short(first_value[(column, problem)])}"
        for (column, problem), rows in by_column.items()
    ]
    return 422, "; ".join(messages) or "the request is not valid", _detail(errors)


def _value_place(loc: tuple) -> tuple[int, str] | None:
    """(row, column) when ``loc`` points into one row's value, else None."""
    if len(loc) >= 3 and loc[0] == "records" and isinstance(loc[1], int):
        return loc[1], str(loc[2])
    if len(loc) >= 3 and loc[0] == "columns" and isinstance(loc[2], int):
        return loc[2], str(loc[1])
    return None


def _describe(loc: tuple, error: dict[str, Any]) -> str:
    """A problem with the request's shape rather than with one value."""
    kind = error.get("type", "")
    if kind == "json_invalid":
        where = f" at character {loc[0]}" if loc else ""
        return f"the request body is not valid JSON: {error.get('ctx', {}).get('error', 'decode error')}{where}"
    if not loc:
        if kind == "missing":
            return f"the request has no body; {_SHAPES}"
        if kind == "value_error":
            return error["msg"].removeprefix("Value error, ")
        return f"the request body must be a JSON object sent with Content-Type: application/json; {_SHAPES}"
    head = loc[0]
    if kind == "extra_forbidden" and len(loc) == 1:
        return f"unknown key {head!r} in the request body; {_SHAPES}"
    if head == "records" and len(loc) == 1:
        if kind == "too_short":
            return "the batch is empty: 'records' holds no rows; send at least one"
        return "'records' must be a list of objects, one per row: {column: value, ...}"
    if head == "records":
        return f"row {loc[1]}: a record must be an object of column: value pairs"
    if head == "columns" and len(loc) == 1:
        return "'columns' must be an object that maps each column name to a list of values"
    if head == "columns":
        column = loc[1]
        if kind == "missing":
            return f"column {column!r} is missing"
        if kind == "too_short":
            return f"the batch is empty: column {column!r} holds no values; send at least one row"
        return f"column {column!r} must be a list of values, one per row"
    return f"{'.'.join(map(str, loc))}: {error.get('msg', kind)}"


def _detail(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    detail = []
    for error in errors[:_MAX_DETAIL]:
        entry = {"loc": list(error.get("loc", ())), "msg": error.get("msg", ""), "type": error.get("type", "")}
        value = error.get("input")
        if value is None or isinstance(value, (str, int, float, bool)):  # never echo a whole batch
            entry["input"] = value if not isinstance(value, str) or len(value) <= 100 else value[:100] + "..."
        detail.append(entry)
    return detail


def _error(status: int, message: str, detail: list[dict[str, Any]] | None = None) -> JSONResponse:
    return JSONResponse({"error": message, "detail": detail}, status_code=status)


def _json_values(values: np.ndarray) -> list[Any]:
    """Python values for JSON: numpy scalars unwrapped, NaN and inf as null."""
    values = np.asarray(values)
    if values.dtype.kind == "f":
        out = values.astype(object)
        out[~np.isfinite(values)] = None
        return out.tolist()
    return values.tolist()


def _finite(value: Any) -> Any:
    """``value`` with NaN and inf floats replaced by None, at any depth (the manifest may hold NaN)."""
    if isinstance(value, float):
        return value if np.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def _model_info(result: Result, max_rows: int) -> dict[str, Any]:
    manifest = result.manifest
    columns = [
        {"name": c["name"], "dtype": c["dtype"], "kind": c["kind"], "note": c.get("note", ""),
         "required": c["kind"] != "dropped"}
        for c in manifest["columns"]
    ]
    return _finite({
        "model": result.model_name, "task": result.task, "metric": result.metric,
        "cv_score": result.score, "cv_std": manifest.get("cv_std"), "test_score": result.test_score,
        "target": manifest.get("target"), "classes": manifest.get("classes"), "params": result.params,
        "columns": columns, "n_rows": manifest.get("n_rows"), "created": manifest.get("created"),
        "versions": manifest.get("versions", {}), "max_rows": max_rows,
    })


def _response_model(task: str) -> type[BaseModel]:
    if task == "regression":
        return create_model("Prediction", predictions=(list[float | None], ...), warnings=(list[str], []))
    label = str | int | float | bool
    return create_model(
        "Prediction",
        predictions=(list[label], Field(..., description="the predicted class of each row")),
        classes=(list[label], Field(..., description="the classes, in the order of each probability row")),
        probabilities=(
            list[list[float | None]], Field(..., description="one row of class probabilities per input row"),
        ),
        warnings=(list[str], Field([], description="what was ignored (columns the model was not trained with)")),
    )


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
    schema = _Schema(result.manifest["columns"], max_rows)
    info = _model_info(result, max_rows)
    PredictRequest = schema.request_model
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

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        status, message, detail = _explain(list(exc.errors()), schema)
        return _error(status, message, detail)

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, exc: HTTPException) -> JSONResponse:
        body = {"error": str(exc.detail), "detail": None}
        return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        return _error(500, f"internal error: {type(exc).__name__}: {exc}")

    responses = {
        200: {"model": _response_model(result.task)},
        **{status: {"model": ErrorResponse} for status in (413, 422, 500)},
    }

    @app.post("/predict", summary="Predict a batch of rows", responses=responses)
    def predict(body: PredictRequest) -> JSONResponse:  # a plain def: FastAPI runs it in its threadpool
        frame = None
        try:
            frame, notes = schema.to_frame(body)
            if result.task == "regression":
                answer: dict[str, Any] = {"predictions": _json_values(result.predict(frame))}
            else:
                # one pass through the pipeline: the prediction is the most probable class
                probabilities = result.predict_proba(frame)
                answer = {
                    "predictions": _json_values(result.classes_[np.argmax(probabilities, axis=1)]),
                    "classes": _json_values(result.classes_),
                    "probabilities": _json_values(probabilities),
                }
        except InputError as exc:
            return _error(422, str(exc))
        except Exception as exc:
            logger.exception("prediction failed on %s row(s)", "?" if frame is None else len(frame))
            return _error(500, f"prediction failed: {type(exc).__name__}: {exc}")
        answer["warnings"] = notes
        return JSONResponse(answer)

    @app.get("/health", summary="Is the service up")
    async def health() -> dict[str, str]:
        return {"status": "ok", "model": result.model_name, "task": result.task}

    @app.get("/model", summary="The model being served and its input columns", response_model=ModelInfo)
    async def model() -> dict[str, Any]:
        return info

    logger.info("loaded %s (%s, %s %.4f) from %s", result.model_name, result.task, result.metric, result.score, where)
    return app


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
