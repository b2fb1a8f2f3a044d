"""How a fitted model becomes the bytes of ``model.joblib``: a joblib pickle, compressed.

A forest's node arrays compress well, even in their compact form (``automl.plugins._compact_trees``).
The pickle is written plain (the refit's worker does that within the refit's time limit) and
compressed afterwards, as joblib's own compressed files are (the stream compressed whole), so
``joblib.load`` reads the result as it reads any compressed joblib file:

- up to ``ZLIB_UP_TO`` bytes, zlib at level 3 (what joblib's ``compress=True`` means), the
  smaller of the two;
- above that, LZ4's fast mode, which keeps the time small on the largest models.

Measured on saved ensembles of forests and boosted trees (3,669 to 15,480 rows), before forests
were packed: 84 MB became 13.7 MB with zlib in 0.58 s, 21.4 MB with LZ4 in 0.13 s; loading took
0.30 and 0.16 s, against 0.12 s plain. Packed, 300 extra trees on 4,000 rows of
wine_quality_white pickle to 40.6 MB: zlib makes 5.5 MB of it in 0.33 s, LZ4 9.0 MB in 0.04 s.
Runs saved uncompressed by earlier versions load as before.
"""

from __future__ import annotations

import io
import zlib
from typing import Any

__all__ = ["ZLIB_UP_TO", "compress_model", "dump_model"]

#: Plain pickles up to this size are compressed with zlib (about 0.33 s at most), larger with LZ4.
ZLIB_UP_TO = 48_000_000


def compress_model(plain: bytes) -> bytes:
    """``plain`` (an uncompressed joblib pickle) compressed as joblib reads it back."""
    if len(plain) <= ZLIB_UP_TO:
        return zlib.compress(plain, 3)  # joblib's zlib files: one zlib stream, header included
    import lz4.frame

    return lz4.frame.compress(plain, compression_level=0)  # joblib's lz4 files: one LZ4 frame


def dump_model(model: Any) -> bytes:
    """``model`` as a saved run's ``model.joblib`` holds it."""
    import joblib

    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    return compress_model(buffer.getvalue())
