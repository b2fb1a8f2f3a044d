"""Ctrl-C held back while a trial is recorded: raised at the end of the block, never inside it."""

import os
import signal
import threading

import pytest

from automl._signals import deliver, uninterrupted


@pytest.fixture
def interrupts_delivered():
    def handler(signum, frame):
        deliver(KeyboardInterrupt(signal.Signals(signum).name))

    previous = signal.signal(signal.SIGINT, handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_a_signal_inside_the_block_is_raised_at_its_end(interrupts_delivered):
    written = []
    with pytest.raises(KeyboardInterrupt, match="SIGINT"):
        with uninterrupted():
            os.kill(os.getpid(), signal.SIGINT)
            written.append("first half")
            with uninterrupted():  # nested: held until the outermost block ends
                written.append("inner")
            written.append("second half")
    assert written == ["first half", "inner", "second half"]


def test_a_signal_outside_any_block_is_raised_at_once(interrupts_delivered):
    with pytest.raises(KeyboardInterrupt):
        os.kill(os.getpid(), signal.SIGINT)
        for _ in range(10**7):  # the handler runs between bytecodes, long before this ends
            pass
    with uninterrupted():
        pass  # nothing held over from before


def test_other_threads_blocks_hold_nothing_back():
    seen = []

    def worker():
        with uninterrupted():
            try:
                deliver(RuntimeError("for the main thread only"))
            except RuntimeError as exc:  # not held: this thread is not in a main-thread block
                seen.append(str(exc))

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert seen == ["for the main thread only"]
