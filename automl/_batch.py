"""Tables from files, whole or in chunks, and batch scoring that streams.

``predict_file`` reads a CSV or Parquet file a chunk of rows at a time and writes each chunk's
predictions before reading the next, so memory stays flat whatever the file's size. The
output file appears only once every row is scored: a failure leaves no partial file behind.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import numpy as np
import pandas as pd

from ._exceptions import InputError
from ._persist import atomic_file

__all__ = ["DEFAULT_CHUNK_ROWS", "table_format", "read_table", "iter_table_chunks", "predict_file"]

logger = logging.getLogger(__name__)

#: Rows scored at a time: large enough that per-chunk overhead is negligible, small enough
#: that a chunk of a wide table stays in the tens of megabytes.
DEFAULT_CHUNK_ROWS = 50_000


def table_format(path: str | os.PathLike) -> str:
    """``"csv"`` or ``"parquet"`` by the file's suffixes (``.csv``, ``.csv.gz``, ``.txt``, ``.parquet``, ``.pq``)."""
    file = Path(path)
    suffixes = [s.lower() for s in file.suffixes]
    if ".parquet" in suffixes or ".pq" in suffixes:
        return "parquet"
    if ".csv" in suffixes or ".txt" in suffixes or not suffixes:
        return "csv"
    raise InputError(f"{path}: unsupported file type {''.join(file.suffixes)!r}; use .csv (optionally .gz) or .parquet")


def _existing(path: str | os.PathLike) -> Path:
    file = Path(path)
    if not file.is_file():
        raise InputError(f"data file {path} does not exist")
    return file


@contextlib.contextmanager
def _reading(path):
    try:
        yield
    except ImportError:
        raise InputError("reading Parquet needs pyarrow: pip install 'automl-select[parquet]'") from None
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        # pandas' EmptyDataError and ParserError are ValueErrors; so are pyarrow's errors
        raise InputError(f"cannot read {path} as a table: {type(exc).__name__}: {exc}") from None


def read_table(path: str | os.PathLike) -> pd.DataFrame:
    """The whole of a CSV or Parquet file as a DataFrame."""
    file, kind = _existing(path), table_format(path)
    with _reading(path):
        return pd.read_parquet(file) if kind == "parquet" else pd.read_csv(file)


def iter_table_chunks(path: str | os.PathLike, chunk_rows: int = DEFAULT_CHUNK_ROWS) -> Iterator[pd.DataFrame]:
    """A CSV or Parquet file as DataFrames of at most ``chunk_rows`` rows, in file order."""
    if chunk_rows < 1:
        raise InputError(f"chunk_rows must be at least 1, got {chunk_rows}")
    file, kind = _existing(path), table_format(path)
    with _reading(path):
        if kind == "parquet":
            import pyarrow.parquet as pq

            with pq.ParquetFile(file) as parquet:
                for batch in parquet.iter_batches(batch_size=chunk_rows):
                    yield batch.to_pandas()
        else:
            with pd.read_csv(file, chunksize=chunk_rows) as reader:
                yield from reader


def predict_file(
    result,
    path: str | os.PathLike,
    output: str | os.PathLike | IO[str] | None = None,
    *,
    proba: bool = False,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    on_chunk: Callable[[int], None] | None = None,
) -> int:
    """Score every row of a CSV or Parquet file with ``result``'s model, a chunk at a time.

    :param result: an :class:`automl.Result` (e.g. from :func:`automl.load`).
    :param output: a ``.csv`` or ``.parquet`` path (written atomically), an open text stream,
        or None for standard output. Columns: ``prediction``, plus ``proba_<class>`` per class
        with ``proba=True``.
    :param on_chunk: called with the number of rows scored so far, after each chunk.
    :return: the number of rows scored.
    :raises InputError: for an unreadable file or rows the model cannot take; the error names
        the rows of the chunk, and no output file is left behind.
    """
    target = result.manifest.get("target")
    if proba and result.task == "regression":
        raise InputError("--proba is for classification; this run is a regression")
    if isinstance(output, (str, os.PathLike)):
        out_path = Path(output)
        kind = table_format(out_path)
        if not out_path.parent.is_dir():
            raise InputError(f"cannot write {out_path}: the folder {out_path.parent} does not exist")
        with atomic_file(out_path) as tmp:
            with _writer(kind, tmp) as write:
                return _score_chunks(result, path, target, proba, chunk_rows, write, on_chunk)
    stream = output if output is not None else sys.stdout
    with _writer("csv", stream) as write:
        return _score_chunks(result, path, target, proba, chunk_rows, write, on_chunk)


def _score_chunks(result, path, target, proba, chunk_rows, write, on_chunk) -> int:
    done = 0
    for chunk in iter_table_chunks(path, chunk_rows):
        if chunk.empty:  # a file with a header and no rows still yields one empty chunk
            continue
        if target and target in chunk.columns:
            chunk = chunk.drop(columns=[target])
        try:
            write(_predictions(result, chunk, proba))
        except InputError as exc:
            raise InputError(f"rows {done + 1}-{done + len(chunk)} of {path}: {exc}") from None
        done += len(chunk)
        if on_chunk is not None:
            on_chunk(done)
    if done == 0:
        raise InputError(f"{path} has no rows to predict")
    return done


def _predictions(result, chunk: pd.DataFrame, proba: bool) -> pd.DataFrame:
    if not proba:
        return pd.DataFrame({"prediction": result.predict(chunk)})
    probabilities = result.predict_proba(chunk)
    classes = result.classes_
    out = pd.DataFrame(probabilities, columns=[f"proba_{c}" for c in classes])
    out.insert(0, "prediction", classes[np.argmax(probabilities, axis=1)])
    return out


@contextlib.contextmanager
def _writer(kind: str, destination):
    """A function that appends a frame to ``destination`` (a path or a text stream)."""
    if kind == "csv":
        own = isinstance(destination, (str, os.PathLike))
        stream = open(destination, "w", newline="") if own else destination
        header = [True]

        def write(frame: pd.DataFrame) -> None:
            frame.to_csv(stream, index=False, header=header[0])
            header[0] = False

        try:
            yield write
        finally:
            if own:
                stream.close()
        return
    import pyarrow as pa
    import pyarrow.parquet as pq

    writer = None

    def write(frame: pd.DataFrame) -> None:
        nonlocal writer
        table = pa.Table.from_pandas(frame, preserve_index=False)
        if writer is None:
            writer = pq.ParquetWriter(destination, table.schema)
        writer.write_table(table.cast(writer.schema))

    try:
        yield write
    finally:
        if writer is not None:
            writer.close()
