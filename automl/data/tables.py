"""Reading table files (CSV, Parquet, gzip'd or not): whole, or a chunk at a time."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path
import pandas as pd
from .._exceptions import InputError

__all__ = ["read_table", "iter_table_chunks", "table_format", "DEFAULT_CHUNK_ROWS"]

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
