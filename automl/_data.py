"""Kept so that runs saved by automl 0.1.0 load: their pickles name ``automl._data``.

New code imports from ``automl.data.schema``.
"""

from .data.schema import Column

__all__ = ["Column"]
