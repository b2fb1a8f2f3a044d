"""A compact pickled form of scikit-learn's fitted decision trees, for saved forests.

Not a plugin itself (it registers no hook): ``TimeLimitedEnsemble`` pickles its forest's trees
as one ``PackedTrees``, and unpickling calls ``rebuild_estimators``, which gives back the
forest's list of trees, each with an ordinary ``sklearn.tree._tree.Tree``. Saved runs name
``rebuild_estimators`` by its path: it must stay here. All the trees of a forest are packed
together, as one array per field: pickling thousands of small arrays costs more than the
packing.

A scikit-learn tree pickles 64 bytes per node (eight fields, most of them 64-bit), plus every
node's class fractions or mean. Prediction needs much less, and the rest can be derived:

- the shape: a depth-first tree (scikit-learn's builder unless ``max_leaf_nodes`` is set)
  numbers a node's left child right after it, so one bit per node (leaf or not, in that order)
  gives every child. Other layouts keep their child arrays, as 32-bit integers;
- split features as 16-bit integers, and thresholds as 32-bit floats, rounded down: a tree
  compares its input as 32-bit floats, and no 32-bit float lies between a threshold and its
  rounding down, so every prediction is exactly the same;
- in a depth-first tree, values, sample counts and weights of the leaves only; a split's are
  the sums (counts, weights) and the weighted means (values) of its leaves'. Only leaves'
  values make predictions; a split's derived value may differ from the original in its last
  bits;
- impurities as 32-bit floats: they only serve ``feature_importances_``, which stays right to
  about 1e-7.

Measured with 300 trees on 4,000 rows, the forest's pickle, plain and then as saved runs
compress it (``automl.store.model_file``):

| forest | nodes | plain pickle | saved |
|---|---:|---:|---:|
| extra trees, phoneme (2 classes) | 0.68 M | 54.3 MB -> 11.8 MB | 15.8 MB -> 2.7 MB |
| extra trees, wine_quality_white (7 classes) | 1.2 M | 136.6 MB -> 40.6 MB | 32.9 MB -> 5.5 MB |
| random forest, 537_houses (regression) | 1.5 M | 107.7 MB -> 25.8 MB | 31.0 MB -> 8.0 MB |

Pickling takes about as long as before (0.13 to 0.35 s), and so does loading: the packed form
is read faster, and rebuilding the trees costs about what that saves.
"""

from __future__ import annotations

import copy

import numpy as np
from sklearn.tree._tree import Tree

__all__ = ["PackedTrees", "pack_trees", "rebuild_estimators", "rebuild_trees"]

LEAF = -1  # scikit-learn's child index of a leaf (``sklearn.tree._tree.TREE_LEAF``)
UNDEFINED = -2  # its feature and threshold of a leaf (``TREE_UNDEFINED``)


class PackedTrees:
    """A forest's fitted trees (``estimators_``) in their compact form; unpickling it gives back
    the list of trees. ``packable`` tells whether a list of trees can be packed."""

    def __init__(self, estimators):
        first = estimators[0].tree_
        self.arguments = (first.n_features, np.asarray(first.n_classes), first.n_outputs)
        self.estimators = [_without_tree(estimator) for estimator in estimators]
        self.packed = pack_trees([estimator.tree_ for estimator in estimators])

    @staticmethod
    def packable(estimators) -> bool:
        """Whether ``estimators`` are fitted trees that share ``Tree``'s arguments."""
        trees = [getattr(estimator, "tree_", None) for estimator in estimators]
        if not trees or not all(isinstance(tree, Tree) for tree in trees):
            return False
        first = trees[0]
        return all(
            (tree.n_features, tree.n_outputs) == (first.n_features, first.n_outputs)
            and np.array_equal(tree.n_classes, first.n_classes)
            for tree in trees
        )

    def __reduce__(self):
        return rebuild_estimators, (self.estimators, self.arguments, self.packed)


def rebuild_estimators(estimators: list, arguments: tuple, packed: dict) -> list:
    """``estimators`` (trees without their ``tree_``), each given back its ``tree_``."""
    for estimator, tree in zip(estimators, rebuild_trees(arguments, packed), strict=True):
        estimator.tree_ = tree
    return estimators


