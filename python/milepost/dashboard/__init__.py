"""The live web dashboard: a page, a JSON API, SSE and WebSocket streams, Prometheus metrics,
Cancel. `pip install 'milepost[dashboard]'`.

`Run(..., dashboard=True)` starts the process's one server (127.0.0.1:8080 by default) and
shows the run there; `milepost serve` shows the history. `create_app()` mounts it elsewhere.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, Optional, Union

from .hub import DashboardObserver, Hub

if TYPE_CHECKING:
    from ..run import Run
    from .server import DashboardServer

__all__ = ["hub", "start", "stop", "current", "create_app", "attach"]

hub = Hub()
_server: Optional[DashboardServer] = None
_lock = threading.Lock()
_log = logging.getLogger("milepost")


def create_app(db: Optional[Union[str, Path]] = None, token: Optional[str] = None) -> Any:
    """The dashboard as an ASGI app (for your own Starlette or FastAPI app: `app.mount("/progress",
    milepost.dashboard.create_app())`)."""
    from .app import create_app as make

    return make(hub, Path(db) if db else None, token)


def start(host: str = "127.0.0.1", port: int = 8080, token: Optional[str] = None,
          db: Optional[Union[str, Path]] = None) -> DashboardServer:
    """Starts this process's dashboard server (once; later calls return it). Binding anything
    but loopback needs a token: one is made if none is given, and is part of the URL."""
    global _server
    with _lock:
        if _server is None:
            from .server import DashboardServer, needs_token

            token = needs_token(host, token)
            _server = DashboardServer(create_app(db, token), host, port, token).start()
        return _server


def current() -> Optional[DashboardServer]:
    return _server


def stop() -> None:
    global _server
    with _lock:
        if _server is not None:
            _server.stop()
            _server = None


def attach(run: Run, options: Union[bool, int, Dict[str, Any]]) -> DashboardObserver:
    """Shows `run` on the dashboard (starting the server if needed) and says where, once."""
    kwargs: Dict[str, Any] = options if isinstance(options, dict) else {}
    if isinstance(options, int) and not isinstance(options, bool):
        kwargs = {"port": options}
    fresh = _server is None
    server = start(**kwargs)
    if fresh:
        _log.warning("milepost dashboard: %s", server.url)
    return DashboardObserver(hub.add(run))
