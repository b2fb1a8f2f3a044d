"""Kept so that runs saved by automl 0.1.0 load: their pickles name ``automl._preprocess``.

New code imports from ``automl.data.preprocess``.
"""

from .data.preprocess import TablePreprocessor

__all__ = ["TablePreprocessor"]
