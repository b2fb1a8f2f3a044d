"""A Keras 3 multilayer perceptron (TensorFlow backend) as a scikit-learn estimator, for every task.

TensorFlow is imported to train, never at plugin import, so ``import automl`` and ``automl
models`` stay fast. A trained network predicts through its light form: the Dense layers'
weights as NumPy arrays and a NumPy forward pass, the same outputs as Keras' to float32
round-off. A pickled estimator holds that form and the network's ``.keras`` archive (for
retraining and inspection, through ``model_``), so loading and predicting a saved model never
imports TensorFlow.
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from pathlib import Path

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
    the weights of the best epoch are kept. TensorFlow is imported by ``fit`` (with deterministic
    ops enabled, so that a seed gives the same network) and by ``model_`` after unpickling;
    ``predict`` and ``predict_proba`` run the NumPy light form, ``layers_``.
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
        self._network, self._archive = model, None
        self.layers_ = _dense_weights(model)
        self.n_epochs_ = epochs
        self.best_validation_loss_ = best_loss if valid is not None else None

    @property
    def model_(self):
        """The trained Keras network; rebuilt from its ``.keras`` archive (importing TensorFlow)
        after unpickling. Predictions do not use it: they run the light form, ``layers_``."""
        check_is_fitted(self, "layers_")
        if getattr(self, "_network", None) is None:
            self._network = _from_archive(self._archive)
        return self._network

    def _forward(self, X) -> np.ndarray:
        """The network's output layer before its activation, as float32 (a NumPy forward pass)."""
        check_is_fitted(self, "layers_")
        X = validate_data(self, X, reset=False, dtype=np.float32)
        return np.concatenate([_logits(self.layers_, X[i : i + _PREDICT_CHUNK]) for i in range(0, len(X), _PREDICT_CHUNK)])

    def __getstate__(self):
        state = super().__getstate__()
        network = state.pop("_network", None)
        if "layers_" in state and state.get("_archive") is None and network is not None:
            self._archive = state["_archive"] = _to_archive(network)  # once: a second pickle reuses it
        return state

    def __setstate__(self, state):
        if "model_" in state:  # pickled by 0.1.0: a live network (unpickling it imported TensorFlow)
            network = state.pop("model_")
            state.update(_network=network, _archive=None, layers_=_dense_weights(network))
        super().__setstate__(state)


def _dense_weights(network) -> list[tuple[np.ndarray, np.ndarray]]:
    """The (kernel, bias) of each Dense layer, in order; Dropout does nothing at prediction."""
    layers = [layer for layer in network.layers if layer.__class__.__name__ == "Dense"]
    return [tuple(np.asarray(w, dtype=np.float32) for w in layer.get_weights()) for layer in layers]


def _logits(layers: list[tuple[np.ndarray, np.ndarray]], X: np.ndarray) -> np.ndarray:
    """ReLU hidden layers, then the output layer's pre-activation values."""
    hidden = X
    for kernel, bias in layers[:-1]:
        hidden = np.maximum(hidden @ kernel + bias, 0.0)
    kernel, bias = layers[-1]
    return hidden @ kernel + bias


def _to_archive(network) -> bytes:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "network.keras"
        network.save(path)
        return path.read_bytes()


def _from_archive(archive: bytes | None):
    if archive is None:
        raise AttributeError("this network's .keras archive was not kept; it can no longer be rebuilt")
    keras = _keras()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "network.keras"
        path.write_bytes(archive)
        return keras.saving.load_model(path, compile=False)


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
        logits = self._forward(X).astype(np.float64)
        proba = np.exp(logits - logits.max(axis=1, keepdims=True))  # the output layer's softmax
        return proba / proba.sum(axis=1, keepdims=True)

    def predict(self, X) -> np.ndarray:
        check_is_fitted(self, "layers_")
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
        return self._forward(X)[:, 0].astype(np.float64) * self.y_scale_ + self.y_mean_


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
