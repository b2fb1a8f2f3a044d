"""Hook specifications: the whole contract between automl and its plugins.

A plugin is any module or object with functions marked ``@automl.hookimpl`` whose names
match the specs below. Plugins are found through the ``automl.plugins`` entry-point group
(built-in models take the same path) or passed per call with ``fit_best(plugins=[...])``.

A hook implementation may accept a subset of the arguments named in its spec; arguments may
be added to a spec later without breaking existing plugins. A misspelled hook name is an
error at start-up (``PluginManager.check_pending``), not a silently ignored function.
"""

from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("automl")
hookimpl = pluggy.HookimplMarker("automl")


@hookspec
def automl_models():
    """Return the models this plugin provides, as a list of :class:`automl.ModelSpec`.

    Called once per plugin manager (that is, once per ``fit_best`` call and once per
    ``automl.list_models``), before any data is seen; keep it cheap: import heavy libraries
    inside ``ModelSpec.build`` or in the estimator's ``fit``, not at module import.

    :return: a list (possibly empty) of ``ModelSpec``. Each ``ModelSpec.name`` must be unique
        across all plugins; a duplicate is an error naming both providers.

    All implementations are called; their lists are concatenated. A plugin whose
    implementation raises is reported in a warning and its models are skipped.

    A model built on an optional library is still returned when the library is missing, with
    the library in ``ModelSpec.requires`` (and how to install it in ``ModelSpec.install_hint``):
    ``fit_best`` and ``automl.list_models`` then leave it out, and ``automl models`` lists it
    as not installed. So the plugin module must import without that library.

    Example::

        import automl
        from sklearn.neighbors import KNeighborsClassifier

        @automl.hookimpl
        def automl_models():
            return [automl.ModelSpec(
                name="knn",
                tasks={"binary", "multiclass"},
                search_space=lambda trial, ctx: {"n_neighbors": trial.suggest_int("n_neighbors", 1, 50)},
                build=lambda params, ctx: KNeighborsClassifier(**params),
                default_params={"n_neighbors": 5},
            )]
    """


@hookspec
def automl_portfolio(task):
    """Return starting configurations for this plugin's own models, best first, for ``task``.

    A portfolio (``fit_best(portfolio=True)``, the default; see ``automl.search.portfolio``)
    tells the search which configurations to try first. The built-in one covers the built-in
    models only; a plugin whose author knows good settings for its models (from the model's
    paper, or an offline study like ``benchmarks/meta_learn.py``) hands them in here.

    :param task: ``"binary"``, ``"multiclass"`` or ``"regression"``.
    :return: a list of ``{"model": name, "params": {...}}`` (possibly empty), ``params`` as the
        model's ``search_space`` would return them. ``model`` must be one this plugin's
        ``automl_models`` returns; an entry naming another plugin's model, or shaped otherwise,
        is skipped with a warning.

    The entries of a model the portfolio in use does not cover are appended to it, in the order
    returned: the model's first trial is its first entry (instead of its ``default_params``),
    its first round comes after the portfolio's own models, and its other entries are queued
    after the portfolio's. A model the portfolio covers already keeps the portfolio's entries.
    Not called with ``portfolio=False`` or when resuming.

    Example::

        @automl.hookimpl
        def automl_portfolio(task):
            if task == "regression":
                return []
            return [{"model": "knn", "params": {"n_neighbors": 15}},
                    {"model": "knn", "params": {"n_neighbors": 5}}]
    """


# -- observers: experiment tracking, progress displays, notifications --------------------------
# Called in the process that runs fit_best, in this order: automl_run_started once,
# automl_trial_completed after every trial, automl_run_finished once. They observe; what they
# return is ignored, and one that raises is reported in a warning without stopping the run.


@hookspec
def automl_run_started(run):
    """Called once the data and settings are checked, before the first trial.

    :param run: an :class:`automl.RunInfo`: ``task``, ``metric``, ``models`` (names),
        ``n_rows``, ``n_columns``, ``time_budget``, ``n_trials``, ``seed``, ``path`` (the run
        directory, or None when nothing is saved) and ``started`` (UTC, ISO 8601).
    """


@hookspec
def automl_trial_completed(run, record):
    """Called after every trial of every model, whatever its outcome.

    :param run: the :class:`automl.RunInfo` of ``automl_run_started``.
    :param record: an :class:`automl.TrialRecord`: ``model``, ``number`` (within the model's
        study), ``state`` (``"complete"``, ``"pruned"`` or ``"fail"``), ``params``, ``score``
        (mean CV score, None unless complete), ``duration`` (seconds) and ``error`` (why it
        failed, else ``""``).
    """


@hookspec
def automl_run_finished(run, result):
    """Called once the winner is refit and the run saved (also after an interrupted run was saved).

    :param run: the :class:`automl.RunInfo` of ``automl_run_started``.
    :param result: the :class:`automl.Result` that ``fit_best`` returns.
    """
