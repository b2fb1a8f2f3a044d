"""A portfolio: starting configurations in the order that past datasets say to try them.

The built-in portfolio (``portfolio.json`` beside this module) was chosen offline, per task, on a
corpus of datasets that are not in the benchmark suite: ``benchmarks/meta_learn.py`` scores
candidate configurations of every built-in model, ``benchmarks/portfolio.py`` orders them
greedily; the file records its provenance. A run uses the entries of its task whose models it
searches:

- each such model's study is given its entries (in order) instead of its defaults, so its
  first trial is its best entry; a model without entries (a third-party plugin, a family the
  portfolio left out) keeps its defaults;
- the first round tries the models in the order of their first entry, then the others,
  cheapest first; each still gets its first trial within its fair share;
- a plugin can add entries for its own models through the ``automl_portfolio`` hook: they
  are appended for the models the portfolio has no entries of;
- then the remaining entries run in the portfolio's order, across models, before the
  upper-confidence allocation and TPE take over; the entries count as the study's trials, so
  TPE learns from them.

A warm start goes first: its configurations and ranking come before the portfolio's.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .._exceptions import InputError

__all__ = ["Portfolio", "PACKAGE_FILE"]

logger = logging.getLogger(__name__)

PACKAGE_FILE = Path(__file__).with_name("portfolio.json")
TASKS = ("binary", "multiclass", "regression")


@dataclasses.dataclass(frozen=True)
class Portfolio:
    """Ordered ``(model, params)`` entries per task, and where they come from."""

    tasks: Mapping[str, tuple[tuple[str, dict], ...]]
    provenance: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    source: str = "given"
    #: the models whose entries a plugin added (``extended``)
    plugin_models: tuple[str, ...] = ()

    @classmethod
    def resolve(cls, choice: Any) -> Portfolio | None:
        """``fit_best(portfolio=...)``: True (the built-in one), False or None (none), a path to a
        JSON file, or a mapping shaped like the file (``{"tasks": {task: [{"model", "params"}]}}``)."""
        if choice is False or choice is None:
            return None
        if choice is True:
            if not PACKAGE_FILE.exists():
                logger.debug("no built-in portfolio at %s: each model starts from its defaults", PACKAGE_FILE)
                return None
            return cls.from_mapping(_read(PACKAGE_FILE), "built-in")
        if isinstance(choice, (str, os.PathLike)):
            return cls.from_mapping(_read(Path(choice)), str(choice))
        if isinstance(choice, Mapping):
            return cls.from_mapping(choice, "given")
        raise InputError(f"portfolio must be True, False, a path to a portfolio JSON file or a mapping, got {choice!r}")

    @classmethod
    def from_mapping(cls, data: Mapping, source: str) -> Portfolio:
        tasks = data.get("tasks") if isinstance(data, Mapping) else None
        if not isinstance(tasks, Mapping):
            raise InputError(f"portfolio {source}: expected a 'tasks' mapping of task to entries")
        parsed = {}
        for task, entries in tasks.items():
            if task not in TASKS:
                raise InputError(f"portfolio {source}: unknown task {task!r}; tasks are {', '.join(TASKS)}")
            parsed[task] = tuple(_entry(e, source, task) for e in entries)
        return cls(parsed, dict(data.get("provenance") or {}), source)

    def extended(self, task: str, entries: list[tuple[str, dict]]) -> Portfolio:
        """This portfolio with ``entries`` (a plugin's, ``automl_portfolio``) appended to
        ``task``'s, for the models it has none of."""
        covered = {model for model, _ in self.tasks.get(task, ())}
        added = tuple((m, p) for m, p in entries if m not in covered)
        if not added:
            return self
        tasks = {**self.tasks, task: tuple(self.tasks.get(task, ())) + added}
        return dataclasses.replace(self, tasks=tasks, plugin_models=tuple(sorted({m for m, _ in added})))

    def entries(self, task: str, models: list[str]) -> list[tuple[str, dict]]:
        """The task's entries whose model is searched, in order, without repeats."""
        seen, out = set(), []
        for model, params in self.tasks.get(task, ()):
            key = (model, json.dumps(params, sort_keys=True, default=str))
            if model in models and key not in seen:
                seen.add(key)
                out.append((model, params))
        return out

    def describe(self, task: str, models: list[str]) -> dict:
        """What the manifest records of the portfolio a run used."""
        used = self.entries(task, models)
        return {"source": self.source, "entries": len(used), "models": sorted({m for m, _ in used}),
                "from_plugins": [m for m in self.plugin_models if m in models], "provenance": dict(self.provenance)}


def _entry(entry: Any, source: str, task: str) -> tuple[str, dict]:
    if not isinstance(entry, Mapping) or not isinstance(entry.get("model"), str) or not isinstance(entry.get("params"), Mapping):
        raise InputError(f"portfolio {source}: an entry of {task!r} must be {{'model': name, 'params': {{...}}}}, got {entry!r}")
    return entry["model"], dict(entry["params"])


def _read(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(f"portfolio file {path} does not exist") from None
    except ValueError as error:
        raise InputError(f"portfolio file {path} is not JSON: {error}") from None


def first_round_ranks(entries: list[tuple[str, dict]]) -> dict[str, int]:
    """Each model's position by its first entry: the first round's order."""
    ranks: dict[str, int] = {}
    for model, _ in entries:
        ranks.setdefault(model, len(ranks))
    return ranks


def later_queue(entries: list[tuple[str, dict]]) -> list[str]:
    """The models of the entries after each model's first (the first round runs those), in order."""
    seen, queue = set(), []
    for model, _ in entries:
        if model in seen:
            queue.append(model)
        seen.add(model)
    return queue
