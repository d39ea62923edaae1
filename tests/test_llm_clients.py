"""LLM work as users run it: the real `openai` and `anthropic` async clients against a local
streaming server (milepost.fake_model on 127.0.0.1), under `async_map`: usage and cost per
item exactly as the server reported them, budgets that hold at concurrency 100, retries of
failed calls, Cancel and Ctrl-C that leave nothing pending, exact counts."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import math
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Dict, List

import openai
import pytest

import milepost
from llm_jobs import PRICES, anthropic_client, claude_persona, gpt_persona, openai_client
from milepost.fake_model import WORDS, FakeModelServer
from milepost.persistence import default_path

TESTS = Path(__file__).parent


@pytest.fixture(autouse=True)
def _prices():
    milepost.prices.clear()
    milepost.set_prices(PRICES)
    yield
    milepost.prices.clear()


def _rows(run: milepost.Run) -> Dict[str, Dict[str, Any]]:
    db = sqlite3.connect(str(default_path()))
    rows = db.execute("SELECT name, status, metrics FROM items WHERE run_id = ?", (run.id,)).fetchall()
    return {name: {"status": status, **json.loads(metrics or "{}")} for name, status, metrics in rows}


def _price(model: str, plain: int, read: int, write: int, output: int) -> float:
    p = PRICES[model]
    return (
        plain * p["input"] + read * p["cache_read"] + write * p.get("cache_write", p["input"]) + output * p["output"]
    ) / 1e6


async def _left() -> List[asyncio.Task]:
    """Tasks still pending besides this one, once the loop has run a few times: the SDKs
    drop some of their async generators half-read, and the loop's finalizers of those
    (`aclose()` tasks) need a turn or two to end; anything still pending then is left over."""
    for _ in range(3):
        gc.collect()  # the generators dropped go now, and their `aclose()` tasks are made
        for _ in range(5):
            await asyncio.sleep(0)
    return list(asyncio.all_tasks() - {asyncio.current_task()})


def _nothing_left_behind(caplog: pytest.LogCaptureFixture) -> None:
    said = " ".join(r.getMessage() for r in caplog.records)
    assert "was destroyed but it is pending" not in said and "never retrieved" not in said, said


def test_openai_streams_usage_and_cost_per_item_exactly_as_the_server_reported() -> None:
    with FakeModelServer(per_token=0.0005) as server:

        async def main() -> milepost.Run:
            run = milepost.Run("personas", display="none", meta={"provider": "openai", "model": "fake-gpt"})
            async with openai_client(server) as client:
                with run:
                    watching = asyncio.ensure_future(_watch_tails(run))
                    await milepost.async_map(gpt_persona(client), range(60), concurrency=12, description="gen")
                    watching.cancel()
            return run

        async def _watch_tails(run: milepost.Run) -> None:
            while True:  # the lanes' streamed tails, as the displays read them
                tails.extend(lane["tail"] for lane in run.snapshot().data["lanes"] if lane.get("tail"))
                await asyncio.sleep(0.01)

        tails: List[str] = []
        run = asyncio.run(main())
    rows = _rows(run)
    assert len(rows) == 60 and len(server.calls) == 60
    # The lanes showed the replies as they came: words of the model's, a few at a time.
    assert tails and any(len(t.split()) >= 3 and set(t.split()) <= set(WORDS) for t in tails), tails[-5:]
    cached_seen = 0
    for call in server.calls:
        name = call.prompt.rsplit("persona ", 1)[1]
        row = rows[name]
        plain = call.prompt_tokens - call.cached_tokens
        assert row["input_tokens"] == call.prompt_tokens
        assert row["output_tokens"] == call.completion_tokens
        assert row.get("cache_read_tokens", 0) == call.cached_tokens
        assert row["cost_usd"] == pytest.approx(
            _price("fake-gpt", plain, call.cached_tokens, 0, call.completion_tokens), rel=1e-12
        )
        cached_seen += call.cached_tokens > 0
    assert cached_seen == 59, "every call after the first read the system prompt from the cache"
    metrics = run.snapshot().root["metrics"]
    assert metrics["input_tokens"] == sum(c.prompt_tokens for c in server.calls)
    assert metrics["cost_usd"] == pytest.approx(math.fsum(r["cost_usd"] for r in rows.values()), rel=1e-12)


def test_anthropic_streams_price_cache_writes_and_reads_apart() -> None:
    with FakeModelServer(per_token=0.0005) as server:

        async def main() -> milepost.Run:
            async with anthropic_client(server) as client, milepost.Run("claude", display="none") as run:
                await milepost.async_map(claude_persona(client), range(20), concurrency=1, description="gen")
            return run

        run = asyncio.run(main())
    rows = _rows(run)
    writes = [c for c in server.calls if c.cache_write_tokens]
    assert len(writes) == 1 and writes[0] is server.calls[0], "the first call wrote the cache, the others read it"
    for call in server.calls:
        row = rows[call.prompt.rsplit("persona ", 1)[1]]
        plain = call.prompt_tokens - call.cached_tokens - call.cache_write_tokens
        assert row["input_tokens"] == call.prompt_tokens, "Anthropic's input leaves the cache out: added back"
        assert row.get("cache_write_tokens", 0) == call.cache_write_tokens
        assert row.get("cache_read_tokens", 0) == call.cached_tokens
        expected = _price("fake-claude", plain, call.cached_tokens, call.cache_write_tokens, call.completion_tokens)
        assert row["cost_usd"] == pytest.approx(expected, rel=1e-12)


def test_a_one_dollar_budget_at_concurrency_100_stops_at_most_one_cent_over(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="asyncio")
    # One user message of 2 words (5 tokens, unpriced) and 10 output tokens at $1,000 a
    # million: every item costs exactly $0.01.
    milepost.set_prices({"fake-gpt": {"input": 0.0, "output": 1000.0}})
    left: List[Any] = []
    with FakeModelServer(words=(10, 10), per_token=0.001) as server:

        async def main() -> milepost.Run:
            async with openai_client(server) as client:
                return await in_run(client)

        async def in_run(client: Any) -> milepost.Run:
            with milepost.Run("budget", display="none", budget={"cost_usd": 1.00}) as run:
                generate = gpt_persona(client, system=False)
                with pytest.raises(milepost.Cancelled, match=r"cancelled \(budget: cost_usd \$"):
                    await milepost.async_map(generate, range(1000), concurrency=100, description="gen")
                left.extend(await _left())
            return run

        run = asyncio.run(main())
    spent = run.snapshot().root["metrics"]["cost_usd"]
    assert 0.99 <= spent <= 1.01 + 1e-9, spent
    assert len(server.calls) <= 101, "no more calls were made once the budget was spent"
    assert run.snapshot().root["state"] == "cancelled" and left == []
    db = sqlite3.connect(str(default_path()))
    assert db.execute("SELECT status FROM runs WHERE id = ?", (run.id,)).fetchone()[0] == "cancelled"
    reasons = [m for (m,) in db.execute("SELECT message FROM events WHERE run_id = ?", (run.id,)) if m]
    assert any("cancel requested: budget: cost_usd" in m for m in reasons), reasons
    _nothing_left_behind(caplog)


def test_2000_items_at_concurrency_100_count_exactly_with_retries_and_failures() -> None:
    with FakeModelServer(first_token=0.0, per_token=0.0, words=(3, 6), flaky=0.05, broken=0.01, seed=7) as server:

        async def main() -> milepost.Run:
            async with openai_client(server) as client, milepost.Run("many", display="none") as run:
                await milepost.async_map(
                    gpt_persona(client),
                    range(2000),
                    concurrency=100,
                    description="gen",
                    retries=2,
                    backoff=0.001,
                    retry_on=(openai.InternalServerError,),
                    return_exceptions=True,
                )
            return run

        run = asyncio.run(main())
    by_prompt: Dict[str, List[int]] = {}
    for call in server.calls:
        by_prompt.setdefault(call.prompt, []).append(call.status)
    broken = sum(statuses == [400] for statuses in by_prompt.values())
    flaky = sum(statuses == [503, 200] for statuses in by_prompt.values())
    assert len(by_prompt) == 2000 and broken > 0 and flaky > 0
    assert broken + flaky + sum(s == [200] for s in by_prompt.values()) == 2000, "a 400 is never retried"
    node = run.snapshot().find("gen")
    assert (node["done"], node["failed"], node["retried"], node["in_flight"]) == (2000 - broken, broken, flaky, 0)
    assert run.snapshot().root["metrics"]["output_tokens"] == sum(c.completion_tokens for c in server.calls)
    shown = subprocess.run(
        [sys.executable, "-m", "milepost", "show", run.id, "--json", "--failures", "all"],
        capture_output=True,
        text=True,
    )
    detail = json.loads(shown.stdout)
    assert len(detail["failures"]) == broken and all("content filter" in f["error"] for f in detail["failures"])
    assert len(detail["retries"]) == flaky and all("overloaded" in r["error"] for r in detail["retries"])


def test_a_cancel_mid_generation_lets_the_streams_in_flight_finish_and_starts_none(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="asyncio")
    left: List[Any] = []
    with FakeModelServer(per_token=0.002, words=(20, 20)) as server:

        async def main() -> milepost.Run:
            async with openai_client(server) as client, milepost.Run("cancel", display="none") as run:
                generate = gpt_persona(client)

                async def cancel_soon() -> None:
                    while len(server.calls) < 30:
                        await asyncio.sleep(0.005)
                    # From another thread, as `milepost cancel` and the dashboard's button do.
                    threading.Thread(target=run.cancel, args=("enough",)).start()

                canceller = asyncio.ensure_future(cancel_soon())
                with pytest.raises(milepost.Cancelled):
                    await milepost.async_map(generate, range(500), concurrency=10, description="gen")
                await canceller
                left.extend(await _left())
            return run

        run = asyncio.run(main())
    node = run.snapshot().find("gen")
    assert node["state"] == "cancelled" and node["in_flight"] == 0 and left == []
    assert node["done"] == len(server.calls) < 60, "every call started was finished and counted, then none"
    _nothing_left_behind(caplog)


def test_the_caller_cancelled_closes_the_streams_in_flight(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="asyncio")
    with FakeModelServer(per_token=0.05, words=(40, 40)) as server:

        async def main() -> milepost.Run:
            async with openai_client(server) as client, milepost.Run("timeout", display="none") as run:
                with pytest.raises(TimeoutError):
                    async with asyncio.timeout(0.5):
                        await milepost.async_map(gpt_persona(client), range(50), 10, description="gen")
                assert await _left() == []
            return run

        run = asyncio.run(main())
    node = run.snapshot().find("gen")
    assert (node["state"], node["done"], node["in_flight"]) == ("cancelled", 0, 0)
    _nothing_left_behind(caplog)


CTRL_C_JOB = f"""
import asyncio, gc, sys
sys.path.insert(0, {str(TESTS)!r})
import milepost
from llm_jobs import PRICES, gpt_persona, openai_client
from milepost.fake_model import FakeModelServer

