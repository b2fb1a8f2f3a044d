"""The progress display of a running search.

Three forms, chosen by where the output goes:

- ``live``: a block of lines at the bottom of a terminal, redrawn twice a second, with log
  records scrolling above it (the terminal's stream handlers are routed through the block);
- ``notebook``: the same text in a Jupyter output cell, updated in place;
- ``lines``: for CI logs and pipes, one plain line every ``interval`` seconds and at the end.

It only reads the search's counters; it never decides anything, and a failure to draw is
ignored rather than allowed to disturb the search.
"""

from __future__ import annotations

import io
import logging
import shutil
import sys
import threading
import time
from collections.abc import Sequence
from typing import TextIO

__all__ = ["ProgressDisplay", "choose_mode"]

logger = logging.getLogger(__name__)

LIVE_REFRESH_SECONDS = 0.5
NOTEBOOK_REFRESH_SECONDS = 1.0


def choose_mode(verbose: int, stream: TextIO) -> str:
    """``"off"`` for ``verbose=0``; else ``"notebook"`` in a Jupyter kernel, ``"live"`` on a
    terminal, ``"lines"`` otherwise."""
    if not verbose:
        return "off"
    if _in_notebook():
        return "notebook"
    try:
        interactive = stream.isatty()
    except (AttributeError, ValueError):
        interactive = False
    return "live" if interactive else "lines"


def _in_notebook() -> bool:
    if "ipykernel" not in sys.modules:  # never import IPython ourselves
        return False
    try:
        from IPython import get_ipython

        shell = get_ipython()
    except Exception:  # noqa: BLE001 - any failure means: not a notebook we can draw in
        return False
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


