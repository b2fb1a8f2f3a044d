"""Ensemble selection: a weighted average of the best trials, saved only when its CV score wins."""

import dataclasses

import numpy as np
import pytest
from sklearn.datasets import load_wine
from sklearn.metrics import mean_squared_error

import automl
from automl.fit.select import clearly_better as _clearly_better, with_ensemble as _with_ensemble
from automl.store.ensemble import ENSEMBLE
from automl.search.ensemble import PredictionPool, select_ensemble
from automl.review.oof import out_of_fold
from conftest import read_bundled


@pytest.fixture(scope="module")
def mpg_run(tmp_path_factory):
    X = read_bundled("mpg")
    y = X.pop("mpg")
    path = tmp_path_factory.mktemp("runs") / "mpg"
    result = automl.fit_best(
        X, y, time_budget=None, n_trials=3, models=["ridge", "hist_gradient_boosting"], path=path, verbose=0,
        portfolio=False,  # from the defaults: the two-member ensemble these tests were written on
    )
    return X, y, result


def test_a_better_ensemble_is_saved_with_its_members(mpg_run):
    X, y, result = mpg_run
    board = result.leaderboard
    assert result.model_name == ENSEMBLE
    assert board["model"].iloc[0] == ENSEMBLE and board["status"].iloc[0] == "ok"
    singles = board[board["model"] != ENSEMBLE]
    assert result.score > singles["score"].max()

    recorded = result.manifest["ensemble"]
    assert recorded["saved"] is True
    assert result.score == pytest.approx(np.mean(recorded["fold_scores"]))
    members = recorded["members"]
    assert len(members) >= 2 and sum(m["weight"] for m in members) == pytest.approx(1.0)
    assert {m["model"] for m in members} <= {"ridge", "hist_gradient_boosting"}
    # every member is a completed trial of the search, with that trial's params
    trials = result.trials.set_index(["model", "number"])
    for member in members:
        trial = trials.loc[(member["model"], member["trial"])]
        assert trial["state"] == "complete" and trial["params"] == member["params"]

    # the saved model averages its refit members' predictions with those weights
    model = result.model
    by_members = sum(w * e.predict(X) for e, w in zip(model.estimators_, model.weights))
    np.testing.assert_allclose(result.predict(X), by_members)
    assert mean_squared_error(y, result.predict(X)) ** 0.5 < y.std()  # and it learned something


def test_a_saved_ensemble_loads_and_its_folds_can_be_rebuilt(mpg_run):
    X, y, result = mpg_run
    loaded = automl.load(result.path)
    assert loaded.model_name == ENSEMBLE
    np.testing.assert_allclose(loaded.predict(X), result.predict(X))
    # the report's out-of-fold refit of the ensemble gives the search's fold scores (ridge and
    # boosting with a seed are deterministic)
    oof = out_of_fold(loaded, X, y)
    np.testing.assert_allclose(oof.fold_scores, result.manifest["ensemble"]["fold_scores"], rtol=1e-6)


def test_classification_ensemble_probabilities_and_test_score():
    X, y = load_wine(return_X_y=True, as_frame=True)
    result = automl.fit_best(
        X, y, time_budget=None, n_trials=3, models=["logistic_regression", "extra_trees"], test_size=0.25,
        save=False, verbose=0,
    )
    assert result.model_name == ENSEMBLE
    proba = result.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert list(result.model.classes_) == [0, 1, 2]
    assert result.test_score is not None and result.test_score > -0.5  # log loss on held-out rows
    row = result.leaderboard.set_index("model").loc[ENSEMBLE]
    assert row["test_score"] == result.test_score


def test_ensemble_false_saves_the_best_single_model():
    X, y = load_wine(return_X_y=True, as_frame=True)
    result = automl.fit_best(
        X, y, time_budget=None, n_trials=2, models=["logistic_regression", "extra_trees"], save=False, verbose=0,
        ensemble=False,
    )
    assert result.model_name in {"logistic_regression", "extra_trees"}
    assert ENSEMBLE not in set(result.leaderboard["model"]) and result.manifest["ensemble"] is None


def test_a_gain_within_fold_noise_does_not_count():
    best = [0.90, 0.92, 0.88, 0.91, 0.89]
    mean = float(np.mean(best))
    assert _clearly_better([s + 0.004 for s in best], best, mean), "better on every fold"
    noisy = [b + g for b, g in zip(best, [0.03, -0.03, 0.03, -0.03, 0.01])]  # +0.002 on average
    assert not _clearly_better(noisy, best, mean)
    assert not _clearly_better(best, best, mean)
    assert _clearly_better([0.95], [0.90], 0.90), "a holdout has no spread to judge by"