def _without_tree(estimator):
    estimator = copy.copy(estimator)
    del estimator.tree_
    return estimator


def pack_trees(trees: list[Tree]) -> dict:
    """The compact state of fitted ``trees`` that share ``Tree``'s arguments (the module's
    docstring says what it keeps). Fields are taken tree by tree, not from one concatenation
    of the trees' 64-byte nodes: a large forest's nodes take more time to copy than to pack."""
    states = [tree.__getstate__() for tree in trees]
    depth_first = all(_is_depth_first(state["nodes"]) for state in states)
    splits = [state["nodes"]["left_child"] != LEAF for state in states]
    # a depth-first tree's splits get their counts, weights and values back from their leaves
    kept = [~internal if depth_first else slice(None) for internal in splits]

    def field(name, rows=None):
        """A node field of every tree, of the rows ``rows`` (per tree) picks, or of all."""
        return np.concatenate([
            state["nodes"][name] if rows is None else state["nodes"][name][picked]
            for state, picked in zip(states, rows or states, strict=True)
        ])

    packed = {
        "max_depth": np.array([state["max_depth"] for state in states], dtype=np.int64),
        "node_count": np.array([state["node_count"] for state in states], dtype=np.int64),
    }
    if depth_first:
        packed["internal"] = np.packbits(np.concatenate(splits))
    else:
        packed["left"] = field("left_child").astype(np.int32)
        packed["right"] = field("right_child").astype(np.int32)
    feature_type = np.int32 if trees[0].n_features > np.iinfo(np.int16).max else np.int16
    packed["feature"] = field("feature", splits).astype(feature_type)
    packed["threshold"] = _round_down(field("threshold", splits))
    packed["missing_go_to_left"] = np.packbits(field("missing_go_to_left"))
    packed["impurity"] = field("impurity").astype(np.float32)
    samples = field("n_node_samples", kept)
    packed["n_node_samples"] = samples.astype(np.int32)
    weights = field("weighted_n_node_samples", kept)
    if not np.array_equal(weights, samples):
        packed["weighted_n_node_samples"] = weights
    packed["values"] = np.concatenate([state["values"][picked] for state, picked in zip(states, kept, strict=True)])
    return packed


def rebuild_trees(arguments: tuple, packed: dict) -> list[Tree]:
    """The scikit-learn ``Tree``s that ``pack_trees`` packed, from ``Tree``'s own arguments."""
    counts = packed["node_count"]
    total = int(counts.sum())
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    depth_first = "internal" in packed
    if depth_first:
        internal = np.unpackbits(packed["internal"], count=total).astype(bool)
        ends = _subtree_ends(internal)
        left, right = _children(internal, ends)
        left[internal] -= starts[internal]
        right[internal] -= starts[internal]
    else:
        left, right = packed["left"].astype(np.intp), packed["right"].astype(np.intp)
        internal = left != LEAF
    nodes = np.zeros(total, dtype=Tree(*arguments).__getstate__()["nodes"].dtype)
    nodes["left_child"], nodes["right_child"] = left, right
    nodes["feature"], nodes["threshold"] = UNDEFINED, UNDEFINED
    nodes["feature"][internal] = packed["feature"]
    nodes["threshold"][internal] = packed["threshold"]
    nodes["missing_go_to_left"] = np.unpackbits(packed["missing_go_to_left"], count=total)
    nodes["impurity"] = packed["impurity"]
    kept = ~internal if depth_first else slice(None)
    samples = np.zeros(total, dtype=np.int64)
    samples[kept] = packed["n_node_samples"]
    weights = np.zeros(total)
    weights[kept] = packed.get("weighted_n_node_samples", packed["n_node_samples"])
    values = np.zeros((total, *packed["values"].shape[1:]))
    values[kept] = packed["values"]
    if depth_first:
        _sum_splits(internal, ends, samples, weights, values)
    nodes["n_node_samples"], nodes["weighted_n_node_samples"] = samples, weights
    trees = []
    bounds = np.cumsum(counts)[:-1]
    for depth, count, tree_nodes, tree_values in zip(
        packed["max_depth"], counts, np.split(nodes, bounds), np.split(values, bounds), strict=True
    ):
        tree = Tree(*arguments)
        tree.__setstate__({"max_depth": int(depth), "node_count": int(count), "nodes": tree_nodes, "values": tree_values})
        trees.append(tree)
    return trees


