"""What a search returns, and what a saved run loads as: the refit winner, the leaderboard and every trial."""

from __future__ import annotations

from pathlib import Path
from typing import Any
import numpy as np
import pandas as pd

__all__ = ["Result"]

class Result:
    """The outcome of :func:`automl.fit_best`, or of :func:`automl.load` on a saved run.

    :ivar model: the winning pipeline (preprocessing + estimator), refit on all the data; loaded
        on first use, so TensorFlow is imported only when a Keras winner is used.
    :ivar model_name: the winning model's plugin name.
    :ivar params: the ``build`` arguments of the winning configuration.
    :ivar score: its mean cross-validated score (greater is better, as in scikit-learn).
    :ivar test_score: its score on the held-out split when ``test_size`` was set, else None.
    :ivar metric: the scikit-learn scorer name.
    :ivar task: ``"binary"``, ``"multiclass"`` or ``"regression"``.
    :ivar leaderboard: one row per model, best first.
    :ivar trials: one row per trial of every model.
    :ivar path: the run directory, or None when the run was not saved.
    :ivar manifest: the run's manifest (what ``manifest.json`` holds).
    """

    def __init__(
        self,
        *,
        model_name: str,
        params: dict[str, Any],
        score: float,
        metric: str,
        task: str,
        leaderboard: pd.DataFrame,
        trials: pd.DataFrame,
        path: Path | None,
        test_score: float | None = None,
        manifest: dict[str, Any] | None = None,
        model: Any = None,
        model_bytes: bytes | None = None,
    ):
        if (model is None) == (model_bytes is None):
            raise TypeError("Result needs exactly one of model and model_bytes")
        self._model = model
        self._model_bytes = model_bytes
        self.model_name = model_name
        self.params = params
        self.score = score
        self.test_score = test_score
        self.metric = metric
        self.task = task
        self.leaderboard = leaderboard
        self.trials = trials
        self.path = path
        self.manifest = manifest or {}

    @property
    def model(self) -> Any:
        """The fitted pipeline, unpickled on first use (a Keras model imports TensorFlow then)."""
        if self._model is None:
            import io
            import warnings

            import joblib

            with warnings.catch_warnings():
                # automl.load compares library versions itself, with both versions side by side
                warnings.filterwarnings("ignore", message=".*Trying to unpickle estimator.*")
                self._model = joblib.load(io.BytesIO(self._model_bytes))
        return self._model

    def model_bytes(self) -> bytes:
        """The fitted pipeline as joblib bytes (what ``model.joblib`` holds)."""
        if self._model_bytes is None:
            from .model_file import dump_model

            self._model_bytes = dump_model(self._model)
        return self._model_bytes

    @property
    def classes_(self) -> np.ndarray | None:
        return getattr(self.model, "classes_", None)

    def predict(self, X) -> np.ndarray:
        """Predictions of the winning model (class labels as given in training, or numbers).

        ``X``: a DataFrame (columns matched by name) or a 2-D array / list of rows in the
        training column order.
        """
        return self.model.predict(_prediction_input(X))

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities, columns ordered as ``classes_``; classification only."""
        from .._exceptions import InputError

        if self.task == "regression":
            raise InputError("predict_proba is for classification; this run is a regression")
        return self.model.predict_proba(_prediction_input(X))

    def __repr__(self) -> str:
        extra = f", test_score={self.test_score:.4f}" if self.test_score is not None else ""
        return (
            f"<Result {self.task} model={self.model_name!r} {self.metric}={self.score:.4f}{extra} "
            f"path={str(self.path) if self.path else None!r}>"
        )


def _prediction_input(X):
    from .._exceptions import InputError

    if isinstance(X, pd.Series):
        raise InputError("X is a pandas Series; pass a DataFrame with the training columns (e.g. X.to_frame().T for one row)")
    if not isinstance(X, pd.DataFrame):
        X = np.asarray(X, dtype=object) if not isinstance(X, np.ndarray) else X
        if X.ndim != 2:
            raise InputError(f"X must be 2-D (rows x columns); got shape {X.shape}. For one row use X.reshape(1, -1).")
    if len(X) == 0:
        raise InputError("X has no rows; pass at least one row to predict")
    return X
