"""Who may talk to the dashboard, and the headers on every answer.

Without a token (loopback), a request is answered only if its Host is a loopback name or
address on the server's own port: a page of another site whose name an attacker resolved to
127.0.0.1 (DNS rebinding) sends its own Host and is refused. With a token, every request must
carry it. A WebSocket from a page of another origin is refused either way (browsers send the
page's Origin), and Cancel without a token needs the dashboard's own Origin."""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from typing import Any, Optional, Tuple

from starlette.datastructures import Headers, MutableHeaders, QueryParams
from starlette.responses import JSONResponse

from ..errors import InvalidValueError

#: A token shorter than this, or with fewer different characters, is refused: it could be
#: guessed, and it is all that stands between the network and Cancel.
MIN_TOKEN_LENGTH = 16
MIN_TOKEN_SYMBOLS = 8

#: On every answer: nothing may frame it (a foreign page framing Cancel), nothing may sniff it.
SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "content-security-policy": "default-src 'none'; frame-ancestors 'none'",
}


def check_token(token: str) -> str:
    """`token`, if it is strong enough; else InvalidValueError (not showing the token)."""
    if len(token) < MIN_TOKEN_LENGTH or len(set(token)) < MIN_TOKEN_SYMBOLS:
        raise InvalidValueError(
            f"the dashboard token must have at least {MIN_TOKEN_LENGTH} characters, {MIN_TOKEN_SYMBOLS} of them "
            f"different (got {len(token)} characters, {len(set(token))} different); leave it out to get a "
            f"random one like {secrets.token_urlsafe(18)!r}"
        )
    return token


def _token_of(headers: Headers, query: QueryParams) -> Optional[str]:
    auth = headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return query.get("token")


def _same(given: Optional[str], token: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), token.encode())


def split_host(value: str) -> Tuple[str, Optional[int]]:
    """`(name, port)` of a Host header (port None when absent; -1 when not a number)."""
    if value.startswith("["):
        name, _, rest = value[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    else:
        name, _, port = value.partition(":")
    if not port:
        return name.lower(), None
    return name.lower(), int(port) if port.isascii() and port.isdigit() else -1


def is_loopback(name: str) -> bool:
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def host_refusal(scope: Any, host: str) -> Optional[str]:
    """Why a Host is not this loopback dashboard's, or None. The port must be the one the
    connection came in on (`scope["server"]`, where the server says)."""
    name, port = split_host(host)
    server = scope.get("server")
    secure = scope.get("scheme") in ("https", "wss")
    if port is None:
        port = 443 if secure else 80
    wanted = server[1] if server and len(server) > 1 and server[1] else None
    if is_loopback(name) and (wanted is None or port == wanted):
        return None
    where = f"a loopback name or address on port {wanted}" if wanted else "a loopback name or address"
    return f"host {host!r} is not this dashboard's: it answers {where} only (or pass a token to serve other names)"


def own_origin(scope: Any, headers: Headers) -> str:
    """The origin of the dashboard's own page, as the request reached it."""
    secure = scope.get("scheme") in ("https", "wss")
    return f"{'https' if secure else 'http'}://{headers.get('host', '')}"


class Guard:
    """ASGI middleware: the Host (no token) or the token (with one), a WebSocket's Origin, and
    SECURITY_HEADERS on every HTTP answer (the app's own headers win: the page sets its own
    policy). Streamed answers pass through untouched apart from their first message."""

    def __init__(self, app: Any, token: Optional[str]) -> None:
        self.app = app
        self.token = token

    def refusal(self, scope: Any) -> Optional[Tuple[int, str]]:
        headers = Headers(scope=scope)
        if self.token:
            if not _same(_token_of(headers, QueryParams(scope.get("query_string", b""))), self.token):
                return 401, "a token is needed: open the URL the server printed"
        else:
            problem = host_refusal(scope, headers.get("host", ""))
            if problem:
                return 400, problem
        origin = headers.get("origin")
        if scope["type"] == "websocket" and origin is not None and origin != own_origin(scope, headers):
            return 403, f"origin {origin!r} is not this dashboard's"
        return None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        refused = self.refusal(scope)
        if refused is not None and scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008, "reason": refused[1][:120]})
            return

        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    if name not in headers:
                        headers[name] = value
            await send(message)

        if refused is not None:
            await JSONResponse({"error": refused[1]}, status_code=refused[0])(scope, receive, send_with_headers)
            return
        await self.app(scope, receive, send_with_headers)
