"""The dashboard's ASGI app (Starlette): the page, the JSON API and live streams (`api`),
Prometheus metrics, Cancel and Retry (`steering`), and the OpenAPI description of it all. Mount
it in your own app with `create_app(...)`."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any, Dict, List, Optional

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute

from .api import Api
from .guard import Guard, check_token
from .hub import Hub
from .livefeed import LiveFeed
from .openapi import Operation, describe, documented
from .params import BadInput
from .steering import Steering

#: The page and its script and style: parts of the package, never a file-system path. The page
#: runs no inline script and loads nothing from elsewhere, so its policy can say just that.
PAGE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
ASSETS = {
    "/": ("page.html", "text/html; charset=utf-8"),
    "/page.js": ("page.js", "text/javascript; charset=utf-8"),
    "/page.css": ("page.css", "text/css; charset=utf-8"),
}


def _asset(name: str, media: str) -> Any:
    @documented(Operation(f"The page's {name}" if name != "page.html" else "The page", (), {200: (media, media)}))
    async def endpoint(request: Request) -> Response:
        text = resources.files("milepost.dashboard").joinpath(name).read_text(encoding="utf-8")
        policy = {"Content-Security-Policy": PAGE_POLICY} if name.endswith(".html") else {}
        return Response(text, media_type=media, headers={**policy, "Cache-Control": "no-cache"})

    return endpoint


def _openapi(routes: List[BaseRoute]) -> Any:
    described: List[Dict[str, Any]] = []  # made at the first request (pydantic is imported then)

    @documented(Operation("This description (OpenAPI 3.1)", (), {200: ("The description", "application/json")}))
    async def endpoint(request: Request) -> Response:
        if not described:
            described.append(describe(routes))
        return JSONResponse(described[0])

    return endpoint


@documented(Operation("`ok` while the server answers", (), {200: ("ok", "text/plain")}))
async def _health(request: Request) -> Response:
    return PlainTextResponse("ok")


async def _bad_input(request: Request, exc: Exception) -> Response:
    return JSONResponse({"error": str(exc)}, status_code=400)


def create_app(
    hub: Hub, db: Optional[Path] = None, token: Optional[str] = None, feed: Optional[LiveFeed] = None
) -> Starlette:
    """The dashboard for the live runs of `hub` (and of `feed`: other processes') and the past
    runs in the history `db`. Every path is relative to where it is mounted (the page asks for
    `api/...`, not `/api/...`)."""
    if token is not None:
        check_token(token)
    api = Api(hub, db, token, feed)
    steering = Steering(api)
    routes: List[BaseRoute] = [
        *(Route(path, _asset(name, media)) for path, (name, media) in ASSETS.items()),
        Route("/api/runs", api.runs),
        Route("/api/runs/{run_id}", api.run),
        Route("/api/runs/{run_id}/logs", api.logs),
        Route("/api/runs/{run_id}/events", api.events),
        Route("/api/runs/{run_id}/cancel", steering.cancel, methods=["POST"]),
        Route("/api/runs/{run_id}/retry", steering.retry, methods=["POST"]),
        WebSocketRoute("/ws", api.ws),
        Route("/metrics", api.metrics),
        Route("/healthz", _health),
    ]
    routes.append(Route("/openapi.json", _openapi(routes)))
    app = Starlette(
        routes=routes, middleware=[Middleware(Guard, token=token)], exception_handlers={BadInput: _bad_input}
    )
    app.state.live_feed = feed  # whoever made the feed stops it (`dashboard.stop()` does)
    return app
