"""The live streams of a run, SSE and WebSocket: both follow a channel in *turns*.

A turn sends, in one write, what is new since the stream's last turn: the events (at most
`MAX_BATCH`, the latest; a stream further behind is told what it skipped), the latest snapshot,
and `end` once the run's observer has closed. Between turns a stream sleeps for its gap
(`1 / MAX_SNAPSHOT_HZ`, longer past `SNAPSHOT_BUDGET / MAX_SNAPSHOT_HZ` streams), waking early
only for the end of the run or the client leaving: so serving many clients on a busy run costs
a bounded number of writes a second, and a client that went away is noticed at once instead of
being written to until the loop gets round to it.

The SSE response itself is sse-starlette's: headers, keep-alive comments, a per-write timeout
for a client that stops reading, and the disconnect that cancels the stream at once. The turns
are milepost's: they are what bounds what a stream holds and what watching costs the job.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, AsyncIterator, List, NamedTuple, Optional, Tuple

from sse_starlette import EventSourceResponse
from sse_starlette.sse import SendTimeoutError
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect

from .frames import SEP, comment, frame
from .hub import Channel, Entry

#: Seconds between keep-alive comments (proxies close silent connections).
KEEPALIVE = 15.0
#: Snapshots sent a second, all streams of the process together: past a handful of watchers,
#: each gets them less often, so that serving them never costs the job more than a little.
SNAPSHOT_BUDGET = 100.0
MAX_SNAPSHOT_HZ = 5.0
#: Events a stream sends in one turn at most (what a stream holds is bounded by this).
MAX_BATCH = 100
#: Seconds a write may wait for a client that reads nothing before the stream is dropped.
SEND_TIMEOUT = 10.0
END = frame("end", "{}")

_open = 0  # open streams in this process (on the server's loop only)


def open_streams() -> int:
    """SSE and WebSocket streams open in this process now."""
    return _open


class Turn(NamedTuple):
    events: List[Entry]
    skipped: Optional[Tuple[int, int]]  # ids (first, last) this stream did not get
    snapshot: Optional[Tuple[str, bytes]]  # (json, SSE frame)
    end: bool


def _gap() -> float:
    return max(1.0 / MAX_SNAPSHOT_HZ, _open / SNAPSHOT_BUDGET)


async def _until(timeout: Optional[float], *futures: asyncio.Future[Any]) -> None:
    """Waits until one of `futures` is done or `timeout` seconds pass (None: no limit). A bare
    future and a timer: no task is made per wait."""
    loop = asyncio.get_running_loop()
    woken: asyncio.Future[None] = loop.create_future()

    def wake(_: Any) -> None:
        if not woken.done():
            woken.set_result(None)

    timer = loop.call_later(timeout, wake, None) if timeout is not None else None
    for fut in futures:
        fut.add_done_callback(wake)
    try:
        await woken
    finally:
        if timer is not None:
            timer.cancel()
        for fut in futures:
            fut.remove_done_callback(wake)


async def turns(ch: Channel, last: int, gone: Optional[asyncio.Future[None]] = None) -> AsyncIterator[Turn]:
    """The turns of a stream resuming after event id `last`, until the channel's end has been
    sent or the client is `gone` (an SSE stream has no such future: its response cancels it)."""
    seq = 0  # no snapshot before the first one is published
    leaving = [gone] if gone is not None else []
    while gone is None or not gone.done():
        closed = ch.finished  # read first: all that was published before the close is in this turn
        events, skipped = ch.batch_after(last, None if closed else MAX_BATCH)
        if events:
            last = events[-1].id
        snapshot = None
        if ch.snapshot_seq != seq:
            seq, text, encoded = ch.latest()
            snapshot = (text, encoded)
        if events or skipped or snapshot or closed:
            yield Turn(events, skipped, snapshot, closed)
            if closed:
                return
            await _until(_gap(), *leaving, ch.ended())
        else:
            await _until(None, *leaving, ch.ended(), ch.changed())


class Viewing:
    """One open stream: counted for the snapshot budget and for the end of the run."""

    def __init__(self, ch: Channel) -> None:
        self.ch = ch

    def __enter__(self) -> Viewing:
        global _open
        _open += 1
        self.ch.bind()
        self.ch.viewer_opened()
        return self

    def __exit__(self, *exc: Any) -> None:
        global _open
        _open -= 1
        self.ch.viewer_closed()


def sse_body(turn: Turn) -> bytes:
    """A turn as SSE frames, in one chunk."""
    parts = [e.frame for e in turn.events]
    if turn.skipped:
        first, upto = turn.skipped
        parts.insert(0, frame("skipped", json.dumps({"first": first, "last": upto})))
    if turn.snapshot:
        parts.append(turn.snapshot[1])
    if turn.end:
        parts.append(END)
    return b"".join(parts)


def ws_messages(turn: Turn) -> List[str]:
    """A turn as WebSocket messages `{type, id, data}`."""
    out = [f'{{"type":"{e.kind}","id":{e.id},"data":{e.text}}}' for e in turn.events]
    if turn.skipped:
        out.insert(0, json.dumps({"type": "skipped", "id": 0, "data": dict(zip(("first", "last"), turn.skipped))}))
    if turn.snapshot:
        out.append(f'{{"type":"snapshot","id":0,"data":{turn.snapshot[0]}}}')
    if turn.end:
        out.append('{"type":"end","id":0,"data":{}}')
    return out


class SseStream(EventSourceResponse):
    """A channel's SSE stream: one write a turn, keep-alive comments, and a client that leaves
    (or reads nothing for SEND_TIMEOUT seconds) ends it at once, quietly."""

    def __init__(self, ch: Channel, last: int) -> None:
        super().__init__(self._chunks(ch, last), headers={"Cache-Control": "no-cache"}, ping=KEEPALIVE, sep=SEP,
                         ping_message_factory=lambda: comment("keepalive"), send_timeout=SEND_TIMEOUT)

    @staticmethod
    async def _chunks(ch: Channel, last: int) -> AsyncIterator[bytes]:
        with Viewing(ch):
            async for turn in turns(ch, last):
                yield sse_body(turn)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        except (SendTimeoutError, OSError):
            pass  # the client stopped reading or went away: the server closes the connection


async def serve_ws(socket: WebSocket, ch: Channel, last: int) -> None:
    """The same turns over an accepted WebSocket, as `{type, id, data}` messages."""
    gone: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def watch() -> None:
        while (await socket.receive())["type"] != "websocket.disconnect":
            pass  # what a client sends is not read
        if not gone.done():
            gone.set_result(None)

    async def send_all(messages: List[str]) -> None:
        for message in messages:
            await socket.send_text(message)

    watcher = asyncio.ensure_future(watch())
    with Viewing(ch):
        try:
            async for turn in turns(ch, last, gone):
                await asyncio.wait_for(send_all(ws_messages(turn)), SEND_TIMEOUT)
            await socket.close()
        except (WebSocketDisconnect, RuntimeError, OSError, asyncio.TimeoutError):
            pass  # the client went away or stopped reading
        finally:
            watcher.cancel()
