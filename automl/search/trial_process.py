"""The parent's side of trial isolation: a trial process (a child process that fits the trials'
folds, see ``automl.search.trial_process_main``) that can be timed out, killed, replaced. Not to
be confused with a peer worker (``automl worker``, ``automl.fit.peer``), another process that
joins a shared run.

Trial processes are started with the ``forkserver`` method where the platform has it (a clean server
process with scikit-learn and pandas already imported forks each worker in milliseconds), else
``spawn``. Never ``fork``: the parent may hold threads, and forking those can deadlock.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import signal
import sys
import tempfile
import time
from pathlib import Path

import cloudpickle

__all__ = ["TrialFailure", "TrialProcess"]

logger = logging.getLogger(__name__)

POLL_SECONDS = 0.05
START_TIMEOUT = 60.0


class TrialFailure(Exception):
    """A request to the worker did not succeed.

    ``kind`` is ``"error"`` (the code raised; the worker lives on), ``"timeout"``, ``"memory"``
    or ``"crash"`` (the worker is gone and is replaced on the next request); ``reason`` says
    what happened, ``details`` holds the worker's traceback for errors.
    """

    def __init__(self, kind: str, reason: str, details: str = ""):
        super().__init__(reason)
        self.kind = kind
        self.reason = reason
        self.details = details


def _context():
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["automl.search.trial_process_main", "sklearn.pipeline", "pandas", "cloudpickle", "joblib"])
        return ctx
    return multiprocessing.get_context("spawn")


@contextlib.contextmanager
def _main_module_hidden():
    """Keep multiprocessing from re-running the user's script in the worker.

    spawn and forkserver children import the parent's ``__main__`` so that functions defined
    there can be unpickled. Ours need nothing from it (pipelines travel by cloudpickle, which
    carries ``__main__`` classes by value), and re-running it would run a script that calls
    ``fit_best`` at top level, without an ``if __name__ == "__main__"`` guard, again in the worker.
    """
    main = sys.modules.get("__main__")
    saved = {name: main.__dict__[name] for name in ("__file__", "__spec__") if main is not None and name in main.__dict__}
    try:
        for name in saved:
            if name == "__spec__":
                main.__spec__ = None
            else:
                del main.__dict__[name]
        yield
    finally:
        for name, value in saved.items():
            main.__dict__[name] = value


def _rss_mb(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


class TrialProcess:
    """One trial process holding the run's data; requests have a timeout and a memory limit.

    A process that times out, exceeds ``memory_limit`` (MB) or dies is replaced before the next
    request, and the data is sent to the new one.
    """

    def __init__(self, data: dict | bytes, *, threads: int = 1, memory_limit: float | None = None):
        # bytes: the data already pickled (with cloudpickle), shared by several runners
        self._payload = data if isinstance(data, bytes) else cloudpickle.dumps(data)
        self.threads = threads
        self.memory_limit = memory_limit
        self._process = None
        self._conn = None
        self.starts = 0
        #: the pid of the latest worker process, kept after it is stopped (to say who ran a trial)
        self.last_pid: int | None = None
        self.start_seconds = 0.0
        self._restart_estimate = 0.0

    # -- life cycle -------------------------------------------------------------------------
    def ensure_started(self, timeout: float = START_TIMEOUT) -> None:
        if self._process is not None and self._process.is_alive():
            return
        from . import trial_process_main

        started = time.monotonic()
        ctx = _context()
        parent_conn, child_conn = ctx.Pipe()
        # TensorFlow's C++ start-up lines are noise to all but someone debugging (automl -vv)
        native_logs = logging.getLogger("tensorflow").isEnabledFor(logging.DEBUG)
        process = ctx.Process(
            target=trial_process_main.main, args=(child_conn, self.threads, native_logs), daemon=True, name="automl-worker"
        )
        with _main_module_hidden():
            process.start()
        child_conn.close()
        self._process, self._conn = process, parent_conn
        self.last_pid = process.pid
        self.starts += 1
        sending = time.monotonic()
        self._call("data", (self._payload,), timeout=timeout)
        self.start_seconds = time.monotonic() - started
        # the first start also boots the forkserver; a replacement only forks and takes the data
        self._restart_estimate = self.start_seconds if self.starts > 1 else time.monotonic() - sending
        logger.debug("worker %d ready in %.2f s", process.pid, self.start_seconds)

    def kill(self) -> None:
        process, self._process = self._process, None
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if process is not None and process.is_alive():
            process.kill()
        if process is not None:
            process.join(timeout=5)

    close = kill

    @property
    def restart_seconds(self) -> float:
        """Seconds the next request spends starting a worker first: none while one is alive."""
        alive = self._process is not None and self._process.is_alive()
        return 0.0 if alive else self._restart_estimate

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    # -- requests ---------------------------------------------------------------------------
    def fit_fold(self, pipeline, k: int, timeout: float) -> dict:
        return self.request("fold", cloudpickle.dumps(pipeline), k, timeout=timeout)

    def refit(self, pipeline, *, on_search_rows: bool, timeout: float, max_rows: int | None = None, seed: int = 0) -> dict:
        """Fit on the search rows (and score the test rows) or on every row; on a seeded sample of
        ``max_rows`` of them when that is given and smaller. The model fitted on every row comes
        back as ``answer["model"]``, its joblib bytes, written by the worker to a file of ours."""
        payload = cloudpickle.dumps(pipeline)
        if on_search_rows:
            return self.request("refit", payload, True, max_rows, seed, timeout=timeout)
        with tempfile.TemporaryDirectory(prefix="automl-refit-") as folder:
            path = Path(folder) / "model.joblib"
            answer = self.request("refit", payload, False, max_rows, seed, str(path), timeout=timeout)
            answer["model"] = path.read_bytes()
        return answer

    def request(self, kind: str, *args, timeout: float):
        """Send one request and wait for its answer; raises :class:`TrialFailure`.

        ``timeout`` covers starting a replacement worker too, when the last one was lost.
        """
        deadline = time.monotonic() + timeout
        self.ensure_started(timeout=max(0.1, timeout))
        return self._call(kind, args, timeout=deadline - time.monotonic())

    def _call(self, kind: str, args: tuple, *, timeout: float):
        try:
            self._conn.send((kind, *args))
        except (BrokenPipeError, OSError):
            raise self._lost("the worker process died") from None
        deadline = time.monotonic() + max(0.0, timeout)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                self.kill()
                raise TrialFailure("timeout", f"still running after {timeout:.1f} s, stopped")
            try:
                ready = self._conn.poll(min(POLL_SECONDS, left))
            except (EOFError, OSError):
                raise self._lost("the worker process died") from None
            if ready:
                try:
                    answer = self._conn.recv()
                except (EOFError, OSError):
                    raise self._lost("the worker process died") from None
                if answer[0] == "ok":
                    return answer[1]
                raise TrialFailure("error", answer[1], details=answer[2])
            if self.memory_limit is not None:
                rss = _rss_mb(self._process.pid)
                if rss is not None and rss > self.memory_limit:
                    self.kill()
                    raise TrialFailure(
                        "memory",
                        f"memory limit exceeded: the worker used {rss:.0f} MB (memory_limit={self.memory_limit:g} MB), stopped",
                    )
            if not self._process.is_alive():
                raise self._lost("the worker process died")

    def _lost(self, what: str) -> TrialFailure:
        process = self._process
        code = None
        if process is not None:
            process.join(timeout=5)
            code = process.exitcode
        self.kill()
        if code is not None and code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            hint = " (the system may have run out of memory)" if name == "SIGKILL" else ""
            return TrialFailure("crash", f"{what}, killed by {name}{hint}")
        return TrialFailure("crash", f"{what} with exit code {code}")
