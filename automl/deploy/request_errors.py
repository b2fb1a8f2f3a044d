"""Why a request failed validation, in words: pydantic's errors turned into an HTTP status and one
line that names every problem by column and rows (one bad column in 1,000 rows is one phrase),
plus the first errors as ``"detail"``."""

from typing import Any

from .request_schema import SHAPES, RequestSchema, rows_text, short

__all__ = ["explain_errors"]

#: Error entries returned in "detail"; the one-line "error" covers all of them.
MAX_DETAIL = 20


def explain_errors(errors: list[dict[str, Any]], schema: RequestSchema) -> tuple[int, str, list[dict[str, Any]]]:
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
        f"column {column!r} is missing in {rows_text(rows)}" if problem == "missing" else
        f"column {column!r} in {rows_text(rows)}: expected {schema.expected.get(column, 'another value')}, "
        f"got {short(first_value[(column, problem)])}"
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
            return f"the request has no body; {SHAPES}"
        if kind == "value_error":
            return error["msg"].removeprefix("Value error, ")
        return f"the request body must be a JSON object sent with Content-Type: application/json; {SHAPES}"
    head = loc[0]
    if kind == "extra_forbidden" and len(loc) == 1:
        return f"unknown key {head!r} in the request body; {SHAPES}"
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
    for error in errors[:MAX_DETAIL]:
        entry = {"loc": list(error.get("loc", ())), "msg": error.get("msg", ""), "type": error.get("type", "")}
        value = error.get("input")
        if value is None or isinstance(value, (str, int, float, bool)):  # never echo a whole batch
            entry["input"] = value if not isinstance(value, str) or len(value) <= 100 else value[:100] + "..."
        detail.append(entry)
    return detail
