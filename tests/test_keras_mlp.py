"""The Keras MLP wrapper is a real scikit-learn estimator."""

import io

import joblib
import numpy as np
from sklearn.datasets import load_diabetes, load_wine
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from automl.plugins.keras_mlp import KerasMLPClassifier, KerasMLPRegressor

# Small networks and few epochs keep the ~40 checks per estimator fast; they still train.
FAST = dict(max_epochs=30, units=32, random_state=0)

# Every check passes; the list stays here, empty, so a future exception is written down with
# its reason rather than silenced.
EXPECTED_FAILURES: dict[str, str] = {}


@parametrize_with_checks(
    [KerasMLPClassifier(**FAST), KerasMLPRegressor(**FAST)],
    expected_failed_checks=lambda estimator: EXPECTED_FAILURES,
)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def test_classifier_keeps_string_labels_and_learns():
    X, y = load_wine(return_X_y=True)
    labels = np.array(["barolo", "grignolino", "barbera"])[y]
    X_train, X_test, y_train, y_test = train_test_split(X, labels, random_state=0, stratify=labels)
    model = make_pipeline(StandardScaler(), KerasMLPClassifier(random_state=0)).fit(X_train, y_train)
    assert set(model.classes_) == set(labels)
    assert model.predict(X_test).dtype.kind in "OU"
    assert (model.predict(X_test) == y_test).mean() > 0.9
    proba = model.predict_proba(X_test)
    assert proba.shape == (len(X_test), 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)


def test_regressor_learns_and_round_trips_through_joblib():
    X, y = load_diabetes(return_X_y=True)
    model = make_pipeline(StandardScaler(), KerasMLPRegressor(random_state=0)).fit(X, y)
    assert model.score(X, y) > 0.4
    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    buffer.seek(0)
    restored = joblib.load(buffer)
    np.testing.assert_allclose(restored.predict(X), model.predict(X), rtol=1e-6)


def test_same_seed_same_network():
    X, y = load_diabetes(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    first = KerasMLPRegressor(**FAST).fit(X, y).predict(X)
    second = KerasMLPRegressor(**FAST).fit(X, y).predict(X)
    np.testing.assert_array_equal(first, second)


def test_max_seconds_stops_training_early():
    X, y = load_diabetes(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    capped = KerasMLPRegressor(max_epochs=10_000, patience=10_000, max_seconds=0.01, random_state=0).fit(X, y)
    assert capped.n_epochs_ < 10_000


def test_light_form_gives_the_networks_own_outputs():
    """Predictions run a NumPy forward pass of the Dense layers; Keras' own call agrees to 1e-5."""
    import keras

    X, y = load_wine(return_X_y=True)
    X = StandardScaler().fit_transform(X).astype(np.float32)
    classifier = KerasMLPClassifier(hidden_layers=3, units=24, **{k: v for k, v in FAST.items() if k != "units"}).fit(X, y)
    through_keras = keras.ops.convert_to_numpy(classifier.model_(X, training=False))
    np.testing.assert_allclose(classifier.predict_proba(X), through_keras, rtol=0, atol=1e-5)
    regressor = KerasMLPRegressor(**FAST).fit(X, y.astype(float))
    standardized = keras.ops.convert_to_numpy(regressor.model_(X, training=False))[:, 0]
    np.testing.assert_allclose((regressor.predict(X) - regressor.y_mean_) / regressor.y_scale_, standardized, rtol=0, atol=1e-5)


def test_unpickled_network_keeps_its_keras_archive():
    """A pickle holds the light form and the ``.keras`` archive: ``model_`` rebuilds the same network."""
    import keras

    X, y = load_wine(return_X_y=True)
    X = StandardScaler().fit_transform(X).astype(np.float32)
    trained = KerasMLPClassifier(**FAST).fit(X, y)
    buffer = io.BytesIO()
    joblib.dump(trained, buffer)
    buffer.seek(0)
    restored = joblib.load(buffer)
    assert "_network" not in vars(restored) or restored._network is None
    np.testing.assert_array_equal(restored.predict_proba(X), trained.predict_proba(X))
    rebuilt = keras.ops.convert_to_numpy(restored.model_(X, training=False))
    np.testing.assert_allclose(rebuilt, trained.predict_proba(X), rtol=0, atol=1e-5)
    assert [w.shape for w in restored.model_.get_weights()] == [w.shape for w in trained.model_.get_weights()]
