"""Group "stream": `item.stream(token)` once per token, as a job streaming an LLM's output calls it.

Every contender walks the same list of short tokens (a word and a space, as a model's chunks
are). `bare` does nothing with them, so the overhead column is what handling one token costs;
`C call` hands each to a no-op C function (the floor for any call from Python); `python tail`
keeps the last 400 characters in Python (`tail = (tail + token)[-400:]`, the string work a job
would do to show its own tail); `milepost` is `item.stream(token)` inside an item of a running
run, on a worker lane (`run.lane`, as in the pools) and without one (a plain `with
task.item()`), whose tails are kept by the core and shown by the displays.
"""

from __future__ import annotations

from typing import Any, Callable, List

import pytest

import milepost

pytestmark = pytest.mark.benchmark(group="stream")

N = 200_000
TOKENS = [f"word{i % 1000} " for i in range(N)]


def each(f: Callable[[str], Any], tokens: List[str]) -> None:
    for token in tokens:
        f(token)


def empty(tokens: List[str]) -> None:
    for _ in tokens:
        pass


def python_tail(tokens: List[str]) -> str:
    tail = ""
    for token in tokens:
        tail = (tail + token)[-400:]
    return tail


def test_bare(per_item):
    per_item("bare", N, empty, lambda: (TOKENS,))


def test_c_call(per_item):
    per_item("C call", N, each, lambda: (str.isspace, TOKENS))


def test_python_tail(per_item):
    assert per_item("python tail", N, python_tail, lambda: (TOKENS,)).endswith("word999 ")


class Streaming:
    """A running run with an item in flight (on a lane, or not), made fresh for each round:
    the previous round's item, lane and run end first."""

    def __init__(self, on_lane: bool) -> None:
        self.on_lane = on_lane
        self.open: List[Any] = []

    def setup(self) -> tuple:
        self.close()
        run = milepost.Run("stream", display="none").start()
        lane = run.lane("w0") if self.on_lane else None
        if lane is not None:
            lane.__enter__()
        item = run.phase("generate", total=1).item("persona-1")
        item.__enter__()
        self.open = [run, lane, item]
        return (item.stream, TOKENS)

    def close(self) -> None:
        if self.open:
            run, lane, item = self.open
            shown = run.snapshot().data
            tail = shown["lanes"][0]["tail"] if lane is not None else shown["root"]["children"][0]["tail"]
            assert tail.endswith("word999 ") and len(tail) == 400, tail
            item.__exit__(None, None, None)
            if lane is not None:
                lane.__exit__(None, None, None)
            run.finish()
            self.open = []


@pytest.mark.parametrize("on_lane", [True, False], ids=["lane", "no lane"])
def test_milepost_stream(per_item, on_lane):
    streaming = Streaming(on_lane)
    per_item("milepost, lane" if on_lane else "milepost, no lane", N, each, streaming.setup)
    streaming.close()
