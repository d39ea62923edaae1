"""The dashboard's JSON API and live streams, over the live runs of a hub (this process's), of
the live feed (other processes', when the server shows them) and the past runs of the history.
Each endpoint declares what it takes and answers (`Operation`), which is what the OpenAPI
description is made of. Cancel and Retry are in `steering`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, TypeVar

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.websockets import WebSocket

from ..persistence import History, NoHistory, Unreadable
from ..persistence.money import cost_of
from ..persistence.records import ListedRun, LogRecord, RunRecord
from .hub import Channel, Hub, state_of
from .livefeed import LiveFeed
from .metrics import metrics_text
from .models import ErrorAnswer, LiveRun, LogList, PastRun, RunList
from .openapi import Operation, documented
from .params import AFTER, LAST_EVENT_ID, LEVEL, LIMIT, NAME, OFFSET, RUN, RUN_ID, SOURCE, BadInput
from .streams import SseStream, serve_ws

T = TypeVar("T")

#: A query value that cannot be taken: 400, naming it.
BAD = {400: ("A query value that cannot be taken, named in `error`", ErrorAnswer)}
NOT_LIVE = {404: ("Not a live run", ErrorAnswer)}


class Api:
    """The endpoints, over the live runs of `hub` and `feed` and the past runs in the history `db`."""

    def __init__(self, hub: Hub, db: Optional[Path], token: Optional[str], feed: Optional[LiveFeed] = None) -> None:
        self.hub, self.db, self.token, self.feed = hub, db, token, feed

    def channel(self, run_id: str) -> Optional[Channel]:
        """A run's channel: this process's, else the live directory's."""
        ch = self.hub.get(run_id)
        if ch is None and self.feed is not None:
            watched = self.feed.get(run_id)
            ch = watched.channel if watched is not None else None
        return ch

    def channels(self) -> List[Channel]:
        """Every run's channel once: this process's runs, then the live directory's others (a
        run of this process is in the live directory too: it is shown as this process's)."""
        own = self.hub.channels()
        if self.feed is None:
            return own
        ids = {ch.run_id for ch in own}
        return own + [ch for ch in self.feed.channels() if ch.run_id not in ids]

    def read(self, what: Callable[[History], T], default: T) -> T:
        """`what` read from the history, or `default` when there is none (or it cannot be read):
        the live runs are served all the same."""
        try:
            with History.open(self.db) as history:
                return what(history)
        except (NoHistory, Unreadable):
            return default

    @documented(
        Operation(
            "Live runs, then past runs, newest first",
            (LIMIT, OFFSET, NAME),
            {200: ("The runs and how many there are", RunList), **BAD},
        )
    )
    async def runs(self, request: Request) -> Response:
        limit, offset = LIMIT.number(request.query_params), OFFSET.number(request.query_params)
        name = NAME.text(request.query_params)
        channels = [ch for ch in self.channels() if not name or ch.name == name]
        first = [live_row(ch) for ch in channels if not (ch.remote and ch.finished)]
        # Other processes' runs that ended go among the past runs, by start, in place of their
        # rows in the history: theirs say how they ended (`crashed`, which the history cannot).
        ended = [live_row(ch) for ch in channels if ch.remote and ch.finished]
        seen = {r["id"] for r in first + ended}
        # Past runs from the first: the page numbers the live and past runs together.
        past: List[RunRecord] = self.read(lambda h: h.runs(name, offset + limit + len(seen)), [])
        rest = ended + [listed(r) for r in past if r["id"] not in seen]
        rest.sort(key=lambda r: r["started_at"] or 0.0, reverse=True)
        every = first + rest
        return JSONResponse({"runs": every[offset : offset + limit], "total": len(every)})

    @documented(
        Operation(
            "A live run's snapshot, or a past run's record",
            (RUN_ID,),
            {
                200: (
                    "`{live, state, snapshot}` for a live run (or one whose process crashed), else "
                    "`{live, run, phases, failures}`",
                    (LiveRun, PastRun),
                ),
                404: ("No such run", ErrorAnswer),
            },
        )
    )
    async def run(self, request: Request) -> Response:
        run_id = request.path_params["run_id"]
        ch = self.channel(run_id)
        # Another process's run that ended is answered from the history, which has its phases
        # and failures, when it is there; a crashed one by its last snapshot, and its state.
        recorded = ch is not None and ch.remote and ch.finished and ch.state != "crashed"
        if ch is not None and ch.snapshot_seq and not recorded:
            return JSONResponse(snapshot_answer(ch))
        run = ch.run if ch is not None and not ch.finished else None
        if ch is not None and run is not None:
            # A run of this process before its first delivery (its thread starts a moment
            # after the run does): live, from a snapshot taken now. Answered from the history,
            # it read as a recorded run, and a page that asked then never followed it.
            return JSONResponse(snapshot_answer(ch, run.snapshot().json()))
        found = self.read(lambda h: h.run(run_id), None)
        if found is None and ch is not None and ch.snapshot_seq:
            return JSONResponse(snapshot_answer(ch))
        if found is None:
            return JSONResponse({"error": f"no run {run_id!r}"}, status_code=404)
        overview = {k: v for k, v in found.items() if k not in ("phases", "failures")}
        return JSONResponse({"live": False, "run": overview, "phases": found["phases"], "failures": found["failures"]})

    @documented(
        Operation(
            "Log lines and failures (`path` below the run), after a row id",
            (RUN_ID, LEVEL, SOURCE, AFTER),
            {200: ("The rows, oldest first", LogList), **BAD},
        )
    )
    async def logs(self, request: Request) -> Response:
        run_id = request.path_params["run_id"]
        level, source = LEVEL.text(request.query_params), SOURCE.text(request.query_params)
        after = AFTER.number(request.query_params)
        ch = self.channel(run_id)
        if ch is not None:
            return JSONResponse({"logs": ch.logs_matching(level, source, after)})
        past: List[LogRecord] = self.read(lambda h: h.logs(run_id, level, source, after), [])
        return JSONResponse({"logs": past})

    @documented(
        Operation(
            "Server-Sent Events: `snapshot` (at most 5 a second), lifecycle events (with ids; `Last-Event-ID` or "
            "`after` resumes; at most 100 a turn, a stream further behind gets `skipped` `{first, last}`), keep-alive "
            "comments, and `end` after the run's last snapshot (`run_crashed` before it when the run's process "
            "vanished without ending it)",
            (RUN_ID, LAST_EVENT_ID, AFTER),
            {200: ("The stream", "text/event-stream"), **BAD, **NOT_LIVE},
        )
    )
    async def events(self, request: Request) -> Response:
        start = max(LAST_EVENT_ID.number(request.headers), AFTER.number(request.query_params))
        ch = self.channel(request.path_params["run_id"])
        if ch is None:
            return JSONResponse({"error": "not a live run"}, status_code=404)
        return SseStream(ch, start)

    @documented(
        Operation(
            "WebSocket: the same stream as /events, as JSON messages `{type, id, data}`; a page of "
            "another Origin is refused",
            (RUN, AFTER),
            {101: ("Switching protocols", None)},
        )
    )
    async def ws(self, socket: WebSocket) -> None:
        ch = self.channel(socket.query_params.get("run", ""))
        await socket.accept()
        try:
            after = AFTER.number(socket.query_params)
        except BadInput as e:
            ch, problem = None, str(e)
        else:
            problem = "not a live run"
        if ch is None:
            await socket.send_text(json.dumps({"type": "error", "error": problem}))
            await socket.close()
            return
        await serve_ws(socket, ch, after)

    @documented(
        Operation(
            "Prometheus exposition of the live runs, those that ended on show (final counts and state, `crashed` "
            "included), and the open streams",
            (),
            {200: ("Metrics", "text/plain; version=0.0.4")},
        )
    )
    async def metrics(self, request: Request) -> Response:
        text, content_type = metrics_text(self.channels())
        return Response(text, media_type=content_type)


