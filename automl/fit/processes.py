"""The processes of a run: starting its trial processes, turning SIGTERM into an interrupt while
it searches, and gathering the trials of peer workers when a shared search ends."""

from __future__ import annotations

import contextlib
import logging
import signal
import statistics
import threading
import time

from .._exceptions import InputError, Interrupted, SearchError
from .._signals import deliver
from ..search.storage import REREAD_SECONDS, SharedRun, wait_for_running_trials
from ..search.studies import ModelSearch
from ..search.trial_process import TrialFailure, TrialProcess

__all__ = ["start_trial_processes", "signals_as_interrupts", "gather_peers"]

logger = logging.getLogger(__name__)


def start_trial_processes(runners: list[TrialProcess], memory_limit: float | None) -> None:
    """Start the trial processes side by side (each loads the data)."""
    failures: list[TrialFailure] = []

    def start(runner: TrialProcess) -> None:
        try:
            runner.ensure_started()
        except TrialFailure as failure:
            failures.append(failure)

    threads = [threading.Thread(target=start, args=(r,), daemon=True) for r in runners[1:]]
    for thread in threads:
        thread.start()
    start(runners[0])
    for thread in threads:
        thread.join()
    if failures:
        failure = failures[0]
        if failure.kind == "memory":
            raise InputError(
                f"memory_limit={memory_limit:g} MB is below what a worker needs with this data loaded "
                f"({failure.reason}); raise memory_limit"
            ) from None
        raise SearchError(f"the worker process could not start: {failure.reason}") from None


def gather_peers(shared_run: SharedRun, searches: list[ModelSearch], stop_at, interrupted: str | None) -> None:
    """End the shared search so that the result holds every trial the database will hold: let the
    peers finish the trials they run while search time is left (a trial cap stops this process
    first), then tell them to stop and wait a moment for those that stop at a fold's end."""
    studies = [search.study for search in searches]
    if not interrupted:
        wait_for_running_trials(studies, until=stop_at())
    shared_run.update(state="refitting")  # the peers start no more trials
    # a peer sees the new state within REREAD_SECONDS and stops after the fold it fits
    fold = max((statistics.mean(s.fold_fit_seconds) for s in searches if s.fold_fit_seconds), default=0.0)
    still = wait_for_running_trials(studies, until=time.monotonic() + REREAD_SECONDS + min(2 * fold, 30.0))
    if still:
        logger.warning("%d trial(s) of other workers still running are left out of this run's result", still)
    for search in searches:
        search.sync()  # the best trials of every peer


@contextlib.contextmanager
def signals_as_interrupts():
    """SIGTERM (and SIGINT, as usual) raise :class:`Interrupted` while the search runs."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        deliver(Interrupted(signal.Signals(signum).name))  # after a storage write under way

    previous = {}
    for signum in (signal.SIGINT, signal.SIGTERM):
        current = signal.getsignal(signum)
        # leave handlers that the application installed alone
        if current in (signal.default_int_handler, signal.SIG_DFL):
            previous[signum] = current
            signal.signal(signum, handler)
    try:
        yield
    finally:
        for signum, current in previous.items():
            signal.signal(signum, current)