def _round_down(thresholds: np.ndarray) -> np.ndarray:
    """``thresholds`` as the largest 32-bit floats not above them (infinities stay)."""
    rounded = thresholds.astype(np.float32)
    above = rounded.astype(np.float64) > thresholds
    rounded[above] = np.nextafter(rounded[above], np.float32(-np.inf))
    return rounded


def _is_depth_first(nodes: np.ndarray) -> bool:
    """Whether a tree's ``nodes`` are numbered depth first: every split's left child right after
    it, and its right child right after the left subtree's end. A subtree's end is its right
    child's, down to a leaf: found by pointer jumping, one vectorised step per doubling of the
    depth."""
    left, right = nodes["left_child"], nodes["right_child"]
    internal = left != LEAF
    index = np.arange(len(nodes))
    ends = np.where(internal, right, index)
    while True:
        jumped = ends[ends]
        if np.array_equal(jumped, ends):
            break
        ends = jumped
    splits = index[internal]
    return bool(np.array_equal(left[internal], splits + 1) and np.array_equal(right[internal], ends[splits + 1] + 1))


def _children(internal: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every node's left and right child, numbered along ``internal`` (depth-first trees one
    after another), from the leaf bits and the subtrees' ends."""
    splits = np.flatnonzero(internal)
    left = np.full(len(internal), LEAF, dtype=np.intp)
    right = np.full(len(internal), LEAF, dtype=np.intp)
    left[splits] = splits + 1
    right[splits] = ends[splits + 1] + 1  # the right child follows the left subtree
    return left, right


def _subtree_ends(internal: np.ndarray) -> np.ndarray:
    """The last node of every node's subtree, for depth-first trees one after another given by
    their leaf bits.

    In depth-first order a subtree is a run of nodes. Counting +1 per split and -1 per leaf,
    the subtree starting at ``j`` ends at the first ``k >= j`` where the running sum falls one
    below its value before ``j`` (a whole tree is one such run, so the trees stay apart). If the
    bits are not depth-first trees, the ends are wrong: ``pack_trees`` checks them.
    """
    count = len(internal)
    if count == 0:
        return np.zeros(0, dtype=np.intp)
    running = np.cumsum(np.where(internal, 1, -1))
    before = np.concatenate(([0], running[:-1]))
    # sorted by (running sum, position): the first key at or after (before[j] - 1, j) is the end;
    # a stable sort of 16-bit sums is a radix sort, linear in the nodes
    small = running.min() > np.iinfo(np.int16).min and running.max() < np.iinfo(np.int16).max
    order = np.argsort(running.astype(np.int16) if small else running, kind="stable")
    stride = count + 1
    keys = running[order].astype(np.int64) * stride + order
    wanted = (before.astype(np.int64) - 1) * stride + np.arange(count)
    found = keys[np.minimum(np.searchsorted(keys, wanted), count - 1)]
    return np.clip(found - (before - 1) * stride, 0, count - 1)


def _sum_splits(internal, ends, samples, weights, values) -> None:
    """Fill in the splits' sample counts, weights and values from their leaves': a split's
    subtree is a run of nodes in depth-first order, so its sums are differences of running sums
    over the leaves (which hold zeros until then)."""
    splits = np.flatnonzero(internal)
    if not splits.size:
        return
    first, last = splits, ends[splits] + 1

    def over_subtrees(per_node, scale=None):
        # running sums with a leading zero, in one buffer: a large forest's temporaries are large
        running = np.empty((len(per_node) + 1, *per_node.shape[1:]), per_node.dtype)
        running[0] = 0
        if scale is None:
            np.cumsum(per_node, axis=0, out=running[1:])
        else:
            np.multiply(per_node, scale, out=running[1:])
            np.cumsum(running[1:], axis=0, out=running[1:])
        return running[last] - running[first]

    samples[splits] = over_subtrees(samples)
    weights[splits] = over_subtrees(weights)
    shape = (-1, *([1] * (values.ndim - 1)))
    weighted = over_subtrees(values, weights.reshape(shape))  # the splits' values are still 0
    values[splits] = weighted / np.where(weights[splits] > 0, weights[splits], 1).reshape(shape)
