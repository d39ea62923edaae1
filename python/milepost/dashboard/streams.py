"""The live streams of a run, SSE and WebSocket: both follow a channel in *turns*.

A turn sends, in one write, what is new since the stream's last turn: the events (at most
`MAX_BATCH`, the latest; a stream further behind is told what it skipped), the latest snapshot,
and `end` once the run's observer has closed. Between turns a stream sleeps for its gap
(`1 / MAX_SNAPSHOT_HZ`, longer past `SNAPSHOT_BUDGET / MAX_SNAPSHOT_HZ` streams), waking early
only for the end of the run or the client leaving: so serving many clients on a busy run costs
a bounded number of writes a second, and a client that went away is noticed at once instead of
being written to until the loop gets round to it.

The SSE response is written here rather than by sse-starlette: with it (measured on 300
clients of a run sending ~200 events a second, README "Live dashboard") the job's process spent
twice the CPU serving them, 0.73 s against 0.41 s in 8 s, for four tasks a stream and more
wake-ups; what watching costs the job is the point of these streams."""

from __future__ import annotations

import asyncio
import json
from typing import Any, AsyncIterator, List, NamedTuple, Optional, Tuple

from starlette.responses import Response
from starlette.websockets import WebSocket, WebSocketDisconnect

from .hub import Channel, Entry

#: Seconds between keep-alive comments on an idle stream (proxies close silent connections).
KEEPALIVE = 15.0
#: Snapshots sent a second, all streams of the process together: past a handful of watchers,
#: each gets them less often, so that serving them never costs the job more than a little.
SNAPSHOT_BUDGET = 100.0
MAX_SNAPSHOT_HZ = 5.0
#: Events a stream sends in one turn at most (what a stream holds is bounded by this).
MAX_BATCH = 100
#: Seconds a write may wait for a client that reads nothing before the stream is dropped.
SEND_TIMEOUT = 10.0

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


async def _until(timeout: float, *futures: asyncio.Future[Any]) -> bool:
    """Waits until one of `futures` is done (True) or `timeout` seconds pass (False). A bare
    future and a timer: no task is made per wait."""
    loop = asyncio.get_running_loop()
    woken: asyncio.Future[bool] = loop.create_future()

    def wake(result: Any) -> None:
        if not woken.done():
            woken.set_result(result is not None)

    timer = loop.call_later(timeout, wake, None)
    for fut in futures:
        fut.add_done_callback(wake)
    try:
        return await woken
    finally:
        timer.cancel()
        for fut in futures:
            fut.remove_done_callback(wake)


async def turns(ch: Channel, last: int, gone: asyncio.Future[None]) -> AsyncIterator[Optional[Turn]]:
    """The turns of a stream resuming after event id `last` (None: a keep-alive is due), until
    the channel's end has been sent or the client is `gone`."""
    seq = 0  # no snapshot before the first one is published
    while not gone.done():
        closed = ch.finished  # read first: all that was published before the close is in this turn
        events, skipped = ch.batch_after(last, None if closed else MAX_BATCH)
        if events:
            last = events[-1].id
        snapshot = None
        if ch.snapshot_seq != seq:
            seq, text, frame = ch.latest()
            snapshot = (text, frame)
        if events or skipped or snapshot or closed:
            yield Turn(events, skipped, snapshot, closed)
            if closed:
                return
            await _until(_gap(), gone, ch.ended())
        elif not await _until(KEEPALIVE, gone, ch.ended(), ch.changed()):
            yield None


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


def sse_body(turn: Optional[Turn]) -> bytes:
    """A turn as SSE frames, in one chunk."""
    if turn is None:
        return b": keepalive\n\n"
    parts = [e.frame for e in turn.events]
    if turn.skipped:
        first, upto = turn.skipped
        parts.insert(0, f'event: skipped\ndata: {{"first":{first},"last":{upto}}}\n\n'.encode())
    if turn.snapshot:
        parts.append(turn.snapshot[1])
    if turn.end:
        parts.append(b"event: end\ndata: {}\n\n")
    return b"".join(parts)


def ws_messages(turn: Optional[Turn]) -> List[str]:
    """A turn as WebSocket messages `{type, id, data}` (nothing for a keep-alive)."""
    if turn is None:
        return []
    out = [f'{{"type":"{e.kind}","id":{e.id},"data":{e.text}}}' for e in turn.events]
    if turn.skipped:
        out.insert(
            0, json.dumps({"type": "skipped", "id": 0, "data": dict(zip(("first", "last"), turn.skipped, strict=True))})
        )
    if turn.snapshot:
        out.append(f'{{"type":"snapshot","id":0,"data":{turn.snapshot[0]}}}')
    if turn.end:
        out.append('{"type":"end","id":0,"data":{}}')
    return out


async def serve_sse(ch: Channel, last: int, receive: Any, send: Any) -> None:
    """The SSE response: one write a turn; a client that leaves ends it at once, and one that
    reads nothing for SEND_TIMEOUT seconds is dropped."""
    gone: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def listen() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        if not gone.done():
            gone.set_result(None)

    listener = asyncio.ensure_future(listen())
    with Viewing(ch):
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [
                        (b"content-type", b"text/event-stream; charset=utf-8"),
                        (b"cache-control", b"no-cache"),
                        (b"x-accel-buffering", b"no"),
                    ],
                }
            )
            async for turn in turns(ch, last, gone):
                body = sse_body(turn)
                await asyncio.wait_for(
                    send({"type": "http.response.body", "body": body, "more_body": True}), SEND_TIMEOUT
                )
            if not gone.done():
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        except (OSError, asyncio.TimeoutError):
            pass  # the client went away or stopped reading: the server closes the connection
        finally:
            listener.cancel()


class SseStream(Response):
    """The SSE response of a stream resuming after event id `last` (what an endpoint returns):
    one write a turn, frames uncopied."""

    def __init__(self, ch: Channel, last: int) -> None:
        super().__init__(media_type="text/event-stream")
        self.ch = ch
        self.last = last

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await serve_sse(self.ch, self.last, receive, send)


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
