"""The dashboard's ASGI app (Starlette): the page, the JSON API, the live streams (SSE and
WebSocket), Prometheus metrics, Cancel. Mount it in your own app with `create_app(...)`."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any, Callable, List, Mapping, Optional, TypeVar

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from ..persistence import History, NoHistory, Unreadable
from ..persistence.logs import LEVELS
from ..persistence.money import cost_of
from ..persistence.records import ListedRun, LogRecord, RunRecord
from .guard import Guard, check_token, own_origin
from .hub import Channel, Hub
from .metrics import metrics_text
from .openapi import OPENAPI
from .streams import SseStream, serve_ws

#: The page and its script and style: parts of the package, never a file-system path. The page
#: runs no inline script and loads nothing from elsewhere, so its policy can say just that.
PAGE_POLICY = ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
               "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
ASSETS = {"/": ("page.html", "text/html; charset=utf-8"), "/page.js": ("page.js", "text/javascript; charset=utf-8"),
          "/page.css": ("page.css", "text/css; charset=utf-8")}


T = TypeVar("T")


class BadInput(Exception):
    """A query value the API cannot take: answered 400 with this message."""


def int_param(query: Mapping[str, str], name: str, default: int, high: Optional[int] = None, low: int = 0) -> int:
    """A whole number from the query (or a header), `low..high`; BadInput names it otherwise."""
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    value = int(raw) if raw.isascii() and raw.isdigit() else None
    if value is None or value < low or (high is not None and value > high):
        span = f"from {low} to {high}" if high is not None else f"{low} or more"
        raise BadInput(f"{name} must be a whole number {span}, got {raw!r}")
    return value


def level_param(query: Mapping[str, str]) -> Optional[str]:
    level = query.get("level")
    if level is not None and level != "" and level.lower() not in LEVELS:
        raise BadInput(f"level must be one of {', '.join(LEVELS)}, got {level!r}")
    return level or None


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

    async def runs(self, request: Request) -> Response:
        limit = int_param(request.query_params, "limit", 50, high=500, low=1)
        offset = int_param(request.query_params, "offset", 0)
        name = request.query_params.get("name")
        live = [live_row(ch) for ch in self.hub.channels() if not name or ch.name == name]
        seen = {r["id"] for r in live}
        # Past runs from the first: the page numbers the live and past runs together.
        past: List[RunRecord] = self.read(lambda h: h.runs(name, offset + limit + len(seen)), [])
        every = live + [listed(r) for r in past if r["id"] not in seen]
        return JSONResponse({"runs": every[offset:offset + limit], "total": len(every)})

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

    async def logs(self, request: Request) -> Response:
        run_id = request.path_params["run_id"]
        level, source = level_param(request.query_params), request.query_params.get("source")
        after = int_param(request.query_params, "after", 0)
        ch = self.hub.get(run_id)
        if ch is not None:
            return JSONResponse({"logs": ch.logs_matching(level, source, after)})
        past: List[LogRecord] = self.read(lambda h: h.logs(run_id, level, source, after), [])
        return JSONResponse({"logs": past})

    async def events(self, request: Request) -> Response:
        start = max(int_param(request.headers, "Last-Event-ID", 0), int_param(request.query_params, "after", 0))
        ch = self.hub.get(request.path_params["run_id"])
        if ch is None:
            return JSONResponse({"error": "not a live run"}, status_code=404)
        return SseStream(ch, start)

    async def ws(self, socket: WebSocket) -> None:
        ch = self.hub.get(socket.query_params.get("run", ""))
        await socket.accept()
        try:
            after = int_param(socket.query_params, "after", 0)
        except BadInput as e:
            ch, problem = None, str(e)
        else:
            problem = "not a live run"
        if ch is None:
            await socket.send_text(json.dumps({"type": "error", "error": problem}))
            await socket.close()
            return
        await serve_ws(socket, ch, after)

    async def cancel(self, request: Request) -> Response:
        # With a token, the guard checked it. Without one (loopback), only the dashboard's own
        # page may cancel: the browser sends its Origin, which a page of another site cannot
        # send, and a bare request from anything else on the machine does not have.
        origin = request.headers.get("origin")
        if not self.token and origin != own_origin(request.scope, request.headers):
            return JSONResponse({"error": f"cancel needs the dashboard's own page (origin {origin!r} is not it) "
                                          "or the token"}, status_code=403)
        ch = self.hub.get(request.path_params["run_id"])
        run_obj = ch.run if ch is not None else None
        if run_obj is None or ch is None or ch.finished:
            return JSONResponse({"error": "not a live run"}, status_code=404)
        run_obj.cancel("from the dashboard")
        return JSONResponse({"cancelled": True}, status_code=202)

    async def metrics(self, request: Request) -> Response:
        text, content_type = metrics_text(self.hub)
        return Response(text, media_type=content_type)


def _asset(name: str, media: str) -> Any:
    async def endpoint(request: Request) -> Response:
        text = resources.files("milepost.dashboard").joinpath(name).read_text(encoding="utf-8")
        policy = {"Content-Security-Policy": PAGE_POLICY} if name.endswith(".html") else {}
        return Response(text, media_type=media, headers={**policy, "Cache-Control": "no-cache"})

    return endpoint


async def _openapi(request: Request) -> Response:
    return JSONResponse(OPENAPI)


async def _health(request: Request) -> Response:
    return PlainTextResponse("ok")


async def _bad_input(request: Request, exc: Exception) -> Response:
    return JSONResponse({"error": str(exc)}, status_code=400)


def create_app(hub: Hub, db: Optional[Path] = None, token: Optional[str] = None) -> Starlette:
    """The dashboard for the live runs of `hub` and the past runs in the history `db`. Every
    path is relative to where it is mounted (the page asks for `api/...`, not `/api/...`)."""
    if token is not None:
        check_token(token)
    api = Api(hub, db, token)
    routes = [
        *(Route(path, _asset(name, media)) for path, (name, media) in ASSETS.items()),
        Route("/api/runs", api.runs),
        Route("/api/runs/{run_id}", api.run),
        Route("/api/runs/{run_id}/logs", api.logs),
        Route("/api/runs/{run_id}/events", api.events),
        Route("/api/runs/{run_id}/cancel", api.cancel, methods=["POST"]),
        WebSocketRoute("/ws", api.ws),
        Route("/metrics", api.metrics),
        Route("/openapi.json", _openapi),
        Route("/healthz", _health),
    ]
    return Starlette(routes=routes, middleware=[Middleware(Guard, token=token)],
                     exception_handlers={BadInput: _bad_input})


def live_row(ch: Channel) -> ListedRun:
    """A live run as the list shows it, from its latest snapshot (what the history would say
    of it may be a second older)."""
    snap = json.loads(ch.snapshot_json) if ch.snapshot_seq else {}
    root = snap.get("root", {})
    metrics = root.get("metrics", {})
    return {"id": ch.run_id, "name": ch.name, "status": root.get("state", "running"),
            "started_at": snap.get("started_at_unix"), "ended_at": None, "elapsed": root.get("elapsed"),
            "total": root.get("total"), "processed": root.get("processed", 0), "done": root.get("done", 0),
            "failed": root.get("failed", 0), "skipped": root.get("skipped", 0), "retried": root.get("retried", 0),
            "success_rate": root.get("success_rate"), "metrics": metrics,
            "cost": root["cost"] if "cost" in root else cost_of(metrics), "resumed": None, "live": not ch.finished}


def listed(run: RunRecord) -> ListedRun:
    """A past run as the list shows it."""
    return {**run, "live": False}
