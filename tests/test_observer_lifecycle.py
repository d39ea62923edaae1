"""An observer's lifecycle: `start()` once before anything, `stop()` once after the run let go
of everything (its display's streams given back), on every path; and only on classes that
take part in it (a `threading.Thread` observer keeps its own `start()`)."""

from __future__ import annotations

import threading

import pytest

import milepost


def _observer_threads_gone() -> None:
    """Waits (bounded) until no user-observer thread is left: every call has been made."""
    for thread in threading.enumerate():
        if thread.name == "milepost-observers":
            thread.join(10)


class Lifecycle(milepost.BaseObserver):
    def __init__(self) -> None:
        self.calls: list = []
        self.stopped = threading.Event()

    def start(self) -> None:
        self.calls.append("start")

    def on_event(self, event) -> None:
        if not self.calls or self.calls[-1] != "event":
            self.calls.append("event")

    def close(self) -> None:
        self.calls.append("close")

    def stop(self) -> None:
        self.calls.append("stop")
        self.stopped.set()


@pytest.mark.parametrize("manual", [False, True])
def test_start_and_stop_are_called_once_each_in_order(manual, clock) -> None:
    obs = Lifecycle()
    with milepost.Run("life", display="none", history=False, observers=[obs], clock=clock if manual else None) as run:
        run.phase("p").advance()
    assert obs.stopped.wait(10)
    _observer_threads_gone()
    assert obs.calls == ["start", "event", "close", "stop"]
    run.finish()  # ending again changes nothing
    assert obs.calls.count("stop") == 1


_STREAMS_AT_STOP = r"""
import sys, threading, milepost

class Streams(milepost.BaseObserver):
    def __init__(self):
        self.at_stop = None
        self.stopped = threading.Event()

    def stop(self):
        self.at_stop = (type(sys.stdout).__name__, type(sys.stderr).__name__)
        self.stopped.set()

obs = Streams()
with milepost.Run("let-go", display="native", history=False, observers=[obs]) as run:
    assert run.display == "native"
    run.phase("p").advance()
obs.stopped.wait(10)
print("AT STOP", obs.at_stop)
"""


def test_stop_follows_the_display_giving_the_streams_back(pty_run) -> None:
    result = pty_run(_STREAMS_AT_STOP, timeout=30)
    assert result.status == 0, result.text
    assert "AT STOP ('TextIOWrapper', 'TextIOWrapper')" in result.text


def test_a_run_ended_from_inside_an_observer_still_stops_it_once() -> None:
    class EndsIt(Lifecycle):
        def on_event(self, event) -> None:
            super().on_event(event)
            if event.kind == "log":
                self.run.finish()

    obs = EndsIt()
    run = milepost.Run("inside", display="none", history=False, observers=[obs])
    obs.run = run
    run.start()
    run.log("end now")
    assert obs.stopped.wait(10)
    assert run.finished
    _observer_threads_gone()
    assert obs.calls.count("stop") == 1 and obs.calls[-1] == "stop"


class ThreadObserver(threading.Thread):
    """An observer that is also a thread: its `start()` is the thread's, not the protocol's."""

    interval = None

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.events = 0

    def run(self) -> None:
        pass

    def on_event(self, event) -> None:
        self.events += 1

    def on_snapshot(self, snapshot) -> None:
        pass

    def close(self) -> None:
        pass


def test_a_thread_observer_keeps_its_own_start(caplog) -> None:
    obs = ThreadObserver()
    with milepost.Run("thread-obs", display="none", history=False, observers=[obs]) as run:
        run.phase("p").advance()
    _observer_threads_gone()
    assert run.observer_failures == 0
    assert obs.events >= 3
    obs.start()  # never started by milepost: starting it now is fine
    obs.join(5)


def test_an_observer_that_is_not_a_base_observer_can_ask_for_its_lifecycle() -> None:
    class Plain:
        interval = None
        lifecycle = True

        def __init__(self) -> None:
            self.calls = []

        def start(self) -> None:
            self.calls.append("start")

        def on_event(self, event) -> None:
            pass

        def on_snapshot(self, snapshot) -> None:
            pass

        def close(self) -> None:
            self.calls.append("close")

        def stop(self) -> None:
            self.calls.append("stop")

    obs = Plain()
    with milepost.Run("plain-obs", display="none", history=False, observers=[obs]):
        pass
    _observer_threads_gone()
    assert obs.calls == ["start", "close", "stop"]
