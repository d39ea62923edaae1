"""The dashboard's ASGI app (Starlette): the page, the JSON API, the live streams (SSE and
WebSocket), Prometheus metrics, Cancel. Mount it in your own app with `create_app(...)`."""

from __future__ import annotations

import asyncio
import hmac
import json
import sqlite3
from importlib import resources
from pathlib import Path
from typing import Any, AsyncIterator, Dict, List, Optional

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from ..history_cli import cost_of
from .hub import LEVELS, Channel, Hub
from .metrics import metrics_text
from .openapi import OPENAPI

#: Seconds between keep-alive comments on an idle stream (proxies close silent connections).
KEEPALIVE = 15.0
#: Snapshots sent a second, all streams of the process together: past a handful of watchers,
#: each gets them less often, so that serving them never costs the job more than a little.
SNAPSHOT_BUDGET = 100.0
MAX_SNAPSHOT_HZ = 5.0

_streams = 0  # open streams in this process (on the server's loop only)


def _page() -> str:
    return resources.files("milepost.dashboard").joinpath("page.html").read_text(encoding="utf-8")


def _token_of(request: Any) -> Optional[str]:
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return str(auth[7:].strip())
    return request.query_params.get("token")


class TokenCheck:
    """Every HTTP request carries the token, when the server has one. A plain ASGI middleware:
    streamed responses pass straight through (no per-chunk copying)."""

    def __init__(self, app: Any, token: Optional[str]) -> None:
        self.app = app
        self.token = token

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if self.token and scope["type"] == "http" and not _same(_token_of(Request(scope)), self.token):
            response = JSONResponse({"error": "a token is needed: open the URL the server printed"}, status_code=401)
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _same(given: Optional[str], token: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), token.encode())


