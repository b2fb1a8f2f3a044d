"""A Keras 3 multilayer perceptron (TensorFlow backend) as a scikit-learn estimator, for every task.

TensorFlow is imported when a network is first built or loaded, never at plugin import, so
``import automl`` and ``automl models`` stay fast.
"""

from __future__ import annotations

import math
import os
import time

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.preprocessing import LabelEncoder
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

import automl

#: Below this many rows there is no early-stopping split: every row is used for training.
MIN_ROWS_FOR_VALIDATION = 30
#: Rows of one compiled training call: the time limit is checked between them (within an epoch).
EPOCH_SLICE_ROWS = 65_536
_PREDICT_CHUNK = 8192


def _keras():
    """Import Keras on the TensorFlow backend, quietly, with deterministic ops."""
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import tensorflow as tf

    if keras.backend.backend() != "tensorflow":
        raise RuntimeError(
            f"keras_mlp needs Keras on the TensorFlow backend, but Keras runs on "
            f"{keras.backend.backend()!r} (KERAS_BACKEND); unset KERAS_BACKEND or set it to 'tensorflow'"
        )

    if not getattr(_keras, "_configured", False):
        # same seed, same weights and same training: reproducible runs are a promise of ours
        tf.config.experimental.enable_op_determinism()
        _keras._configured = True
    return keras


class _KerasMLP(BaseEstimator):
    """Shared implementation of :class:`KerasMLPClassifier` and :class:`KerasMLPRegressor`.

    :param hidden_layers: number of hidden Dense layers.
    :param units: width of each hidden layer.
    :param dropout: dropout rate after each hidden layer.
    :param learning_rate: Adam's learning rate.
    :param batch_size: rows per gradient step (capped at the number of rows).
    :param max_epochs: epochs at most; early stopping usually ends training sooner.
    :param patience: epochs without improvement of the validation loss before stopping.
    :param validation_fraction: share of rows held out for early stopping.
    :param max_seconds: stop training after the epoch that passes this many seconds (None: no limit).
    :param random_state: seed for the weights, the validation split and the batches.

    Training is a plain mini-batch loop (Adam) with early stopping on the validation loss;
    the weights of the best epoch are kept. TensorFlow is imported on the first ``fit`` or
    unpickling, with deterministic ops enabled so that a seed gives the same network.
    """

    def __init__(
        self,
        hidden_layers: int = 2,
        units: int = 64,
        dropout: float = 0.1,
        learning_rate: float = 1e-3,
        batch_size: int = 64,
        max_epochs: int = 100,
        patience: int = 8,
        validation_fraction: float = 0.1,
        max_seconds: float | None = None,
        random_state: int | None = None,
    ):
        self.hidden_layers = hidden_layers
        self.units = units
        self.dropout = dropout
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.max_seconds = max_seconds
        self.random_state = random_state

    def _train(self, X: np.ndarray, target: np.ndarray, n_outputs: int, loss: str, activation: str):
        keras = _keras()
        import tensorflow as tf

        seed = 0 if self.random_state is None else int(self.random_state)
        keras.utils.set_random_seed(seed)
        model = keras.Sequential([keras.Input(shape=(X.shape[1],))])
        for _ in range(int(self.hidden_layers)):
            model.add(keras.layers.Dense(int(self.units), activation="relu"))
            if self.dropout > 0:
                model.add(keras.layers.Dropout(float(self.dropout), seed=seed))
        model.add(keras.layers.Dense(n_outputs, activation=activation))
        optimizer = keras.optimizers.Adam(learning_rate=float(self.learning_rate))
        optimizer.build(model.trainable_variables)
        loss_fn = keras.losses.get(loss)
        batch = int(max(1, min(self.batch_size, len(X))))

        # One compiled function per epoch (a loop over batches inside the graph): Keras'
        # own fit() spends ~10 ms per epoch on iterator set-up, ten times the work on small tables.
        @tf.function(reduce_retracing=True)
        def train_epoch(X_epoch, y_epoch):
            n_batches = (tf.shape(X_epoch)[0] + batch - 1) // batch
            total = tf.constant(0.0)
            for i in tf.range(n_batches):
                xb, yb = X_epoch[i * batch : (i + 1) * batch], y_epoch[i * batch : (i + 1) * batch]
                with tf.GradientTape() as tape:
                    batch_loss = tf.reduce_mean(loss_fn(yb, model(xb, training=True)))
                grads = tape.gradient(batch_loss, model.trainable_variables)
                optimizer.apply_gradients(zip(grads, model.trainable_variables))
                total += batch_loss
            return total / tf.cast(n_batches, tf.float32)

        @tf.function(reduce_retracing=True)
        def evaluate(X_valid, y_valid):
            return tf.reduce_mean(loss_fn(y_valid, model(X_valid, training=False)))

        rng = np.random.default_rng(seed)
        valid = None
        n_valid = int(round(len(X) * self.validation_fraction))
        if len(X) >= MIN_ROWS_FOR_VALIDATION and n_valid >= 1:
            order = rng.permutation(len(X))
            valid = (X[order[:n_valid]], target[order[:n_valid]])
            X, target = X[order[n_valid:]], target[order[n_valid:]]

        deadline = time.monotonic() + self.max_seconds if self.max_seconds else math.inf
        best_loss, best_weights, since_best = math.inf, None, 0
        epochs = 0
        for _ in range(int(self.max_epochs)):
            order = rng.permutation(len(X))
            # a large table's epoch runs in slices, so that the time limit is checked within it
            losses, rows = [], []
            for start in range(0, len(X), EPOCH_SLICE_ROWS):
                part = order[start : start + EPOCH_SLICE_ROWS]
                losses.append(float(train_epoch(X[part], target[part])))
                rows.append(len(part))
                if time.monotonic() > deadline:
                    break
            train_loss = float(np.average(losses, weights=rows))
            epochs += 1
            if not math.isfinite(train_loss):
                break  # diverged: keep the best weights seen so far
            if valid is not None:
                valid_loss = float(evaluate(*valid))
                if valid_loss < best_loss:
                    best_loss, best_weights, since_best = valid_loss, model.get_weights(), 0
                else:
                    since_best += 1
                    if since_best >= self.patience:
                        break
            if time.monotonic() > deadline:
                break
        if best_weights is not None:
            model.set_weights(best_weights)
        self.model_ = model
        self.n_epochs_ = epochs
        self.best_validation_loss_ = best_loss if valid is not None else None

    def _forward(self, X) -> np.ndarray:
        check_is_fitted(self, "model_")
        X = validate_data(self, X, reset=False, dtype=np.float32)
        keras = _keras()
        chunks = [
            keras.ops.convert_to_numpy(self.model_(X[i : i + _PREDICT_CHUNK], training=False))
            for i in range(0, len(X), _PREDICT_CHUNK)
        ]
        return np.concatenate(chunks).astype(np.float64)


