"""How the run's data reaches its worker processes without a copy per worker.

Small tables travel pickled through each worker's pipe. A large table is written once to a
temporary file and every worker maps its numeric arrays from it (``joblib.load(mmap_mode="r")``):
the operating system keeps one copy in its page cache however many workers read it, and a
replaced worker starts without the data being sent again. Float columns of a large table are
stored as float32 when no value changes by more than float32's rounding (the tree models
convert to float32 anyway), halving the memory they take.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any

import cloudpickle
import numpy as np
import pandas as pd

__all__ = ["SharedData", "compact_floats", "load_payload", "MAPPED_BYTES"]

logger = logging.getLogger(__name__)

#: Tables whose arrays take more than this many bytes are mapped from a file, not sent.
MAPPED_BYTES = 64 * 2**20
#: The largest magnitude stored as float32 (its maximum is about 3.4e38).
FLOAT32_LIMIT = 1e37


def compact_floats(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with float64 columns as float32 where that is safe: finite values within
    float32's range, and whole numbers (ids, counts) exactly representable."""
    changes = {}
    for name in table.columns:
        column = table[name]
        if column.dtype != np.float64:
            continue
        values = column.to_numpy()
        finite = values[np.isfinite(values)]
        if finite.size and np.abs(finite).max() > FLOAT32_LIMIT:
            continue
        narrow = values.astype(np.float32)
        whole = finite == np.round(finite)
        if whole.any() and not np.array_equal(finite[whole], narrow[np.isfinite(values)][whole].astype(np.float64)):
            continue
        changes[name] = narrow
    return table.assign(**changes) if changes else table


class SharedData:
    """The run's data for its workers: ``payload`` (bytes) is what each worker is sent.

    Use as a context manager: the temporary file of a mapped table is removed on exit.
    """

    def __init__(self, arrays: dict[str, Any], extras: dict[str, Any]):
        self._directory: Path | None = None
        table = arrays["X"]
        size = int(table.memory_usage(index=False, deep=False).sum()) if isinstance(table, pd.DataFrame) else 0
        if size <= MAPPED_BYTES:
            self.payload = cloudpickle.dumps({**arrays, **extras})
            return
        import joblib

        arrays = {**arrays, "X": compact_floats(table)}
        self._directory = Path(tempfile.mkdtemp(prefix="automl-data-"))
        path = self._directory / "data.joblib"
        joblib.dump(arrays, path)
        logger.info("the table (%.0f MB) is mapped by the workers from %s", size / 2**20, path)
        self.payload = cloudpickle.dumps({"mapped": str(path), **extras})

    def close(self) -> None:
        if self._directory is not None:
            shutil.rmtree(self._directory, ignore_errors=True)
            self._directory = None

    def __enter__(self) -> SharedData:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def load_payload(payload: bytes) -> dict[str, Any]:
    """In a worker: the data of ``payload``, its large arrays mapped from the shared file."""
    data = cloudpickle.loads(payload)
    if "mapped" in data:
        import joblib

        data = {**joblib.load(data.pop("mapped"), mmap_mode="r"), **data}
    return data
