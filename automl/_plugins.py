"""Plugin discovery: one door for built-in and third-party model plugins.

Plugins come from the ``automl.plugins`` entry-point group (our own built-ins are listed
there in ``pyproject.toml``) and from objects passed per call. A plugin that fails to import
is reported in a warning and skipped; the rest still run.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import importlib.util
import logging
import sys
import warnings
from collections.abc import Iterable

import pluggy

from . import hookspecs
from ._exceptions import PluginError
from ._spec import ModelSpec

__all__ = ["ENTRY_POINT_GROUP", "get_plugin_manager", "collect_models", "collect_portfolio_entries", "list_models"]

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "automl.plugins"


@dataclasses.dataclass(frozen=True)
class RegisteredModel:
    """A ModelSpec together with where it came from, and which of the modules it requires
    (``ModelSpec.requires``) cannot be found here: when any cannot, the model is not installed."""

    spec: ModelSpec
    plugin: str
    distribution: str
    missing: tuple[str, ...] = ()

    @property
    def install_hint(self) -> str:
        """The command that installs what is missing (``ModelSpec.install_hint``, else a plain pip install)."""
        return self.spec.install_hint or f"pip install {' '.join(self.missing or self.spec.requires)}"


class PluginManager(pluggy.PluginManager):
    """pluggy's manager, also remembering which distribution provided each plugin."""

    def __init__(self) -> None:
        super().__init__("automl")
        self.add_hookspecs(hookspecs)
        self.distributions: dict[str, str] = {}


def get_plugin_manager(plugins: Iterable[object] = ()) -> PluginManager:
    """A fresh plugin manager with the entry-point plugins and ``plugins`` registered."""
    pm = PluginManager()
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = ep.dist.name if ep.dist is not None else "?"
        if pm.get_plugin(ep.name) is not None or pm.is_blocked(ep.name):
            taken = pm.distributions.get(ep.name)
            if taken not in (None, dist):  # the same distribution seen twice is no conflict
                warnings.warn(
                    f"automl: plugin entry point {ep.name!r} from distribution {dist!r} is skipped: "
                    f"distribution {taken!r} registers an entry point of that name; rename one of them",
                    RuntimeWarning,
                    stacklevel=2,
                )
            continue
        try:
            plugin = ep.load()
        except Exception as exc:  # a broken third-party plugin must not take the others down
            warnings.warn(
                f"automl: plugin {ep.name!r} (entry point {ep.value!r} from distribution "
                f"{dist!r}) failed to import and is skipped: {type(exc).__name__}: {exc}",
                RuntimeWarning,
                stacklevel=2,
            )
            continue
        pm.register(plugin, name=ep.name)
        pm.distributions[ep.name] = dist
    for plugin in plugins:
        name = pm.register(plugin)
        pm.distributions[name] = "(passed to fit_best)"
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginError(
            f"plugin {exc.plugin!r} has a hook implementation that matches no automl hook: {exc}. "
            "Check the function name against automl.hookspecs (e.g. 'automl_models')."
        ) from exc
    return pm


def call_each(pm: PluginManager, hook: str, consequence: str = "", **kwargs):
    """Call every implementation of ``hook`` with the arguments it takes; yield
    ``(plugin_name, result)``. One that raises is reported in a warning and skipped."""
    for impl in getattr(pm.hook, hook).get_hookimpls():  # registration order: built-ins first
        try:
            result = impl.function(*[kwargs[name] for name in impl.argnames])
        except Exception as exc:
            warnings.warn(
                f"automl: plugin {impl.plugin_name!r} raised in {hook}: {type(exc).__name__}: {exc}{consequence}",
                RuntimeWarning,
                stacklevel=3,
            )
            continue
        yield impl.plugin_name, result


def collect_models(pm: PluginManager, *, include_missing: bool = False) -> dict[str, RegisteredModel]:
    """Call every ``automl_models`` implementation; return models by name.

    Duplicate names are a :class:`PluginError` naming both providers (a model that is not
    installed counts too). An implementation that raises is skipped with a warning. A model
    whose ``ModelSpec.requires`` names a module that cannot be found is left out, with a debug
    log, unless ``include_missing`` (for ``automl models``, which lists it as not installed).
    """
    models: dict[str, RegisteredModel] = {}
    for plugin_name, specs in call_each(pm, "automl_models", "; its models are skipped"):
        if specs is None:
            continue
        if isinstance(specs, ModelSpec) or not isinstance(specs, Iterable):
            raise PluginError(
                f"plugin {plugin_name!r}: automl_models() must return a list of "
                f"automl.ModelSpec, got {type(specs).__name__}"
            )
        for spec in specs:
            if not isinstance(spec, ModelSpec):
                raise PluginError(
                    f"plugin {plugin_name!r}: automl_models() returned a "
                    f"{type(spec).__name__} where an automl.ModelSpec was expected"
                )
            if spec.name in models:
                raise PluginError(
                    f"model name {spec.name!r} is provided twice: by plugin "
                    f"{models[spec.name].plugin!r} and by plugin {plugin_name!r}. "
                    "Model names must be unique; rename one, or block a plugin."
                )
            models[spec.name] = RegisteredModel(
                spec=spec,
                plugin=plugin_name,
                distribution=pm.distributions.get(plugin_name, "?"),
                missing=_missing_modules(spec.requires),
            )
    if include_missing:
        return models
    for name, model in list(models.items()):
        if model.missing:
            logger.debug("model %r is not used: %s not installed (%s)", name, ", ".join(model.missing), model.install_hint)
            del models[name]
    return models


def collect_portfolio_entries(pm: PluginManager, task: str, models: dict[str, RegisteredModel]) -> list[tuple[str, dict]]:
    """Every ``automl_portfolio`` implementation's entries for ``task``, as ``(model, params)``
    in registration order; an entry that is not for one of the plugin's own ``models`` is
    skipped with a warning."""
    entries: list[tuple[str, dict]] = []
    for plugin_name, returned in call_each(pm, "automl_portfolio", "; its portfolio entries are skipped", task=task):
        for entry in returned or ():
            model = entry.get("model") if isinstance(entry, dict) else None
            if model not in models or models[model].plugin != plugin_name or not isinstance(entry.get("params"), dict):
                warnings.warn(
                    f"automl: plugin {plugin_name!r} returned a portfolio entry that is not "
                    f"{{'model': one of its own models, 'params': {{...}}}}: {entry!r}; it is skipped",
                    RuntimeWarning,
                    stacklevel=2,
                )
                continue
            entries.append((model, dict(entry["params"])))
    return entries


def _missing_modules(names: tuple[str, ...]) -> tuple[str, ...]:
    """The modules of ``names`` that cannot be imported here; found without importing them."""
    def found(name: str) -> bool:
        if name in sys.modules:  # imported already, or blocked (None: `import` raises ImportError)
            return sys.modules[name] is not None
        return importlib.util.find_spec(name) is not None

    return tuple(name for name in names if not found(name))


def list_models(task: str | None = None, plugins: Iterable[object] = ()) -> list[str]:
    """Names of the registered models, optionally only those that support ``task``."""
    from .data.schema import check_task_name

    if task is not None:
        check_task_name(task, allow_auto=False)
    models = collect_models(get_plugin_manager(plugins))
    return sorted(name for name, m in models.items() if task is None or task in m.spec.tasks)
