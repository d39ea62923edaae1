"""A fake LLM API on 127.0.0.1 for the LLM demo and the tests: OpenAI's chat completions and
Anthropic's messages, streamed (server-sent events) or not, with usage reported as the real
APIs report it, prompt caching, latency and failures. Nothing here is milepost: it stands in
for a provider so that a job can be run, priced and stopped without a network or a key.

Tokens are words: a message's text split on white space, plus 3 tokens a message. The reply is
drawn from the prompt (the same prompt gets the same reply). Caching: the first message (the
system prompt) is a prefix the server remembers; the next request that starts with it reads it
from the cache (OpenAI: `prompt_tokens_details.cached_tokens`; Anthropic:
`cache_read_input_tokens`, after one `cache_creation_input_tokens`). Failures are chosen per
prompt: `flaky` of them fail their first attempt with a 503 (a retry succeeds), `broken` of
them always fail with a 400. Every answered request is in `calls`, with the usage it reported.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import sys
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, Iterator, List, Optional, Tuple

__all__ = ["FakeModelServer", "Call", "tokens_of", "WORDS"]

WORDS = (
    "the a persona who lives in works as enjoys prefers quiet busy city village teacher nurse engineer "
    "baker pilot gardener reads writes travels cooks paints early late mornings evenings with two cats "
    "old dog small garden near river coast mountains and often sometimes never on weekends"
).split()
_LOOPBACK = ("127.0.0.1", "localhost", "[::1]")


def tokens_of(text: str) -> int:
    """Tokens of a text, as this server counts them: its words."""
    return len(text.split())


@dataclass(frozen=True)
class Call:
    """One answered request: what it asked and the usage the server reported (`prompt_tokens`
    is all the input, cache included, as OpenAI counts it)."""

    api: str
    model: str
    prompt: str
    status: int
    stream: bool
    prompt_tokens: int = 0
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    completion_tokens: int = 0


class FakeModelServer:
    """`with FakeModelServer() as server:` serves on 127.0.0.1 (any free port) until the block
    ends; `server.base_url` is what an SDK's `base_url=` takes (`http://127.0.0.1:PORT/v1`).

    `first_token`, `per_token`: seconds before the first chunk and between chunks.
    `words`: the (least, most) words of a reply when the request sets no `max_tokens`.
    """

    def __init__(
        self,
        *,
        first_token: float = 0.02,
        per_token: float = 0.002,
        words: Tuple[int, int] = (20, 60),
        flaky: float = 0.0,
        broken: float = 0.0,
        seed: int = 0,
    ) -> None:
        for name, value in (("first_token", first_token), ("per_token", per_token)):
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a finite number of seconds >= 0, got {value!r}")
        for name, value in (("flaky", flaky), ("broken", broken)):
            if not isinstance(value, (int, float)) or not 0 <= value <= 1:
                raise ValueError(f"{name} must be a share between 0 and 1, got {value!r}")
        if flaky + broken > 1:
            raise ValueError(f"flaky + broken must be at most 1, got {flaky} + {broken}")
        if not (isinstance(words, tuple) and len(words) == 2 and all(isinstance(w, int) for w in words)):
            raise ValueError(f"words must be a (least, most) pair of ints, got {words!r}")
        if not 0 <= words[0] <= words[1]:
            raise ValueError(f"words must be 0 <= least <= most, got {words!r}")
        self.first_token = first_token
        self.per_token = per_token
        self.words = words
        self.flaky = flaky
        self.broken = broken
        self.seed = seed
        self.calls: List[Call] = []
        self._attempts: Dict[str, int] = {}
        self._cached: set[str] = set()
        self._lock = threading.Lock()
        self._server: Optional[ThreadingHTTPServer] = None
        self._thread: Optional[threading.Thread] = None

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> FakeModelServer:
        server = _Server(("127.0.0.1", 0), _handler(self))
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, args=(0.05,), name="fake-model", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeModelServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the fake model server is not running")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    # -- what a request gets ------------------------------------------------------------------
    def _draw(self, prompt: str, salt: str) -> random.Random:
        digest = hashlib.sha256(f"{self.seed}\0{salt}\0{prompt}".encode()).digest()
        return random.Random(int.from_bytes(digest[:8], "big"))

    def failure(self, prompt: str) -> Optional[Tuple[int, str]]:
        """The error this attempt at `prompt` gets, if any (and counts the attempt)."""
        with self._lock:
            attempt = self._attempts[prompt] = self._attempts.get(prompt, 0) + 1
        fate = self._draw(prompt, "fate").random()
        if fate < self.broken:
            return 400, "the prompt was refused by the content filter"
        if fate < self.broken + self.flaky and attempt == 1:
            return 503, "the model is overloaded, try again"
        return None

    def reply(self, prompt: str, max_tokens: Optional[int]) -> List[str]:
        rng = self._draw(prompt, "reply")
        n = rng.randint(*self.words)
        if max_tokens is not None:
            n = min(n, max_tokens)
        return [rng.choice(WORDS) for _ in range(n)]

    def cache(self, prefix: str) -> bool:
        """Whether `prefix` was cached before (it is from now on)."""
        with self._lock:
            seen = prefix in self._cached
            self._cached.add(prefix)
        return seen

    def record(self, call: Call) -> None:
        with self._lock:
            self.calls.append(call)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # A hundred clients connecting at once must not find the listen queue (5 by default) full.
    request_queue_size = 256

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that went away (Ctrl-C, a timeout, a cancel) is no error of the server's;
        # anything else is printed, as socketserver does.
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


def _text(content: Any) -> str:
    """A message's content: a string, or a list of text blocks (both APIs allow it)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(block.get("text", "")) for block in content if isinstance(block, dict))
    return ""


