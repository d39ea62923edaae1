"""The live web dashboard: a page, a JSON API, SSE and WebSocket streams, Prometheus metrics,
Cancel. `pip install 'milepost[dashboard]'`.

`Run(..., dashboard=True)` starts the process's one server (127.0.0.1:8080 by default, or the
next free port) and shows the run there; `milepost serve` shows the history and the live runs
of every process of the user on the machine (`live=True`: read from the live directory, see
`livefeed`). `create_app()` mounts it elsewhere.
"""

from __future__ import annotations

import atexit
import errno
import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Union

from ..config import setting
from .hub import DashboardObserver, Hub

if TYPE_CHECKING:
    from ..run import Run
    from .livefeed import LiveFeed
    from .server import DashboardServer

__all__ = ["hub", "start", "stop", "current", "create_app", "attach"]

#: Ports tried, from the asked one on, when `Run(dashboard=...)` finds it busy.
PORT_TRIES = 10

hub = Hub()
_server: Optional[DashboardServer] = None
_feed: Optional[LiveFeed] = None
_lock = threading.Lock()
_exit_hook = False
_log = logging.getLogger("milepost")


def create_app(db: Optional[Union[str, Path]] = None, token: Optional[str] = None, live: bool = False) -> Any:
    """The dashboard as an ASGI app (for your own Starlette or FastAPI app: `app.mount("/progress",
    milepost.dashboard.create_app())`). Without a token it answers loopback names only. With
    `live`, it also shows the live runs of the user's other processes, followed by a thread
    started here (`app.state.live_feed.stop()` stops it)."""
    from .app import create_app as make

    return make(hub, Path(db) if db else None, token, _new_feed() if live else None)


def _new_feed() -> LiveFeed:
    from .livefeed import LiveFeed

    # A run of this process is shown from its own channel, not from the live directory too.
    return LiveFeed(lambda run_id: hub.get(run_id) is not None).start()


def start(
    host: str = "127.0.0.1",
    port: int = 8080,
    token: Optional[str] = None,
    db: Optional[Union[str, Path]] = None,
    live: bool = False,
) -> DashboardServer:
    """Starts this process's dashboard server (once; later calls return it). Binding anything
    but loopback needs a token: one is made if none is given, and is part of the URL. A busy
    port is an OSError naming it. `live`: also the live runs of the user's other processes."""
    global _server, _feed, _exit_hook
    with _lock:
        if _server is None:
            from .server import DashboardServer, needs_token

            token = needs_token(host, token)
            app = create_app(db, token, live)
            try:
                _server = DashboardServer(app, host, port, token).start()
            except BaseException:
                if app.state.live_feed is not None:
                    app.state.live_feed.stop()
                raise
            _feed = app.state.live_feed
            if not _exit_hook:
                atexit.register(_at_exit)
                _exit_hook = True
        return _server


def current() -> Optional[DashboardServer]:
    return _server


def stop() -> None:
    """Stops the server, letting open streams finish (a couple of seconds at most), and the
    live feed's thread."""
    global _server, _feed
    with _lock:
        if _server is not None:
            _server.stop()
            _server = None
        if _feed is not None:
            _feed.stop()
            _feed = None


def attach(run: Run, options: Union[bool, int, Dict[str, Any]]) -> DashboardObserver:
    """Shows `run` on the dashboard (starting the server if needed) and says where, once."""
    kwargs: Dict[str, Any] = dict(options) if isinstance(options, dict) else {}
    if isinstance(options, int) and not isinstance(options, bool):
        kwargs = {"port": options}
    if _server is None:
        _start_for_run(kwargs)
    return DashboardObserver(hub.add(run))


def _start_for_run(kwargs: Dict[str, Any]) -> None:
    """Starts the server on the asked port or, if another process holds it, one of the next
    PORT_TRIES; failing that, says why and lets the job go on without it (a job is never
    stopped by its dashboard)."""
    from .server import hostport

    # MILEPOST_DASHBOARD_HOST/PORT or [tool.milepost] fill in what the run did not say.
    kwargs = {"host": setting("dashboard_host"), "port": setting("dashboard_port"), **kwargs}
    host, port = str(kwargs["host"]), int(kwargs["port"])
    tried: List[str] = []
    for candidate in [port] if port == 0 else range(port, min(port + PORT_TRIES, 65536)):
        try:
            server = start(**{**kwargs, "port": candidate})
        except OSError as e:
            tried.append(str(e))
            if e.errno == errno.EADDRINUSE:
                continue
            break
        busy = f" ({hostport(host, port)} is busy)" if candidate != port else ""
        _log.warning("milepost dashboard: %s%s", server.url, busy)
        return
    more = f" (and the next {len(tried) - 1} ports)" if len(tried) > 1 else ""
    _log.warning("milepost dashboard: not started, the run goes on without it: %s%s", tried[0], more)


def _at_exit() -> None:
    """At the interpreter's exit, before the server's thread is cut: a run still open on the
    dashboard ends now ("cancelled", as milepost's own exit hook would end it a moment later,
    too late for its viewers: this hook, registered later, runs first), so that its streams
    get the end; then the server stops, letting them finish (bounded)."""
    for ch in hub.channels():
        run = ch.run
        if run is not None and not ch.finished and ch.last_id > 0:  # started, not ended
            run.finish("cancelled")
    stop()
