"""Kept so that runs saved by automl 0.1.0 load: their pickles name ``automl._ensemble``.

New code imports from ``automl.store.ensemble``.
"""

from .store.ensemble import WeightedEnsembleClassifier, WeightedEnsembleRegressor

__all__ = ["WeightedEnsembleClassifier", "WeightedEnsembleRegressor"]
