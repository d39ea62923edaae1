"""`milepost demo --llm`: an asyncio job generating personas with a (fake) LLM, as LLM batch
jobs are written: `async_map` at a fixed concurrency, streamed replies, tokens priced per
model (cached input apart), a budget, overloaded calls retried and refused prompts failed.

The model is `fake_model.FakeModelServer` on 127.0.0.1 (nothing leaves the machine); the
client here is a few lines of asyncio speaking its OpenAI-style streaming API, so that the
demo needs no SDK (the tests drive the same server with the real `openai` and `anthropic`).
"""

from __future__ import annotations

import asyncio
import json
import random
from typing import Any, Callable, Dict, List

from .aio import async_map
from .fake_model import FakeModelServer
from .prices import set_prices
from .run import Run
from .task import current_item

#: USD per million tokens, as a provider's price list gives them (user prices: see `set_prices`).
PRICES: Dict[str, Dict[str, float]] = {
    "fake-mini": {"input": 0.4, "output": 1.6, "cache_read": 0.1},
    "fake-large": {"input": 2.0, "output": 8.0, "cache_read": 0.5},
}
#: The shared instructions every request starts with: the server caches them after the first.
SYSTEM = " ".join(
    ["You write one short persona for a survey of everyday life: who they are, where they live,"]
    + ["what they do on a weekday and what they do for fun, in plain prose, no lists."] * 12
)
CITIES = ["Lyon", "Porto", "Leeds", "Graz", "Turku", "Bilbao", "Gdansk", "Bologna", "Aarhus", "Cork"]
JOBS = ["nurse", "baker", "teacher", "engineer", "pilot", "gardener", "librarian", "chef", "welder", "nurse"]


class ModelError(Exception):
    """The model's API answered with an error status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status


class Overloaded(ModelError):
    """A 5xx: worth another try."""


async def chat(port: int, body: Dict[str, Any], on_text: Callable[[str], None]) -> Dict[str, Any]:
    """One streamed chat completion: calls `on_text` with each piece of the reply and returns
    the final chunk (the one with `usage`). Raises `Overloaded` or `ModelError`."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        data = json.dumps(body).encode()
        head = (
            f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n"
        )
        writer.write(head.encode() + data)
        await writer.drain()
        line = (await reader.readline()).split()
        if len(line) < 2 or not line[1].isdigit():
            raise Overloaded(0, f"no HTTP status line from the model: {b' '.join(line)[:80]!r}")
        status = int(line[1])
        while (await reader.readline()).strip():
            pass  # the headers: the body is chunked (a stream) or read to its end (an error)
        if status != 200:
            error = json.loads(await reader.read()).get("error", {}).get("message", "")
            raise (Overloaded if status >= 500 else ModelError)(status, error)
        last: Dict[str, Any] = {}
        events = _events(reader)
        try:
            async for event in events:
                if event == "[DONE]":
                    break
                last = json.loads(event)
                for choice in last.get("choices") or ():
                    text = (choice.get("delta") or {}).get("content")
                    if text:
                        on_text(text)
        finally:
            await events.aclose()  # closed here, not left for the loop to finalize
        return last
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except OSError:
            pass  # the server had closed it


async def _events(reader: asyncio.StreamReader) -> Any:
    """The `data:` of server-sent events carried in HTTP's chunked encoding."""
    pending = b""
    while True:
        size = int((await reader.readline()).strip() or b"0", 16)
        if size == 0:
            return
        pending += (await reader.readexactly(size + 2))[:-2]
        *frames, pending = pending.split(b"\n\n")
        for frame in frames:
            for line in frame.split(b"\n"):
                if line.startswith(b"data: "):
                    yield line[6:].decode()


def personas(n: int, seed: int) -> List[str]:
    rng = random.Random(seed)
    drawn = [(rng.choice(JOBS), rng.choice(CITIES)) for _ in range(n)]
    return [f"persona-{i:04d}: {'an' if j[0] in 'aeiou' else 'a'} {j} in {c}" for i, (j, c) in enumerate(drawn)]


async def _job(run: Run, port: int, items: int, concurrency: int, seed: int) -> int:
    rng = random.Random(seed)
    models = {name: "fake-large" if rng.random() < 0.2 else "fake-mini" for name in personas(items, seed)}

    async def generate(name: str) -> str:
        item = current_item()
        assert item is not None, "called by async_map, inside an item"
        messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": f"Write {name}."}]
        body = {"model": models[name], "messages": messages, "stream": True, "stream_options": {"include_usage": True}}
        text: List[str] = []

        def shown(piece: str) -> None:
            text.append(piece)
            item.stream(piece)

        item.usage_from(await chat(port, body, shown))
        return "".join(text)

    with run:
        results = await async_map(
            generate,
            list(models),
            concurrency,
            description="generate",
            unit="persona",
            retries=2,
            retry_on=(Overloaded,),
            return_exceptions=True,
        )
        failed = sum(isinstance(r, BaseException) for r in results)
        run.log(f"{len(results) - failed} personas written; {failed} refused", source="demo")
    return failed


def llm_run(budget: float, seed: int, **display: Any) -> Run:
    """The demo's run: priced models, a budget, what it is about (`display`: Run's display
    arguments)."""
    set_prices(PRICES)
    return Run(
        "personas",
        budget={"cost_usd": budget},
        meta={"provider": "fake (127.0.0.1)", "models": ", ".join(PRICES), "experiment": f"seed {seed}"},
        **display,
    )


def llm_job(run: Run, items: int, concurrency: int, seed: int, token_ms: float = 20.0) -> int:
    """Runs the job in `run` against a fake model started for it; returns how many personas
    failed for good (a budget that stops the run raises `Cancelled`)."""
    pace = token_ms / 1000.0
    with FakeModelServer(
        first_token=pace * 8, per_token=pace, words=(30, 90), flaky=0.06, broken=0.01, seed=seed
    ) as server:
        return asyncio.run(_job(run, server.port, items, concurrency, seed))
