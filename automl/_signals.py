"""Ctrl-C and SIGTERM held back while a storage write must not be cut in half.

``fit_best`` turns both signals into :class:`automl.Interrupted`, raised in the main thread
wherever it happens to be. Raised inside Optuna's journal storage, between taking its file lock
and releasing it, the exception leaves the lock half released (a ``FileNotFoundError`` follows)
and the trial unrecorded. Code that records a trial runs ``with uninterrupted():``; a signal
handler calls :func:`deliver`, which raises at once outside such a block and at its end inside.
"""

from __future__ import annotations

import contextlib
import threading

__all__ = ["deliver", "uninterrupted"]

_depth = 0  # how many uninterrupted() blocks the main thread is in
_pending: list[BaseException] = []


@contextlib.contextmanager
def uninterrupted():
    """Hold back :func:`deliver`'s exception until the block ends (main thread only: signal
    handlers run there, and other threads are never interrupted by them)."""
    global _depth
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
        if _depth == 0 and _pending:
            held = _pending.pop()
            _pending.clear()
            raise held


def deliver(exc: BaseException) -> None:
    """Raise ``exc`` now, or when the main thread leaves its ``uninterrupted()`` block."""
    if _depth:
        _pending.append(exc)
        return
    raise exc
