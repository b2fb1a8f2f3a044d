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
