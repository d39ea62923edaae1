"""uvicorn on a background thread: the dashboard beside a running job."""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
import weakref
from pathlib import Path
from typing import Any, Optional

import uvicorn

from .guard import check_token

LOOPBACK = ("127.0.0.1", "localhost", "::1")
THREAD_NAME = "milepost-dashboard"
#: Seconds a stopping server gives its open connections to finish (streams send their end).
STOP_GRACE = 2


class _NotFromTheServer(logging.Filter):
    """Drops what uvicorn and asyncio log on the dashboard's own thread: the job's stderr is the
    job's, and a client that left mid-stream or a refused request is no news to it."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.threadName != THREAD_NAME


_QUIET = _NotFromTheServer()
_QUIET_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi", "asyncio")


def _quiet_logs() -> None:
    for name in _QUIET_LOGGERS:
        logger = logging.getLogger(name)
        if _QUIET not in logger.filters:
            logger.addFilter(_QUIET)


def hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def listen(host: str, port: int) -> socket.socket:
    """A listening socket on `host:port` (port 0: any free one), bound here rather than by
    uvicorn so that a busy port is an OSError naming it, not a log line and a dead thread."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family, backlog=2048)
    except OSError as e:
        raise OSError(e.errno, f"the dashboard cannot listen on {hostport(host, port)}: {e.strerror or e}") from None


#: The servers of this process: a forked child closes their listening sockets.
_SERVERS: "weakref.WeakSet[DashboardServer]" = weakref.WeakSet()


def _close_in_child() -> None:
    """In a child just forked (a pool's worker): the listening socket of every dashboard of the
    parent is closed, so that the child never holds the port; the parent's server, whose thread
    the child does not have, goes on. Closed, not shut down: that would stop the parent's too."""
    try:
        servers = list(_SERVERS)
    except Exception:  # noqa: BLE001 - never let a fork fail for this
        return
    for server in servers:
        server.close_in_child()


os.register_at_fork(after_in_child=_close_in_child)


class DashboardServer:
    """Serves `app` on `host:port` (port 0: any free port) from a daemon thread."""

    def __init__(self, app: Any, host: str, port: int, token: Optional[str]) -> None:
        self.host = host
        self.token = token
        self._socket = listen(host, port)
        self._port = int(self._socket.getsockname()[1])  # known in a forked child too
        _SERVERS.add(self)
        # log_config=None: uvicorn leaves the process's logging alone (no handler on stderr).
        config = uvicorn.Config(
            app, log_config=None, log_level=None, lifespan="off", timeout_graceful_shutdown=STOP_GRACE
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, name=THREAD_NAME, daemon=True
        )

    def start(self, timeout: float = 15.0) -> DashboardServer:
        _quiet_logs()
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self._server.should_exit = True
                self._socket.close()
                raise OSError(f"the dashboard on {hostport(self.host, self.port)} did not start")
            time.sleep(0.01)
        return self

    def close_in_child(self) -> None:
        """Closes the listening socket in a child just forked (closed, not shut down: that
        would stop the parent's server too)."""
        try:
            self._socket.close()
        except OSError:
            pass

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"http://{hostport(self.host, self.port)}/" + (f"?token={self.token}" if self.token else "")

    def stop(self, timeout: float = STOP_GRACE + 3) -> None:
        """Stops gracefully: open streams get to finish (STOP_GRACE seconds at most)."""
        self._server.should_exit = True
        self._thread.join(timeout)


def needs_token(host: str, token: Optional[str]) -> Optional[str]:
    """Loopback needs no token; any other address gets one (made here if not given). A given
    token must be strong (`check_token`)."""
    if token is not None:
        return check_token(token)
    return None if host in LOOPBACK else secrets.token_urlsafe(18)


def serve_forever(host: str, port: int, db: Optional[Path], token: Optional[str]) -> None:
    """`milepost serve`: the dashboard of the history database and of the live runs of every
    process of the user on this machine, until Ctrl-C or SIGTERM."""
    import signal
    import sys

    from . import start, stop

    try:
        server = start(host, port, token, db, live=True)
    except (OSError, ValueError) as e:
        print(f"milepost serve: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    print(f"milepost dashboard: {server.url}", flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    try:
        while not done.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        stop()