def snapshot_answer(ch: Channel, text: Optional[str] = None) -> Dict[str, Any]:
    """A run as its latest snapshot says (or the snapshot `text`, taken now), with its state
    (the snapshot's, or `crashed`)."""
    snap = json.loads(text if text is not None else ch.snapshot_json)
    return {"live": not ch.finished, "state": state_of(ch, snap.get("root", {})), "snapshot": snap}


def live_row(ch: Channel) -> ListedRun:
    """A live run as the list shows it, from its latest snapshot (what the history would say
    of it may be a second older)."""
    snap = json.loads(ch.snapshot_json) if ch.snapshot_seq else {}
    root = snap.get("root", {})
    metrics = root.get("metrics", {})
    return {
        "id": ch.run_id,
        "name": ch.name,
        "status": state_of(ch, root),
        "started_at": snap.get("started_at_unix") or ch.started_at,
        "ended_at": ch.ended_at,
        "elapsed": root.get("elapsed"),
        "total": root.get("total"),
        "processed": root.get("processed", 0),
        "done": root.get("done", 0),
        "failed": root.get("failed", 0),
        "skipped": root.get("skipped", 0),
        "retried": root.get("retried", 0),
        "success_rate": root.get("success_rate"),
        "metrics": metrics,
        "cost": root["cost"] if "cost" in root else cost_of(metrics),
        "resumed": None,
        "meta": ch.meta,
        "cpu_seconds": (snap.get("resources") or {}).get("cpu_seconds"),
        "peak_rss_bytes": (snap.get("resources") or {}).get("peak_rss_bytes"),
        "live": not ch.finished,
    }


def listed(run: RunRecord) -> ListedRun:
    """A past run as the list shows it."""
    return {**run, "live": False}
