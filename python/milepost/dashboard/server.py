"""uvicorn on a background thread: the dashboard beside a running job."""

from __future__ import annotations

import secrets
import threading
import time
from pathlib import Path
from typing import Any, Optional

import uvicorn

LOOPBACK = ("127.0.0.1", "localhost", "::1")


class DashboardServer:
    """Serves `app` on `host:port` (port 0: any free port) from a daemon thread."""

    def __init__(self, app: Any, host: str, port: int, token: Optional[str]) -> None:
        self.host = host
        self.token = token
        config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="milepost-dashboard", daemon=True)

    def start(self, timeout: float = 15.0) -> DashboardServer:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise OSError(f"the dashboard could not listen on {self.host} (is the port free?)")
            time.sleep(0.01)
        return self

    @property
    def port(self) -> int:
        return int(self._server.servers[0].sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/" + (f"?token={self.token}" if self.token else "")

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(10)


def needs_token(host: str, token: Optional[str]) -> Optional[str]:
    """Loopback needs no token; any other address gets one (made here if not given)."""
    if token:
        return token
    return None if host in LOOPBACK else secrets.token_urlsafe(18)


def serve_forever(host: str, port: int, db: Optional[Path], token: Optional[str]) -> None:
    """`milepost serve`: the dashboard of the history database, until Ctrl-C or SIGTERM."""
    import signal

    from . import start, stop

    server = start(host, port, token, db)
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