def _handler(model: FakeModelServer) -> type:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, and chunked streams

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
            pass  # a job's terminal is not the place for an access log

        def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
            host = (self.headers.get("Host") or "").rsplit(":", 1)[0]
            origin = self.headers.get("Origin")
            if host not in _LOOPBACK or (origin and not any(f"//{h}" in origin for h in _LOOPBACK)):
                self._json(403, {"error": {"message": "loopback only"}})
                return
            try:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
            except ValueError:
                self._json(400, {"error": {"message": "the body is not JSON"}})
                return
            if self.path.rstrip("/").endswith("/chat/completions"):
                self._openai(body)
            elif self.path.rstrip("/").endswith("/messages"):
                self._anthropic(body)
            else:
                self._json(404, {"error": {"message": f"no such endpoint: {self.path}"}})

        # -- OpenAI chat completions --------------------------------------------------------
        def _openai(self, body: Dict[str, Any]) -> None:
            messages = body.get("messages") or []
            texts = [_text(m.get("content")) for m in messages]
            prompt, name = "\n".join(texts), str(body.get("model", ""))
            stream = bool(body.get("stream"))
            failed = model.failure(prompt)
            if failed is not None:
                model.record(Call("openai", name, prompt, failed[0], stream))
                self._json(failed[0], {"error": {"message": failed[1], "type": "server_error"}})
                return
            words = model.reply(prompt, body.get("max_completion_tokens") or body.get("max_tokens"))
            prompt_tokens = sum(tokens_of(t) + 3 for t in texts)
            cached = tokens_of(texts[0]) + 3 if len(texts) > 1 and model.cache(texts[0]) else 0
            usage = {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": len(words),
                "total_tokens": prompt_tokens + len(words),
                "prompt_tokens_details": {"cached_tokens": cached},
            }
            model.record(Call("openai", name, prompt, 200, stream, prompt_tokens, cached, 0, len(words)))
            base = {"id": f"chatcmpl-{len(model.calls)}", "created": int(time.time()), "model": name}
            if not stream:
                time.sleep(model.first_token + model.per_token * len(words))
                message = {"role": "assistant", "content": " ".join(words)}
                choice = {"index": 0, "message": message, "finish_reason": "stop"}
                self._json(200, {**base, "object": "chat.completion", "choices": [choice], "usage": usage})
                return
            chunk = {**base, "object": "chat.completion.chunk"}
            frames = [{**chunk, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}]
            frames += [{**chunk, "choices": [{"index": 0, "delta": {"content": w + " "}}]} for w in words]
            frames.append({**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
            if (body.get("stream_options") or {}).get("include_usage"):
                frames.append({**chunk, "choices": [], "usage": usage})
            self._stream((("", json.dumps(f)) for f in frames), "[DONE]")

        # -- Anthropic messages ---------------------------------------------------------------
        def _anthropic(self, body: Dict[str, Any]) -> None:
            system = _text(body.get("system"))
            texts = [_text(m.get("content")) for m in body.get("messages") or []]
            prompt, name = "\n".join([system, *texts]), str(body.get("model", ""))
            stream = bool(body.get("stream"))
            failed = model.failure(prompt)
            if failed is not None:
                model.record(Call("anthropic", name, prompt, failed[0], stream))
                kind = "invalid_request_error" if failed[0] == 400 else "overloaded_error"
                self._json(failed[0], {"type": "error", "error": {"type": kind, "message": failed[1]}})
                return
            words = model.reply(prompt, body.get("max_tokens"))
            total = sum(tokens_of(t) + 3 for t in texts) + (tokens_of(system) if system else 0)
            read = write = 0
            if system:
                read, write = (tokens_of(system), 0) if model.cache(system) else (0, tokens_of(system))
            usage = {
                "input_tokens": total - read - write,  # Anthropic's input leaves the cache out
                "output_tokens": len(words),
                "cache_read_input_tokens": read,
                "cache_creation_input_tokens": write,
            }
            model.record(Call("anthropic", name, prompt, 200, stream, total, read, write, len(words)))
            message = {"id": f"msg_{len(model.calls)}", "type": "message", "role": "assistant", "model": name}
            if not stream:
                time.sleep(model.first_token + model.per_token * len(words))
                content = [{"type": "text", "text": " ".join(words)}]
                self._json(200, {**message, "content": content, "stop_reason": "end_turn", "usage": usage})
                return
            opening: Dict[str, Any] = {"content": [], "stop_reason": None, "usage": {**usage, "output_tokens": 1}}
            start: Dict[str, Any] = {**message, **opening}
            events: List[Tuple[str, Dict[str, Any]]] = [
                ("message_start", {"type": "message_start", "message": start}),
                (
                    "content_block_start",
                    {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
                ),
            ]
            events += [
                (
                    "content_block_delta",
                    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": w + " "}},
                )
                for w in words
            ]
            events += [
                ("content_block_stop", {"type": "content_block_stop", "index": 0}),
                (
                    "message_delta",
                    {
                        "type": "message_delta",
                        "delta": {"stop_reason": "end_turn"},
                        "usage": {"output_tokens": len(words)},
                    },
                ),
                ("message_stop", {"type": "message_stop"}),
            ]
            self._stream(((kind, json.dumps(data)) for kind, data in events), None)

        # -- writing ----------------------------------------------------------------------------
        def _json(self, status: int, payload: Dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _stream(self, frames: Iterator[Tuple[str, str]], done: Optional[str]) -> None:
            """Server-sent events, one chunk of HTTP's chunked encoding each, at the model's
            pace. A client that goes away ends it (and the connection)."""
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            delay = model.first_token
            try:
                for kind, data in frames:
                    time.sleep(delay)
                    delay = model.per_token
                    self._chunk((f"event: {kind}\n" if kind else "") + f"data: {data}\n\n")
                if done is not None:
                    self._chunk(f"data: {done}\n\n")
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True

        def _chunk(self, text: str) -> None:
            data = text.encode()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()

    return Handler
