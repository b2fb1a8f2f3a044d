"""Tables from files, whole or in chunks, and batch scoring that streams.

``predict_file`` reads a CSV or Parquet file a chunk of rows at a time and writes each chunk's
predictions before reading the next, so memory stays flat whatever the file's size. The
output file appears only once every row is scored: a failure leaves no partial file behind."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import IO
import numpy as np
import pandas as pd
from .._exceptions import InputError
from ..store.persist import atomic_file
from ..data.tables import DEFAULT_CHUNK_ROWS, iter_table_chunks, table_format

__all__ = ["predict_file"]

logger = logging.getLogger(__name__)

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
