"""The report's building blocks: escaped text, numbers as the page shows them, HTML tables, and
the stylesheet (``report.css``, package data, inlined into the page so that it fetches nothing)."""

from __future__ import annotations

import functools
import html
import importlib.metadata
import importlib.resources
import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

STYLESHEET = "report.css"


@functools.cache
def stylesheet() -> str:
    """The report's CSS; read through importlib.resources so that it is found in a wheel or zip too."""
    return importlib.resources.files(__package__).joinpath(STYLESHEET).read_text(encoding="utf-8")


def escape(value: Any) -> str:
    return html.escape(str(value), quote=True)


def number(value: Any, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    value = float(value)
    if value != 0 and abs(value) < 0.5 * 10**-digits:
        return f"{value:.{digits - 1}e}"  # not a misleading -0.0000
    return f"{value:.{digits}f}"


def share(value: Any) -> str:
    return f"{float(value):.0%}" if value is not None else "–"


def difference(here: float, there: float | None) -> str:
    if there is None:
        return "–"
    text = f"{here - there:+.4f}"
    return "0.0000" if text in ("+0.0000", "-0.0000") else text


def json_text(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return "None" if value is None else str(value)


def table(header: Sequence[str], rows: Iterable[Sequence[Any]], numeric: Iterable[int] = (), classes: Sequence[str] = ()) -> str:
    """An HTML table; cells are escaped; columns numbered in ``numeric`` are right-aligned."""
    numeric = set(numeric)

    def cell(tag: str, i: int, value: Any) -> str:
        css = ' class="num"' if i in numeric else ""
        return f"<{tag}{css}>{escape(value)}</{tag}>"

    head = "".join(cell("th", i, h) for i, h in enumerate(header))
    body = []
    for n, row in enumerate(rows):
        css = f' class="{escape(classes[n])}"' if n < len(classes) and classes[n] else ""
        body.append(f"<tr{css}>" + "".join(cell("td", i, v) for i, v in enumerate(row)) + "</tr>")
    return f'<div class="table"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'


def pairs(rows: Iterable[tuple[str, Any]]) -> str:
    """A two-column table of names and values."""
    body = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in rows)
    return f'<div class="table"><table class="pairs"><tbody>{body}</tbody></table></div>'


def png_size(png: bytes) -> tuple[int, int]:
    """(width, height) from the PNG header, without decoding the image."""
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")


def installed_version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def version_now(dist: str) -> str:
    """The version this process runs, named as the manifest names it ("python" is the interpreter)."""
    if dist == "python":
        import platform

        return platform.python_version()
    return installed_version(dist)
