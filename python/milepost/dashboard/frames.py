"""Server-Sent Events frames, encoded once for every client by sse-starlette's `ServerSentEvent`
(data split on line breaks, ids and names cleaned of them)."""

from __future__ import annotations

from typing import Optional

from sse_starlette import ServerSentEvent

#: Lines end in a bare newline: the shortest frame every EventSource reads.
SEP = "\n"


def frame(kind: str, data: str, event_id: Optional[int] = None) -> bytes:
    """One SSE frame: `event: kind`, `data: ...` (and `id:` for events a client may resume after)."""
    return ServerSentEvent(data, event=kind, id=None if event_id is None else str(event_id), sep=SEP).encode()


def comment(text: str) -> ServerSentEvent:
    """A comment line, which clients ignore: a keep-alive for proxies that close silent streams."""
    return ServerSentEvent(comment=text, sep=SEP)