class KerasMLPClassifier(ClassifierMixin, _KerasMLP):
    """A multilayer perceptron classifier (softmax output, cross-entropy loss) built with Keras 3."""

    def fit(self, X, y):
        X, y = validate_data(self, X, y, dtype=np.float32)
        check_classification_targets(y)
        encoder = LabelEncoder().fit(y)
        self.classes_ = encoder.classes_
        if len(self.classes_) < 2:
            raise ValueError("KerasMLPClassifier needs at least 2 classes; y has 1 class")
        self._train(X, encoder.transform(y), len(self.classes_), "sparse_categorical_crossentropy", "softmax")
        return self

    def predict_proba(self, X) -> np.ndarray:
        proba = np.clip(self._forward(X), 0.0, None)
        return proba / proba.sum(axis=1, keepdims=True)

    def predict(self, X) -> np.ndarray:
        check_is_fitted(self, "model_")
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


class KerasMLPRegressor(RegressorMixin, _KerasMLP):
    """A multilayer perceptron regressor (linear output, squared loss on a standardized target)."""

    def fit(self, X, y):
        X, y = validate_data(self, X, y, dtype=np.float32, y_numeric=True)
        y = np.asarray(y, dtype=np.float64)
        # standardizing the target keeps the loss scale and a good learning rate data-independent
        self.y_mean_ = float(np.mean(y))
        self.y_scale_ = float(np.std(y)) or 1.0
        target = ((y - self.y_mean_) / self.y_scale_).astype(np.float32).reshape(-1, 1)
        self._train(X, target, 1, "mean_squared_error", "linear")
        return self

    def predict(self, X) -> np.ndarray:
        return self._forward(X)[:, 0] * self.y_scale_ + self.y_mean_


def _search_space(trial, context):
    return {
        "hidden_layers": trial.suggest_int("hidden_layers", 1, 3),
        "units": trial.suggest_int("units", 16, 256, log=True),
        "dropout": trial.suggest_float("dropout", 0.0, 0.5),
        "learning_rate": trial.suggest_float("learning_rate", 1e-4, 1e-2, log=True),
        "batch_size": trial.suggest_categorical("batch_size", [32, 64, 128, 256]),
        "max_epochs": trial.suggest_int("max_epochs", 10, 200, log=True),
    }


def _build(params, context):
    cls = KerasMLPRegressor if context.task == "regression" else KerasMLPClassifier
    return cls(**params, max_seconds=context.time_limit, random_state=context.seed)


@automl.hookimpl
def automl_models():
    return [
        automl.ModelSpec(
            name="keras_mlp",
            tasks={"binary", "multiclass", "regression"},
            search_space=_search_space,
            build=_build,
            default_params={
                "hidden_layers": 2, "units": 64, "dropout": 0.1,
                "learning_rate": 1e-3, "batch_size": 64, "max_epochs": 100,
            },
            preprocessing="onehot",
            cost=20.0,
            description="multilayer perceptron with early stopping (Keras 3, TensorFlow backend)",
        )
    ]