class ProgressDisplay:
    """Shows elapsed and remaining budget, trials per model (complete / pruned / failed) and the
    best score so far, while :func:`automl.fit_best` runs.

    :param searches: the :class:`automl.search.studies.ModelSearch` objects of the run (read only).
    :param interval: seconds between plain lines in ``lines`` mode (default: a tenth of the
        budget, between 5 and 30 s).
    """

    def __init__(
        self,
        searches: Sequence,
        metric: str,
        started: float,
        time_budget: float | None,
        *,
        mode: str,
        stream: TextIO | None = None,
        interval: float | None = None,
    ):
        self.searches = searches
        self.metric = metric
        self.started = started
        self.time_budget = time_budget
        self.mode = mode
        self.stream = stream if stream is not None else sys.stderr
        if interval is None:
            interval = min(30.0, max(5.0, time_budget / 10)) if time_budget else 10.0
        self.interval = interval
        self.phase = "searching"
        #: (name, score) of the model saved, once chosen: an ensemble, or the best model
        self.saved: tuple[str, float] | None = None
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._drawn = 0  # lines of the live block now on screen
        self._rerouted: list[tuple[logging.StreamHandler, TextIO]] = []
        self._notebook_handle = None

    # -- what is shown ------------------------------------------------------------------------

    def lines(self) -> list[str]:
        """The display's text, one string per line."""
        elapsed = time.monotonic() - self.started
        if self.phase == "done":
            clock = f"finished in {elapsed:.1f}s" + (f" of a {self.time_budget:g}s budget" if self.time_budget else "")
        elif self.time_budget:
            clock = f"{elapsed:5.1f}s elapsed, {max(0.0, self.time_budget - elapsed):5.1f}s left of {self.time_budget:g}s"
        else:
            clock = f"{elapsed:5.1f}s elapsed, no time limit"
        scored = [s for s in self.searches if s.best is not None]
        leader = max(scored, key=lambda s: s.best) if scored else None
        best = f"best {leader.name} {self.metric} {leader.best:.4f}" if leader else "no model scored yet"
        if self.saved is not None:
            best = f"best {self.saved[0]} {self.metric} {self.saved[1]:.4f}"
        rows = [f"automl {self.phase}: {clock} | {best}"]
        width = max((len(s.name) for s in self.searches), default=0)
        for s in self.searches:
            pruned = max(0, s.started - s.completed - s.failed - s.running)
            score = f"best {s.best:.4f}" if s.best is not None else ""
            marker = f"  <- {s.running} running" if s.running > 1 else "  <- running" if s.running else ""
            rows.append(
                f"  {s.name:<{width}}  {s.started:3d} trials: {s.completed} complete, {pruned} pruned, "
                f"{s.failed} failed  {score}{marker}".rstrip()
            )
        return rows

    def summary(self) -> str:
        """The display as one line (for logs and pipes)."""
        head, *models = self.lines()
        parts = []
        for s in self.searches:
            pruned = max(0, s.started - s.completed - s.failed - s.running)
            parts.append(f"{s.name} {s.completed}/{pruned}/{s.failed}")
        return f"{head} | trials complete/pruned/failed: {', '.join(parts)}"

    # -- life cycle ---------------------------------------------------------------------------

    def start(self) -> ProgressDisplay:
        if self.mode == "off":
            return self
        if self.mode == "live":
            self._reroute_log_handlers()
        self._thread = threading.Thread(target=self._run, name="automl-progress", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Draw the final state (it stays on screen) and stop redrawing."""
        if self.mode == "off" or self._thread is None:
            return
        self._stop.set()
        self._thread.join(timeout=2.0)
        self.phase = "done"
        with self._lock:
            self._draw(final=True)
            self._restore_log_handlers()

    def __enter__(self) -> ProgressDisplay:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _run(self) -> None:
        pause = {"live": LIVE_REFRESH_SECONDS, "notebook": NOTEBOOK_REFRESH_SECONDS}.get(self.mode, self.interval)
        while not self._stop.wait(pause):
            with self._lock:
                self._draw()

    # -- drawing ------------------------------------------------------------------------------

    def _draw(self, final: bool = False) -> None:
        try:
            if self.mode == "live":
                self._clear()
                width = shutil.get_terminal_size((100, 20)).columns - 1
                rows = [r if len(r) <= width else r[: width - 1] + "…" for r in self.lines()]
                self._write("\n".join(rows) + "\n")
                self._drawn = 0 if final else len(rows)
            elif self.mode == "notebook":
                self._draw_notebook()
            elif self.mode == "lines":
                self._write(self.summary() + "\n")
        except Exception:  # noqa: BLE001 - a display must never break the search
            logger.debug("progress display failed", exc_info=True)

    def _clear(self) -> None:
        if self._drawn:
            # to the start of the block's first line, then clear to the end of the screen
            self._write(f"\x1b[{self._drawn}F\x1b[J")
            self._drawn = 0

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()

    def _draw_notebook(self) -> None:
        from IPython.display import display, update_display

        text = {"text/plain": "\n".join(self.lines())}
        if self._notebook_handle is None:
            self._notebook_handle = f"automl-progress-{id(self)}"
            display(text, raw=True, display_id=self._notebook_handle)
        else:
            update_display(text, raw=True, display_id=self._notebook_handle)

    # -- log records scroll above the live block ----------------------------------------------

    def _reroute_log_handlers(self) -> None:
        targets = {id(self.stream), id(sys.stderr), id(sys.__stderr__)}
        loggers = [logging.getLogger(), logging.getLogger("automl")]
        for handler in {h for lg in loggers for h in lg.handlers}:
            if isinstance(handler, logging.StreamHandler) and id(handler.stream) in targets:
                self._rerouted.append((handler, handler.setStream(_AboveTheBlock(self, handler.stream))))

    def _restore_log_handlers(self) -> None:
        for handler, stream in self._rerouted:
            handler.setStream(stream)
        self._rerouted.clear()


class _AboveTheBlock(io.TextIOBase):
    """A stream that clears the live block, writes, and lets the next redraw put it back."""

    def __init__(self, display: ProgressDisplay, stream: TextIO):
        self._display = display
        self._stream = stream

    def write(self, text: str) -> int:
        with self._display._lock:
            self._display._clear()
            self._stream.write(text)
            if text.endswith("\n") and not self._display._stop.is_set():
                self._display._draw()
        return len(text)

    def flush(self) -> None:
        self._stream.flush()

    def isatty(self) -> bool:
        return self._stream.isatty()