def create_app(hub: Hub, db: Optional[Path] = None, token: Optional[str] = None) -> Starlette:
    """The dashboard for the live runs of `hub` and the past runs in the history `db`."""

    def history() -> Optional[sqlite3.Connection]:
        from ..history_cli import NoHistory, open_db

        try:
            return open_db(str(db) if db else None)
        except (NoHistory, sqlite3.Error):
            return None

    async def page(request: Request) -> Response:
        return HTMLResponse(_page(), headers={
            # Nothing from anywhere else: the page is whole in itself.
            "Content-Security-Policy": "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
                                       "connect-src 'self'; img-src 'self' data:",
            "X-Content-Type-Options": "nosniff",
        })

    async def runs(request: Request) -> Response:
        from ..history_cli import history as past

        limit = min(int(request.query_params.get("limit", 50)), 500)
        offset = int(request.query_params.get("offset", 0))
        name = request.query_params.get("name")
        live: List[Dict[str, Any]] = []
        for ch in hub.channels():
            if name and ch.name != name:
                continue
            snap = json.loads(ch.snapshot_json) if ch.snapshot_seq else {}
            root = snap.get("root", {})
            live.append({"id": ch.run_id, "name": ch.name, "status": root.get("state", "running"),
                         "started_at": snap.get("started_at_unix"), "elapsed": root.get("elapsed"),
                         "done": root.get("done", 0), "failed": root.get("failed", 0),
                         "skipped": root.get("skipped", 0), "total": root.get("total"),
                         "cost": cost_of(root.get("metrics", {})), "live": not ch.finished})
        seen = {r["id"] for r in live}
        conn = history()
        old = [] if conn is None else [dict(r, live=False) for r in past(conn, name, offset + limit + len(seen))
                                       if r["id"] not in seen]
        every = live + old
        return JSONResponse({"runs": every[offset:offset + limit], "total": len(every)})

    async def run(request: Request) -> Response:
        run_id = request.path_params["run_id"]
        ch = hub.get(run_id)
        if ch is not None and ch.snapshot_seq:
            return JSONResponse({"live": not ch.finished, "snapshot": json.loads(ch.snapshot_json)})
        from ..history_cli import NoHistory, show

        conn = history()
        try:
            if conn is None:
                raise NoHistory(run_id)
            found = show(conn, run_id)
        except NoHistory:
            return JSONResponse({"error": f"no run {run_id!r}"}, status_code=404)
        return JSONResponse({"live": False, "run": {k: v for k, v in found.items() if k not in ("phases", "failures")},
                             "phases": found["phases"], "failures": found["failures"]})

    async def logs(request: Request) -> Response:
        run_id = request.path_params["run_id"]
        level, source = request.query_params.get("level"), request.query_params.get("source")
        after = int(request.query_params.get("after", 0))
        ch = hub.get(run_id)
        if ch is not None:
            return JSONResponse({"logs": ch.logs_matching(level, source, after)})
        conn = history()
        rows: List[Dict[str, Any]] = []
        if conn is not None:
            floor = LEVELS.get((level or "").lower(), 0)
            for r in conn.execute("SELECT id, ts, kind, level, source, path, message FROM events WHERE run_id = ? "
                                  "AND kind IN ('log', 'item_failed') AND id > ? ORDER BY id", (run_id, after)):
                lv = r["level"] or "error"
                if LEVELS.get(lv, 20) >= floor and (not source or r["source"] == source):
                    rows.append({"id": r["id"], "ts": r["ts"], "level": lv, "source": r["source"],
                                 "message": r["message"], "path": (r["path"] or "").split("/")})
        return JSONResponse({"logs": rows})

    class Events:
        """The SSE stream as a bare ASGI app: the shared snapshot frame goes out as it is, and a
        single task listens for the client leaving (no polling per message)."""

        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            request = Request(scope)
            ch = hub.get(scope["path_params"]["run_id"])
            if ch is None:
                await JSONResponse({"error": "not a live run"}, status_code=404)(scope, receive, send)
                return
            start = int(request.headers.get("last-event-id") or request.query_params.get("after") or 0)
            gone = asyncio.Event()

            async def listen() -> None:
                while (await receive())["type"] != "http.disconnect":
                    pass
                gone.set()

            listener = asyncio.create_task(listen())
            await send({"type": "http.response.start", "status": 200, "headers": [
                (b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-cache"),
                (b"x-accel-buffering", b"no")]})
            try:
                async for kind, event_id, text in _follow(ch, start, _is_set(gone)):
                    if kind == "snapshot":
                        body = ch.snapshot_frame
                    elif kind == "keepalive":
                        body = b": keepalive\n\n"
                    else:
                        head = f"id: {event_id}\n" if event_id else ""
                        body = f"{head}event: {kind}\ndata: {text}\n\n".encode("utf-8")
                    await send({"type": "http.response.body", "body": body, "more_body": True})
                await send({"type": "http.response.body", "body": b"", "more_body": False})
            except OSError:
                pass  # the client went away mid-send
            finally:
                listener.cancel()

    events = Events()

    async def ws(socket: WebSocket) -> None:
        if token and not _same(_token_of(socket), token):
            await socket.close(code=4401)
            return
        ch = hub.get(socket.query_params.get("run", ""))
        await socket.accept()
        if ch is None:
            await socket.send_text(json.dumps({"type": "error", "error": "not a live run"}))
            await socket.close()
            return
        closed = asyncio.Event()

        async def watch() -> None:
            try:
                while True:
                    await socket.receive_text()
            except WebSocketDisconnect:
                closed.set()

        watcher = asyncio.create_task(watch())
        try:
            async for kind, event_id, text in _follow(ch, int(socket.query_params.get("after", 0)),
                                                      _is_set(closed)):
                if kind != "keepalive":
                    await socket.send_text(f'{{"type":"{kind}","id":{event_id or 0},"data":{text}}}')
            await socket.close()
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            watcher.cancel()

    async def cancel(request: Request) -> Response:
        # With a token, the middleware checked it. Without one (loopback), a page from another
        # site must not be able to cancel: the request must come from this origin.
        if not token:
            origin = request.headers.get("origin")
            if origin is not None and origin.split("://", 1)[-1] != request.headers.get("host"):
                return JSONResponse({"error": "cancel must come from the dashboard's own page"}, status_code=403)
        ch = hub.get(request.path_params["run_id"])
        run_obj = ch.run if ch is not None else None
        if run_obj is None or ch is None or ch.finished:
            return JSONResponse({"error": "not a live run"}, status_code=404)
        run_obj.cancel("from the dashboard")
        return JSONResponse({"cancelled": True}, status_code=202)

    async def metrics(request: Request) -> Response:
        text, content_type = metrics_text(hub)
        return Response(text, media_type=content_type)

    async def openapi(request: Request) -> Response:
        return JSONResponse(OPENAPI)

    async def health(request: Request) -> Response:
        return PlainTextResponse("ok")

    routes = [
        Route("/", page),
        Route("/api/runs", runs),
        Route("/api/runs/{run_id}", run),
        Route("/api/runs/{run_id}/logs", logs),
        Route("/api/runs/{run_id}/events", events),
        Route("/api/runs/{run_id}/cancel", cancel, methods=["POST"]),
        WebSocketRoute("/ws", ws),
        Route("/metrics", metrics),
        Route("/openapi.json", openapi),
        Route("/healthz", health),
    ]
    return Starlette(routes=routes, middleware=[Middleware(TokenCheck, token=token)])


def _is_set(event: asyncio.Event) -> Any:
    async def check() -> bool:
        return event.is_set()

    return check


async def _follow(ch: Channel, last: int, gone: Any) -> AsyncIterator[tuple[str, int, str]]:
    """`(kind, id, json)`: lifecycle events after `last` (all of them, at once), the latest
    snapshot when there is a new one (at most `min(5, SNAPSHOT_BUDGET / streams)` a second),
    "keepalive" when idle, and "end" once the run has finished."""
    global _streams
    loop = asyncio.get_running_loop()
    _streams += 1
    try:
        seq, sent_at = -1, 0.0
        while not await gone():
            for event_id, kind, text in ch.events_after(last):
                last = event_id
                yield kind, event_id, text
            gap = max(1.0 / MAX_SNAPSHOT_HZ, _streams / SNAPSHOT_BUDGET)
            sent = False
            if ch.snapshot_seq != seq and (ch.finished or loop.time() - sent_at >= gap):
                seq, sent_at, sent = ch.snapshot_seq, loop.time(), True
                yield "snapshot", 0, ch.snapshot_json
            if ch.finished and not ch.events_after(last):
                if ch.snapshot_seq != seq:
                    yield "snapshot", 0, ch.snapshot_json
                yield "end", 0, "{}"
                return
            if sent or ch.snapshot_seq != seq:
                # This stream's next turn is a gap away: sleep till then instead of waking at
                # every publish (events wait for the turn too, at most a fraction of a second).
                await asyncio.sleep(max(gap - (loop.time() - sent_at), 0.01))
            elif not await ch.wait(KEEPALIVE):
                yield "keepalive", 0, ""
    finally:
        _streams -= 1
