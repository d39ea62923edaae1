"""The dashboard's JSON API and live streams, over the live runs of a hub and the past runs of
the history. Each endpoint declares what it takes and answers (`Operation`), which is what the
OpenAPI description is made of."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, List, Optional, TypeVar

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.websockets import WebSocket

from ..persistence import History, NoHistory, Unreadable
from ..persistence.money import cost_of
from ..persistence.records import ListedRun, LogRecord, RunRecord
from .guard import own_origin
from .hub import Channel, Hub
from .metrics import metrics_text
from .models import CancelAnswer, ErrorAnswer, LiveRun, LogList, PastRun, RunList
from .openapi import Operation, documented
from .params import AFTER, LAST_EVENT_ID, LEVEL, LIMIT, NAME, OFFSET, RUN, RUN_ID, SOURCE, BadInput
from .streams import SseStream, serve_ws

T = TypeVar("T")

#: A query value that cannot be taken: 400, naming it.
BAD = {400: ("A query value that cannot be taken, named in `error`", ErrorAnswer)}
NOT_LIVE = {404: ("Not a live run", ErrorAnswer)}


class Api:
    """The endpoints, over the live runs of `hub` and the past runs in the history `db`."""

    def __init__(self, hub: Hub, db: Optional[Path], token: Optional[str]) -> None:
        self.hub, self.db, self.token = hub, db, token

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
        live = [live_row(ch) for ch in self.hub.channels() if not name or ch.name == name]
        seen = {r["id"] for r in live}
        # Past runs from the first: the page numbers the live and past runs together.
        past: List[RunRecord] = self.read(lambda h: h.runs(name, offset + limit + len(seen)), [])
        every = live + [listed(r) for r in past if r["id"] not in seen]
        return JSONResponse({"runs": every[offset : offset + limit], "total": len(every)})

    @documented(
        Operation(
            "A live run's snapshot, or a past run's record",
            (RUN_ID,),
            {
                200: (
                    "`{live, snapshot}` for a run this process has, else `{live, run, phases, failures}`",
                    (LiveRun, PastRun),
                ),
                404: ("No such run", ErrorAnswer),
            },
        )
    )
    async def run(self, request: Request) -> Response:
        run_id = request.path_params["run_id"]
        ch = self.hub.get(run_id)
        if ch is not None and ch.snapshot_seq:
            return JSONResponse({"live": not ch.finished, "snapshot": json.loads(ch.snapshot_json)})
        found = self.read(lambda h: h.run(run_id), None)
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
        ch = self.hub.get(run_id)
        if ch is not None:
            return JSONResponse({"logs": ch.logs_matching(level, source, after)})
        past: List[LogRecord] = self.read(lambda h: h.logs(run_id, level, source, after), [])
        return JSONResponse({"logs": past})

    @documented(
        Operation(
            "Server-Sent Events: `snapshot` (at most 5 a second), lifecycle events (with ids; `Last-Event-ID` or "
            "`after` resumes; at most 100 a turn, a stream further behind gets `skipped` `{first, last}`), keep-alive "
            "comments, and `end` after the run's last snapshot",
            (RUN_ID, LAST_EVENT_ID, AFTER),
            {200: ("The stream", "text/event-stream"), **BAD, **NOT_LIVE},
        )
    )
    async def events(self, request: Request) -> Response:
        start = max(LAST_EVENT_ID.number(request.headers), AFTER.number(request.query_params))
        ch = self.hub.get(request.path_params["run_id"])
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
        ch = self.hub.get(socket.query_params.get("run", ""))
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
            "Cancel a live run (the token, or the dashboard's own Origin: a request without one is refused)",
            (RUN_ID,),
            {202: ("Cancel requested", CancelAnswer), 403: ("Another Origin, or none", ErrorAnswer), **NOT_LIVE},
        )
    )
    async def cancel(self, request: Request) -> Response:
        # With a token, the guard checked it. Without one (loopback), only the dashboard's own
        # page may cancel: the browser sends its Origin, which a page of another site cannot
        # send, and a bare request from anything else on the machine does not have.
        origin = request.headers.get("origin")
        if not self.token and origin != own_origin(request.scope, request.headers):
            return JSONResponse(
                {"error": f"cancel needs the dashboard's own page (origin {origin!r} is not it) or the token"},
                status_code=403,
            )
        ch = self.hub.get(request.path_params["run_id"])
        run_obj = ch.run if ch is not None else None
        if run_obj is None or ch is None or ch.finished:
            return JSONResponse({"error": "not a live run"}, status_code=404)
        run_obj.cancel("from the dashboard")
        return JSONResponse({"cancelled": True}, status_code=202)

    @documented(
        Operation(
            "Prometheus exposition of the live runs (and the open streams)",
            (),
            {200: ("Metrics", "text/plain; version=0.0.4")},
        )
    )
    async def metrics(self, request: Request) -> Response:
        text, content_type = metrics_text(self.hub)
        return Response(text, media_type=content_type)


def live_row(ch: Channel) -> ListedRun:
    """A live run as the list shows it, from its latest snapshot (what the history would say
    of it may be a second older)."""
    snap = json.loads(ch.snapshot_json) if ch.snapshot_seq else {}
    root = snap.get("root", {})
    metrics = root.get("metrics", {})
    return {
        "id": ch.run_id,
        "name": ch.name,
        "status": root.get("state", "running"),
        "started_at": snap.get("started_at_unix"),
        "ended_at": None,
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
        "live": not ch.finished,
    }


def listed(run: RunRecord) -> ListedRun:
    """A past run as the list shows it."""
    return {**run, "live": False}
