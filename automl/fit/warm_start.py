"""Warm starts: a new search that begins where a saved run left off.

The saved run's best configurations of each model are enqueued in the new studies before
anything else, and the models are tried in the order of the saved leaderboard, so a retrain on
new data reaches the old quality in its first trials instead of rediscovering it.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
from pathlib import Path

from .._exceptions import InputError
from ..store.result import Result

__all__ = ["WarmStart", "read_warm_start"]

logger = logging.getLogger(__name__)

#: Configurations taken from each model of the saved run, best first.
CONFIGURATIONS_PER_MODEL = 3


@dataclasses.dataclass(frozen=True)
class WarmStart:
    """What a saved run hands to a new search.

    :ivar source: the saved run directory (or ``"<Result>"`` for an unsaved result).
    :ivar configurations: per model name, the trial parameters to enqueue first, best first.
    :ivar ranking: model names in the order of the saved leaderboard (models with a completed
        trial only); the new search tries them first, in this order.
    """

    source: str
    configurations: dict[str, list[dict]]
    ranking: tuple[str, ...]

    def describe(self) -> dict:
        return {"from": self.source, "enqueued": {m: len(c) for m, c in self.configurations.items()}}


def read_warm_start(previous: str | os.PathLike | Result, task: str, models: list[str]) -> WarmStart:
    """The best configurations of ``models`` in a saved run (a directory or a :class:`Result`).

    :raises InputError: when the run cannot be read or was made for another task.
    """
    if isinstance(previous, Result):
        result, source = previous, str(previous.path) if previous.path else "<Result>"
    else:
        from .._exceptions import RunDirectoryError
        from ..store.persist import load

        source = str(previous)
        if not Path(previous).is_dir():
            raise InputError(f"warm_start={source!r}: no such run directory")
        try:
            result = load(previous)
        except RunDirectoryError as exc:
            raise InputError(f"warm_start={source!r} cannot be used: {exc}") from None
    if result.task != task:
        raise InputError(
            f"warm_start={source!r} is a {result.task} run, but this data is a {task} task; "
            "warm-start only from a run on the same kind of target"
        )
    trials = result.trials
    complete = trials[(trials["state"] == "complete") & trials["score"].notna()]
    configurations: dict[str, list[dict]] = {}
    for model in models:
        own = complete[complete["model"] == model].sort_values("score", ascending=False, kind="stable")
        chosen: list[dict] = []
        for params in own["params"]:
            params = json.loads(params) if isinstance(params, str) else dict(params)
            if params not in chosen:
                chosen.append(params)
            if len(chosen) == CONFIGURATIONS_PER_MODEL:
                break
        if chosen:
            configurations[model] = chosen
    board = result.leaderboard
    ranking = tuple(
        m for m, score in zip(board["model"], board["score"]) if m in configurations and not math.isnan(float(score))
    )
    if not configurations:
        logger.warning(
            "warm start from %s: it has no completed trial of %s; starting cold", source, ", ".join(models)
        )
    else:
        logger.info(
            "warm start from %s: %s", source,
            ", ".join(f"{m} ({len(c)} configuration(s))" for m, c in configurations.items()),
        )
    return WarmStart(source=source, configurations=configurations, ranking=ranking)