milepost.set_prices(PRICES)

async def main(server):
    async with openai_client(server) as client, milepost.Run("ctrl-c", display="none") as run:
        generate = gpt_persona(client)
        async def started():
            while len(server.calls) < 20:
                await asyncio.sleep(0.005)
            print("started", flush=True)
        asyncio.ensure_future(started())
        try:
            await milepost.async_map(generate, range(1000), concurrency=20, description="gen")
        finally:
            node = run.snapshot().find("gen")
            for _ in range(3):  # the SDK's half-read generators are closed by the loop
                gc.collect()
                for _ in range(5):
                    await asyncio.sleep(0)
            left = len(asyncio.all_tasks() - {{asyncio.current_task()}})
            print(node["state"], node["in_flight"], left, flush=True)

with FakeModelServer(per_token=0.05, words=(40, 40)) as server:
    try:
        asyncio.run(main(server))
    except KeyboardInterrupt:
        print("KeyboardInterrupt", flush=True)
"""


def test_a_real_ctrl_c_mid_generation_leaves_no_pending_task() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", CTRL_C_JOB], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    assert proc.stdout.readline() == "started\n"
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    state, in_flight, left = out.splitlines()[0].split()
    assert (state, in_flight, out.splitlines()[-1]) == ("cancelled", "0", "KeyboardInterrupt"), (out, err)
    assert left == "0", "no task is left (the one that printed 'started' had ended)"
    assert "Traceback" not in err and "pending" not in err and "never retrieved" not in err, err


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"per_token": float("nan")}, "per_token"),
        ({"first_token": -1}, "first_token"),
        ({"flaky": 2}, "flaky"),
        ({"flaky": 0.6, "broken": 0.6}, "flaky + broken"),
        ({"words": (5, 2)}, "words"),
    ],
)
def test_the_fake_server_refuses_bad_settings_naming_them(kwargs: Dict[str, Any], named: str) -> None:
    with pytest.raises(ValueError, match=re.escape(named)):
        FakeModelServer(**kwargs)


def test_a_client_that_goes_away_leaves_no_traceback_on_the_server(capfd: pytest.CaptureFixture) -> None:
    with FakeModelServer(per_token=0.05, words=(40, 40)) as server:

        async def main() -> None:
            async with openai_client(server) as client:
                with pytest.raises(TimeoutError):
                    async with asyncio.timeout(0.3):
                        await milepost.async_map(gpt_persona(client), range(10), 5, display="none")

        asyncio.run(main())
        time.sleep(0.5)  # the server's threads find the closed sockets on their next write
    err = capfd.readouterr().err
    assert "Traceback" not in err and "BrokenPipeError" not in err, err