def test_an_ensemble_not_saved_goes_below_the_saved_models(mpg_run):
    _, _, result = mpg_run
    singles = result.leaderboard[result.leaderboard["model"] != ENSEMBLE]
    row = {**result.leaderboard.iloc[0].to_dict(), "model": ENSEMBLE, "score": 0.0, "status": "not clearly better than ridge"}
    board = _with_ensemble(singles, row)
    assert list(board["model"]) == [*singles["model"], ENSEMBLE], "a higher score, but not saved: last"
    board = _with_ensemble(singles, {**row, "status": "ok"})
    assert board["model"].iloc[0] == ENSEMBLE


def neg_rmse(y, p):
    return -float(np.sqrt(np.mean((y - p) ** 2)))


def test_the_pool_keeps_each_models_best_complete_trials():
    rng = np.random.default_rng(0)
    targets = [rng.normal(size=200), rng.normal(size=200)]
    pool = PredictionPool(targets, classes=None, per_model=2)
    for number, noise in enumerate([0.5, 2.0, 0.5]):
        predictions = [t + rng.normal(scale=noise, size=len(t)) for t in targets]
        pool.add("a", number, float(np.mean([neg_rmse(t, p) for t, p in zip(targets, predictions)])), {"n": number}, predictions)
    pool.add("b", 0, -0.2, {}, [targets[0], None])  # a fold without predictions: not a candidate
    pool.add("b", 1, -0.2, {}, [targets[0]])  # not one array per fold: not a candidate
    kept = pool.candidates()
    assert sorted((c.model, c.number) for c in kept) == [("a", 0), ("a", 2)]

    selection = select_ensemble(pool, neg_rmse)
    # averaging two independently noisy copies of the truth beats either alone
    assert selection is not None and len(selection.members) == 2
    assert sum(selection.weights) == pytest.approx(1.0)
    assert selection.score > max(c.score for c in kept)
    single = PredictionPool(targets, classes=None)
    single.add("a", 0, -0.1, {}, targets)
    assert select_ensemble(single, neg_rmse) is None


def test_pruning_drops_the_members_an_ensemble_does_not_need():
    from automl.search.ensemble import Selection, prune_selection

    rng = np.random.default_rng(0)
    targets = [rng.normal(size=400) for _ in range(5)]
    pool = PredictionPool(targets, classes=None, per_model=1)
    for number in range(3):
        predictions = [t + rng.normal(size=len(t)) for t in targets]
        pool.add(f"m{number}", number, float(np.mean([neg_rmse(t, p) for t, p in zip(targets, predictions)])), {}, predictions)
    a, b, c = sorted(pool.candidates(), key=lambda m: m.model)
    twin = dataclasses.replace(a, model="twin", number=9)  # the same predictions as a
    pool.add("twin", 9, twin.score, {}, list(twin.predictions))

    def scored(members, weights):
        folds = [neg_rmse(t, sum(w * m.predictions[k] for m, w in zip(members, weights))) for k, t in enumerate(targets)]
        return Selection(members, weights, folds)

    def not_worse(smaller):
        return not _clearly_better(whole.fold_scores, smaller.fold_scores, smaller.score)

    # a member's twin adds nothing: one of the two goes, and the other takes its weight
    whole = scored([a, b, twin], [0.25, 0.5, 0.25])
    pruned = prune_selection(whole, pool, neg_rmse, not_worse)
    assert len(pruned.members) == 2 and "m1" in [m.model for m in pruned.members]
    assert [(m.model, m.number) for m in pruned.dropped] in ([("m0", 0)], [("twin", 9)])
    assert sum(pruned.weights) == pytest.approx(1.0) and min(pruned.weights) > 0.4
    assert pruned.score == pytest.approx(whole.score, abs=1e-3)

    # three independent errors: averaging all three beats every pair on every fold, nothing goes
    whole = scored([a, b, c], [1 / 3] * 3)
    kept = prune_selection(whole, pool, neg_rmse, not_worse)
    assert kept is whole and not kept.dropped
    # two members are always kept, whatever ``keeps`` says
    assert len(prune_selection(whole, pool, neg_rmse, lambda s: True).members) == 2
    # no time: the selection as it was, not a round cut short
    assert prune_selection(whole, pool, neg_rmse, lambda s: True, max_seconds=-1) is whole


def test_ensemble_must_be_a_bool(tmp_path):
    X, y = load_wine(return_X_y=True, as_frame=True)
    with pytest.raises(automl.InputError, match="ensemble must be True or False, got 'yes'"):
        automl.fit_best(X, y, n_trials=1, time_budget=None, path=tmp_path / "run", ensemble="yes")
    assert not (tmp_path / "run").exists()


