"""A saved forest's trees are pickled in their compact form (``automl.plugins._compact_trees``):
the rebuilt trees are scikit-learn's own, and predict exactly as the originals did."""

import copy
import io
import pickle
import zlib

import joblib
import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris, load_wine
from sklearn.ensemble import ExtraTreesClassifier, ExtraTreesRegressor, RandomForestClassifier, RandomForestRegressor
from sklearn.tree._tree import Tree

from automl.plugins._anytime import TimeLimitedEnsemble
from automl.plugins._compact_trees import PackedTrees, pack_trees, rebuild_trees

FORESTS = {
    # depth-first trees, pure leaves, 3 classes
    "extra_trees_iris": (load_iris, ExtraTreesClassifier, {}),
    # bootstrap: leaves' weights are draw counts, not sample counts
    "random_forest_wine": (load_wine, RandomForestClassifier, {}),
    # float weights from the class weights
    "balanced_breast_cancer": (load_breast_cancer, RandomForestClassifier, {"class_weight": "balanced_subsample"}),
    # best-first trees (max_leaf_nodes): the explicit layout
    "best_first_diabetes": (load_diabetes, RandomForestRegressor, {"max_leaf_nodes": 40}),
    "extra_trees_diabetes": (load_diabetes, ExtraTreesRegressor, {"min_samples_leaf": 3}),
}


def _fitted(name, missing=False):
    load, forest, params = FORESTS[name]
    X, y = load(return_X_y=True)
    if missing:  # a tenth of the values missing: splits send them left or right
        X = X.copy()
        X[np.random.default_rng(0).random(X.shape) < 0.1] = np.nan
    return forest(n_estimators=12, random_state=0, **params).fit(X, y), X


def _round_trip(forest):
    trees = [estimator.tree_ for estimator in forest.estimators_]
    first = trees[0]
    arguments = (first.n_features, np.asarray(first.n_classes), first.n_outputs)
    packed = pack_trees(trees)
    best_first = forest.get_params()["max_leaf_nodes"] is not None
    assert ("left" in packed) == best_first and ("internal" in packed) != best_first  # the layout
    return trees, rebuild_trees(arguments, pickle.loads(pickle.dumps(packed)))


@pytest.mark.parametrize("missing", [False, True])
@pytest.mark.parametrize("name", sorted(FORESTS))
def test_rebuilt_trees_are_the_same_trees(name, missing):
    forest, X = _fitted(name, missing)
    X32 = X.astype(np.float32)
    for original, rebuilt in zip(*_round_trip(forest), strict=True):
        assert isinstance(rebuilt, Tree)
        before, after = original.__getstate__(), rebuilt.__getstate__()
        assert (before["max_depth"], before["node_count"]) == (after["max_depth"], after["node_count"])
        for field in ("left_child", "right_child", "feature", "n_node_samples"):
            np.testing.assert_array_equal(before["nodes"][field], after["nodes"][field], err_msg=field)
        splits = before["nodes"]["left_child"] != -1
        np.testing.assert_array_equal(
            before["nodes"]["missing_go_to_left"][splits], after["nodes"]["missing_go_to_left"][splits]
        )
        leaves = ~splits
        np.testing.assert_array_equal(before["values"][leaves], after["values"][leaves])
        np.testing.assert_allclose(after["values"], before["values"], rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(
            after["nodes"]["weighted_n_node_samples"], before["nodes"]["weighted_n_node_samples"], rtol=1e-12
        )
        np.testing.assert_allclose(after["nodes"]["impurity"], before["nodes"]["impurity"], rtol=1e-6, atol=1e-7)
        np.testing.assert_array_equal(original.predict(X32), rebuilt.predict(X32))
        np.testing.assert_array_equal(original.apply(X32), rebuilt.apply(X32))


def test_thresholds_rounded_down_split_every_float32_value_the_same_way():
    forest, X = _fitted("extra_trees_diabetes")
    trees, rebuilt = _round_trip(forest)
    for original, copy_ in zip(trees, rebuilt, strict=True):
        nodes = original.__getstate__()["nodes"]
        splits = nodes[nodes["left_child"] != -1]
        # the float32 values on each side of every threshold, in a row of the split's feature
        near = np.float32(splits["threshold"])
        candidates = np.concatenate([np.nextafter(near, -np.inf), near, np.nextafter(near, np.inf)])
        features = np.concatenate([splits["feature"]] * 3)
        rows = np.tile(X[:1].astype(np.float32), (len(candidates), 1))
        rows[np.arange(len(candidates)), features] = candidates
        np.testing.assert_array_equal(original.apply(rows), copy_.apply(rows))
        assert (np.float32(splits["threshold"]) != splits["threshold"]).any()  # rounding was needed


def test_forest_pickles_smaller_and_predicts_the_same():
    X, y = load_breast_cancer(return_X_y=True)
    model = TimeLimitedEnsemble(ExtraTreesClassifier(n_estimators=50, random_state=0)).fit(X, y)
    plain = pickle.dumps(dict(model.__dict__))  # the forest as scikit-learn pickles it
    packed = pickle.dumps(model)
    assert len(packed) * 3 < len(plain)
    assert len(zlib.compress(packed, 3)) * 2 < len(zlib.compress(plain, 3))
    for loaded in (pickle.loads(packed), joblib.load(io.BytesIO(_joblib_bytes(model))), copy.deepcopy(model)):
        assert isinstance(loaded.estimator_.estimators_[0].tree_, Tree)
        np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
        np.testing.assert_allclose(loaded.feature_importances_, model.feature_importances_, rtol=1e-5, atol=1e-9)
    # pickling leaves the model it pickles as it was
    assert isinstance(model.estimator_.estimators_[0].tree_, Tree)
    assert isinstance(model.estimator_.estimators_, list)


def _joblib_bytes(model):
    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    return buffer.getvalue()


def test_trees_of_different_shapes_are_not_packed():
    iris = ExtraTreesClassifier(n_estimators=2, random_state=0).fit(*load_iris(return_X_y=True))
    wine = ExtraTreesClassifier(n_estimators=2, random_state=0).fit(*load_wine(return_X_y=True))
    assert PackedTrees.packable(iris.estimators_)
    assert not PackedTrees.packable(iris.estimators_ + wine.estimators_)
    assert not PackedTrees.packable([])
