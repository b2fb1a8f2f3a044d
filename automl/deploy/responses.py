"""The response side of ``automl serve``: the shapes of its answers (for the OpenAPI description),
what ``GET /model`` says about the run, and values made fit for JSON."""

from typing import Any

import numpy as np
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, create_model

from ..store.result import Result

__all__ = ["ColumnInfo", "ErrorResponse", "ModelInfo", "error_response", "json_values", "model_info", "prediction_model"]


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


def error_response(status: int, message: str, detail: list[dict[str, Any]] | None = None) -> JSONResponse:
    """The one shape of every error: ``{"error": ..., "detail": ...}``."""
    return JSONResponse({"error": message, "detail": detail}, status_code=status)


def json_values(values: np.ndarray) -> list[Any]:
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


def model_info(result: Result, max_rows: int) -> dict[str, Any]:
    """What ``GET /model`` answers (a :class:`ModelInfo`), from the run's manifest."""
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


def prediction_model(task: str) -> type[BaseModel]:
    """The shape of a ``POST /predict`` answer for ``task``, for the OpenAPI description."""
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