def _mpg_members(X, y):
    from sklearn.ensemble import ExtraTreesRegressor
    from sklearn.linear_model import Ridge

    from automl.data.preprocess import make_model_pipeline
    from automl.data.schema import infer_schema

    schema = infer_schema(X)
    return [
        make_model_pipeline(schema, "ordinal", ExtraTreesRegressor(n_estimators=20, random_state=0)),
        make_model_pipeline(schema, "onehot", Ridge()),
        make_model_pipeline(schema, "ordinal", ExtraTreesRegressor(n_estimators=20, random_state=1)),
    ]


def test_members_share_their_preprocessing_and_predict_as_on_their_own(monkeypatch):
    import pickle

    from automl.data.preprocess import TablePreprocessor
    from automl.store.ensemble import make_ensemble

    X = read_bundled("mpg")
    y = X.pop("mpg").to_numpy()
    X.loc[X.index[:7], "horsepower"] = np.nan  # a missing-value indicator in the fitted state
    ensemble = make_ensemble("regression", _mpg_members(X, y), [0.5, 0.3, 0.2]).fit(X, y)
    one_by_one = sum(w * e.predict(X) for e, w in zip(ensemble.estimators_, ensemble.weights))

    calls = {"coerce": 0, "transform": 0}
    for method, key in (("coerce_columns", "coerce"), ("transform_columns", "transform")):
        own = getattr(TablePreprocessor, method)

        def counted(self, *args, _own=own, _key=key, **kwargs):
            calls[_key] += 1
            return _own(self, *args, **kwargs)

        monkeypatch.setattr(TablePreprocessor, method, counted)
    for model in (ensemble, pickle.loads(pickle.dumps(ensemble))):  # and after a round trip
        calls.update(coerce=0, transform=0)
        np.testing.assert_allclose(model.predict(X), one_by_one, rtol=1e-12)
        # one schema, two fitted preprocessings (ordinal for the trees, one-hot for the ridge)
        assert calls == {"coerce": 1, "transform": 2}
    assert "_shared_steps" not in pickle.loads(pickle.dumps(ensemble)).__dict__, "pickles stay as they were"

    # a bad table still gets the preprocessor's own error
    with pytest.raises(automl.InputError, match="missing column"):
        ensemble.predict(X.drop(columns=["horsepower"]))


def test_members_fitted_on_other_rows_do_not_share_a_transform():
    from automl.store.ensemble import make_ensemble

    X = read_bundled("mpg")
    y = X.pop("mpg").to_numpy()
    ensemble = make_ensemble("regression", _mpg_members(X, y)[:1], [1.0]).fit(X, y)
    other = make_ensemble("regression", _mpg_members(X, y)[2:], [1.0]).fit(X.iloc[:200], y[:200])
    # an ensemble whose members saw different rows: same schema, different medians and levels
    ensemble.estimators_ = [ensemble.estimators_[0], other.estimators_[0]]
    ensemble.weights = [0.5, 0.5]
    expected = 0.5 * ensemble.estimators_[0].predict(X) + 0.5 * ensemble.estimators_[1].predict(X)
    np.testing.assert_allclose(ensemble.predict(X), expected, rtol=1e-12)
    assert len({steps[3] for steps in ensemble._shared_steps}) == 2


