"""The request side of ``automl serve``: the run's input columns as pydantic request models
(built with ``create_model`` from ``manifest["columns"]``, so the OpenAPI description names the
real columns), and the way from a validated request back to a table with the training columns."""

import collections
import json
from typing import Annotated, Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, create_model, model_validator

from .._exceptions import InputError

__all__ = ["SHAPES", "RequestSchema", "rows_text", "short"]

SHAPES = 'send {"records": [{column: value, ...}, ...]} or {"columns": {column: [values], ...}}'
#: Rows named in one message before the rest are counted.
ROWS_NAMED = 5


class _OneForm(BaseModel):
    """Base of the request model: exactly one of ``records`` and ``columns``."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="after")
    def _exactly_one_form(self):
        if (self.records is None) == (self.columns is None):
            both = self.records is not None
            raise ValueError(f'the body holds {"both" if both else "neither"} "records" {"and" if both else "nor"} '
                             f'"columns"; {SHAPES}')
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


class RequestSchema:
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

    def n_rows(self, body: BaseModel) -> int:
        """The rows a validated request holds (its longest column, for the columns form)."""
        if body.records is not None:
            return len(body.records)
        return max((len(v) for f in self.fields if (v := getattr(body.columns, f)) is not None), default=0)

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
            f"column {name!r} in {rows_text(bad.tolist())}: expected {expected}, got {short(values.iloc[bad[0]])}"
        )


def rows_text(rows: list[int]) -> str:
    """"row 3", or "rows 1, 2, 3, 4, 5, ... (12 rows)": the first few named, the rest counted."""
    if len(rows) == 1:
        return f"row {rows[0]}"
    named = ", ".join(str(r) for r in rows[:ROWS_NAMED])
    return f"rows {named}" + (f", ... ({len(rows)} rows)" if len(rows) > ROWS_NAMED else "")


def short(value: Any) -> str:
    """A value as JSON text, cut to 60 characters, for an error message."""
    text = json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."