@pytest.mark.parametrize("task", ["regression", "multiclass"])
def test_members_predict_with_one_blas_thread_and_the_callers_setting_comes_back(task, monkeypatch):
    from sklearn.linear_model import LogisticRegression, Ridge
    from threadpoolctl import threadpool_info, threadpool_limits

    from automl.data.preprocess import make_model_pipeline
    from automl.data.schema import infer_schema
    from automl.store.ensemble import make_ensemble

    X, y = load_wine(return_X_y=True, as_frame=True)
    linear = (lambda: Ridge()) if task == "regression" else (lambda: LogisticRegression(max_iter=500))
    members = [make_model_pipeline(infer_schema(X), "onehot", linear()) for _ in range(2)]
    ensemble = make_ensemble(task, members, [0.5, 0.5]).fit(X, y)
    method = "predict" if task == "regression" else "predict_proba"
    expected = sum(0.5 * getattr(member, method)(X) for member in ensemble.estimators_)

    def blas_threads():
        return {i["filepath"]: i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"}

    seen, model = [], ensemble.estimators_[0].named_steps["model"]
    own = getattr(model, method)

    def recording(Z):
        seen.append(set(blas_threads().values()))
        return own(Z)

    monkeypatch.setattr(model, method, recording)
    with threadpool_limits(limits=2, user_api="blas"):
        before = blas_threads()
        np.testing.assert_allclose(getattr(ensemble, method)(X), expected, rtol=1e-12)
        assert seen == [{1}], "the members ran with one BLAS thread"
        assert blas_threads() == before, "the caller's BLAS threads are given back"


def _wine_ensemble(monkeypatch, fail_in_helpers: bool = False, pause: float = 0.02):
    """A three-member wine ensemble (178 rows: the members may run side by side) whose members
    record the thread and scikit-learn setting they ran with, member i taking ``pause * (i + 1)``
    seconds more (so that two threads overlap, and the costliest-first order is the members'
    order reversed); with ``fail_in_helpers``, a member raises when a helper thread runs it."""
    import threading
    import time

    import sklearn
    from sklearn.linear_model import LogisticRegression

    from automl.data.preprocess import make_model_pipeline
    from automl.data.schema import infer_schema
    from automl.store import ensemble as ensembles

    X, y = load_wine(return_X_y=True, as_frame=True)
    members = [make_model_pipeline(infer_schema(X), "onehot", LogisticRegression(C=c, max_iter=500)) for c in (0.1, 1, 10)]
    ensemble = ensembles.make_ensemble("multiclass", members, [0.2, 0.3, 0.5]).fit(X, y)
    monkeypatch.setattr(ensembles, "_cores", lambda: 2)  # whatever this machine has
    seen = []
    for i, member in enumerate(ensemble.estimators_):
        model = member.named_steps["model"]

        def recording(Z, _own=model.predict_proba, _i=i):
            seen.append((threading.current_thread().name, sklearn.get_config()["assume_finite"]))
            time.sleep(pause * (_i + 1))
            if fail_in_helpers and threading.current_thread().name.startswith("automl-ensemble"):
                raise ArithmeticError(f"member {_i} failed in a helper thread")
            return _own(Z)

        monkeypatch.setattr(model, "predict_proba", recording)
    return X, ensemble, seen


def test_members_of_a_small_batch_predict_side_by_side_as_they_would_in_turn(monkeypatch):
    import sklearn

    from automl.store.ensemble import CONCURRENT_ROWS
    from automl.plugins._anytime import PARALLEL_PREDICT_ROWS

    assert CONCURRENT_ROWS == PARALLEL_PREDICT_ROWS, "side by side exactly where the built-ins predict in one thread"
    X, ensemble, seen = _wine_ensemble(monkeypatch)
    in_turn = sum(w * m.predict_proba(X) for m, w in zip(ensemble.estimators_, ensemble.weights))
    threads_per_call = []
    for _ in range(3):  # in turn (timing the members), side by side, in turn again
        seen.clear()
        with sklearn.config_context(assume_finite=True):
            np.testing.assert_array_equal(ensemble.predict_proba(X), in_turn)
        threads_per_call.append({thread for thread, _ in seen})
        assert all(setting for _, setting in seen), "every thread ran with the caller's scikit-learn settings"
    assert [len(threads) for threads in threads_per_call] == [1, 2, 1], "the second call ran on two threads"
    assert min(ensemble._pacing.member_seconds) >= 0.02
    assert "_pacing" not in ensemble.__getstate__(), "pickles stay as they were"

    seen.clear()  # from CONCURRENT_ROWS rows on, in turn in the calling thread
    big = X.sample(CONCURRENT_ROWS, replace=True, random_state=0)
    ensemble.predict_proba(big)
    assert {thread for thread, _ in seen} == {"MainThread"}


def test_the_faster_way_is_kept_and_the_other_timed_again_now_and_then():
    from automl.store.ensemble import RETIME_EVERY, _Pacing

    pacing = _Pacing([0.0, 0.0])
    assert [pacing.side_by_side(100) for _ in range(3)] == [False, True, False], "both ways are tried first"
    pacing.timed(100, True, 0.020)
    pacing.timed(100, False, 0.010)  # side by side was slower
    later = [pacing.side_by_side(100) for _ in range(4, 4 + 2 * RETIME_EVERY)]
    assert sum(later) == 2 and later[RETIME_EVERY - 4], "in turn, side by side again every RETIME_EVERY calls"
    assert [pacing.side_by_side(1) for _ in range(3)] == [False, True, False], "another batch size: timed anew"
    pacing.timed(100, True, 0.005)  # side by side became the faster
    assert pacing.side_by_side(100) is True


def test_members_quicker_than_a_thread_start_predict_in_turn(monkeypatch):
    from automl.store import ensemble as ensembles

    X, ensemble, seen = _wine_ensemble(monkeypatch, pause=0.002)
    monkeypatch.setattr(ensembles, "MIN_SIDE_BY_SIDE_SECONDS", 60.0)  # (the members' 6 ms are below it)
    for _ in range(3):
        ensemble.predict_proba(X)
    assert {thread for thread, _ in seen} == {"MainThread"}


def test_a_member_failing_in_a_helper_thread_raises_in_the_caller(monkeypatch):
    X, ensemble, seen = _wine_ensemble(monkeypatch, fail_in_helpers=True)
    expected = ensemble.predict_proba(X)  # the first call: in turn, in the calling thread
    with pytest.raises(ArithmeticError, match="failed in a helper thread"):
        ensemble.predict_proba(X)  # the second: side by side
    np.testing.assert_array_equal(ensemble.predict_proba(X), expected)  # the third, in turn again


def test_a_refit_or_other_members_time_the_members_anew(monkeypatch):
    X, ensemble, seen = _wine_ensemble(monkeypatch, pause=0.0)
    for _ in range(2):
        ensemble.predict_proba(X)
    assert "_pacing" in ensemble.__dict__
    ensemble.estimators_ = ensemble.estimators_[:2]  # other members, no refit: timed anew
    ensemble.weights = [0.5, 0.5]
    ensemble.predict_proba(X)
    assert len(ensemble._pacing.member_seconds) == 2
    ensemble.weights = [0.2, 0.3, 0.5]  # the three members it is refit with
    y = load_wine(return_X_y=True)[1]
    assert "_pacing" not in ensemble.fit(X, y).__dict__


def test_overlapping_predictions_in_threads_give_blas_its_threads_back():
    """Two threads' ensemble predictions overlap, the first in leaving first: inside, BLAS runs on
    one thread; after both, on as many as before (not the 1 the second saw on entering)."""
    import threading

    from threadpoolctl import threadpool_info

    from automl.store.ensemble import _one_blas_thread

    def blas_threads():
        return {i["filepath"]: i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"}

    before = blas_threads()
    if not before or max(before.values()) < 2:
        pytest.skip("needs a BLAS with 2 threads or more to tell a limit from none")
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()
    seen = {}

    def first():
        with _one_blas_thread():
            first_in.set()
            second_in.wait(5)
            seen["first"] = set(blas_threads().values())
        first_out.set()

    def second():
        first_in.wait(5)
        with _one_blas_thread():
            second_in.set()
            first_out.wait(5)
            seen["second"] = set(blas_threads().values())

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert seen == {"first": {1}, "second": {1}}, "one BLAS thread while any prediction runs"
    assert blas_threads() == before, "the threads BLAS had before, once both are done"
    with _one_blas_thread():  # and the main thread may still set them afterwards, nested too
        with _one_blas_thread():
            assert set(blas_threads().values()) == {1}
        assert set(blas_threads().values()) == {1}, "the outer prediction is not done yet"
    assert blas_threads() == before
    with pytest.raises(ZeroDivisionError):  # a member's error gives the threads back as well
        with _one_blas_thread():
            1 / 0
    assert blas_threads() == before


def test_the_selection_after_a_search_is_pruned_and_still_wins():
    """The path ``refit_ensemble`` takes: greedy selection, then the members within fold noise
    go. Small folds (12 rows) make a weak member's gain noise; these seeded draws give one."""
    from automl.fit.select import _select_affordable

    rng = np.random.default_rng(2)
    targets = [rng.normal(size=12) for _ in range(5)]
    pool = PredictionPool(targets, classes=None, per_model=1)
    for number, noise in enumerate([1.0, 1.0, 1.6, 1.6]):
        predictions = [t + rng.normal(scale=noise, size=len(t)) for t in targets]
        pool.add(f"m{number}", number, float(np.mean([neg_rmse(t, p) for t, p in zip(targets, predictions)])), {}, predictions)
    best = pool.candidates()[0]
    best_folds = [neg_rmse(t, p) for t, p in zip(targets, best.predictions)]

    def wins(selection):
        return selection is not None and _clearly_better(selection.fold_scores, best_folds, best.score)

    class EveryRefitFits:
        def affordable(self, selection):
            return True

    greedy = select_ensemble(pool, neg_rmse)
    first, chosen = _select_affordable(pool, neg_rmse, EveryRefitFits(), wins, 10.0, seed=0)
    assert chosen is first and wins(chosen)
    assert len(greedy.members) == 4 and len(chosen.members) == 3
    assert [(m.model, m.number) for m in chosen.dropped] == [("m3", 3)]
    assert not _clearly_better(greedy.fold_scores, chosen.fold_scores, chosen.score)
