"""Token usage and its cost: real runs, their snapshots and their history rows."""

from __future__ import annotations

import json
import math
import sqlite3
from types import SimpleNamespace as NS

import genai_prices
import pytest

import milepost
from milepost.persistence import default_path


@pytest.fixture(autouse=True)
def _no_user_prices():
    milepost.prices.clear()
    yield
    milepost.prices.clear()


def _item_metrics(run) -> list:
    db = sqlite3.connect(str(default_path()))
    rows = db.execute("SELECT metrics FROM items WHERE run_id = ? ORDER BY id", (run.id,)).fetchall()
    return [json.loads(m) if m else None for (m,) in rows]


def _warnings(events) -> list:
    return [e for e in events if isinstance(e, milepost.LogLine) and e.level == "warning" and e.source == "milepost"]


def test_user_prices_roll_up_exact_with_cached_input_priced_apart() -> None:
    # USD per million: 2 plain input, 0.5 cached read, 2.5 cache write, 8 output.
    milepost.set_prices({"house-model": {"input": 2, "output": 8, "cache_read": 0.5, "cache_write": 2.5}})
    with milepost.Run("priced", display="none") as run:
        with run.phase("map") as ph:
            with ph.item("a") as item:
                # 250k plain * 2 + 250k cached * 0.5 + 250k output * 8 = 0.5 + 0.125 + 2.0
                cost = item.usage("house-model", input_tokens=500_000, output_tokens=250_000, cache_read_tokens=250_000)
            with ph.item("b") as item:
                # 500k written * 2.5 + 500k plain * 2 = 1.25 + 1.0
                item.usage("house-model", input_tokens=1_000_000, cache_write_tokens=500_000)
        run.usage("house-model", output_tokens=125_000)  # not an item's: 1.0
    assert cost == 2.625
    snap = run.snapshot()
    assert snap.find("map")["metrics"] == {
        "input_tokens": 1_500_000,
        "output_tokens": 250_000,
        "tokens": 1_750_000,
        "cache_read_tokens": 250_000,
        "cache_write_tokens": 500_000,
        "cost_usd": 4.875,
    }
    assert snap.find("map")["cost"] == 4.875
    assert snap.root["cost"] == 5.875 and snap.root["metrics"]["tokens"] == 1_875_000
    rows = _item_metrics(run)
    assert rows[0] == {
        "input_tokens": 500_000,
        "output_tokens": 250_000,
        "tokens": 750_000,
        "cache_read_tokens": 250_000,
        "cost_usd": 2.625,
    }
    assert rows[1]["cost_usd"] == 2.25 and rows[1]["cache_write_tokens"] == 500_000


def test_user_prices_come_before_genai_prices() -> None:
    milepost.set_prices({"gpt-4o": {"input": 1, "output": 1}})
    with milepost.Run("override", display="none") as run:
        with run.phase("map") as ph, ph.item("a") as item:
            item.usage("gpt-4o", provider="openai", input_tokens=1_000_000)
    assert run.snapshot().root["cost"] == 1.0


def test_a_genai_prices_model_is_priced_by_its_table() -> None:
    usage = genai_prices.Usage(input_tokens=12_000, output_tokens=3_000, cache_read_tokens=4_000, cache_write_tokens=0)
    expected = float(genai_prices.calc_price(usage, model_ref="gpt-4o", provider_id="openai").total_price)
    plain = float(
        genai_prices.calc_price(genai_prices.Usage(input_tokens=12_000, output_tokens=3_000), "gpt-4o").total_price
    )
    assert expected < plain  # cached input is cheaper: priced apart
    with milepost.Run("table", display="none") as run:
        with run.phase("map") as ph, ph.item("a") as item:
            item.usage("gpt-4o", provider="openai", input_tokens=12_000, output_tokens=3_000, cache_read_tokens=4_000)
    assert run.snapshot().root["cost"] == expected
    assert _item_metrics(run)[0]["cost_usd"] == expected


def test_an_unknown_model_records_tokens_no_cost_and_warns_once(event_log) -> None:
    with milepost.Run("unknown", display="none", observers=[event_log]) as run:
        with run.phase("map") as ph:
            for name in ("a", "b"):
                with ph.item(name) as item:
                    assert item.usage("in-house-llm-7", input_tokens=10, output_tokens=5) is None
    snap = run.snapshot()
    assert snap.root["metrics"] == {"input_tokens": 20, "output_tokens": 10, "tokens": 30}
    assert snap.root["cost"] is None  # no cost, not a cost of zero
    assert _item_metrics(run) == [{"input_tokens": 10, "output_tokens": 5, "tokens": 15}] * 2
    (warning,) = _warnings(event_log.events)
    assert "in-house-llm-7" in warning.message and "set_prices" in warning.message


def test_price_files_toml_and_json(tmp_path) -> None:
    toml = tmp_path / "prices.toml"
    toml.write_text('["toml-model"]\ninput = 1.5\noutput = 6\ncache_read = 0.15\n')
    js = tmp_path / "prices.json"
    js.write_text(json.dumps({"json-model": {"input": 4, "output": 16}}))
    milepost.prices.load(toml)
    milepost.set_prices(str(js))
    assert milepost.prices.cost("toml-model", None, 2_000_000, 0, 1_000_000, 0) == 1.5 + 0.15
    # A missing cache price is the input price: cached tokens are never free by omission.
    assert milepost.prices.cost("json-model", None, 1_000_000, 1_000_000, 500_000, 0) == 4 + 16


@pytest.mark.parametrize(
    ("name", "text", "problem"),
    [
        ("broken.toml", '["m"]\ninput = \n', "TOMLDecodeError"),
        ("broken.json", '{"m": {"input": 1,', "JSONDecodeError"),
        ("noout.json", '{"m": {"input": 1}}', "no 'output' price"),
        ("negative.toml", '["m"]\ninput = -1\noutput = 1\n', "must be a number of zero or more"),
        ("typo.json", '{"m": {"input": 1, "output": 1, "cached": 1}}', "unknown price 'cached'"),
    ],
)
def test_a_bad_price_file_raises_naming_it(tmp_path, name, text, problem) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(milepost.InvalidValueError, match=name) as err:
        milepost.set_prices(path)
    assert problem in str(err.value)
    with pytest.raises(milepost.InvalidValueError, match="missing.toml"):
        milepost.set_prices(tmp_path / "missing.toml")


# Stand-ins with the SDKs' attribute shapes (data, not behaviour).
CHAT = NS(
    model="gpt-4o", usage=NS(prompt_tokens=1000, completion_tokens=50, prompt_tokens_details=NS(cached_tokens=600))
)
CHAT_CHUNK = NS(model="gpt-4o", choices=[], usage=NS(prompt_tokens=10, completion_tokens=2, prompt_tokens_details=None))
RESPONSES = NS(model="gpt-4o", usage=NS(input_tokens=300, output_tokens=20, input_tokens_details=NS(cached_tokens=100)))
RESPONSES_DONE = NS(type="response.completed", response=RESPONSES)
ANTHROPIC = NS(
    model="claude-sonnet-4-5",
    usage=NS(input_tokens=40, output_tokens=7, cache_read_input_tokens=900, cache_creation_input_tokens=60),
)
ANTHROPIC_START = NS(type="message_start", message=ANTHROPIC)
ANTHROPIC_RAW = {"model": "claude-haiku-4-5", "usage": {"input_tokens": 5, "output_tokens": 3}}


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        (CHAT, milepost.TokenUsage("gpt-4o", 1000, 50, 600, 0)),
        (CHAT_CHUNK, milepost.TokenUsage("gpt-4o", 10, 2, 0, 0)),
        (RESPONSES, milepost.TokenUsage("gpt-4o", 300, 20, 100, 0)),
        (RESPONSES_DONE, milepost.TokenUsage("gpt-4o", 300, 20, 100, 0)),
        # Anthropic's input_tokens leave the cache out: milepost's input is all of it.
        (ANTHROPIC, milepost.TokenUsage("claude-sonnet-4-5", 1000, 7, 900, 60)),
        (ANTHROPIC_START, milepost.TokenUsage("claude-sonnet-4-5", 1000, 7, 900, 60)),
        (ANTHROPIC_RAW, milepost.TokenUsage("claude-haiku-4-5", 5, 3, 0, 0)),
    ],
)
def test_usage_of_reads_both_sdks_shapes(response, expected) -> None:
    assert milepost.usage_of(response) == expected


def test_usage_from_records_a_response_with_its_model() -> None:
    milepost.set_prices({"claude-sonnet-4-5": {"input": 3, "output": 15, "cache_read": 0.3, "cache_write": 3.75}})
    with milepost.Run("from", display="none") as run:
        with run.phase("map") as ph, ph.item("a") as item:
            cost = item.usage_from(ANTHROPIC)
    expected = (40 * 3 + 900 * 0.3 + 60 * 3.75 + 7 * 15) / 1_000_000
    assert math.isclose(cost, expected, rel_tol=1e-12)
    assert run.snapshot().root["metrics"]["input_tokens"] == 1000
    with pytest.raises(milepost.InvalidValueError, match="no token usage in SimpleNamespace"):
        milepost.usage_of(NS(model="x", choices=[]))


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"input_tokens": -1}, "input_tokens"),
        ({"output_tokens": math.nan}, "output_tokens"),
        ({"cache_read_tokens": 1.0}, "cache_read_tokens"),
        ({"input_tokens": True}, "input_tokens"),
        ({"output_tokens": 2**53}, "output_tokens"),
        ({"input_tokens": 5, "cache_read_tokens": 4, "cache_write_tokens": 2}, "cannot exceed"),
        ({"model": ""}, "model"),
        ({"model": None}, "model"),
        ({"provider": ""}, "provider"),
    ],
)
def test_bad_usage_raises_naming_it_and_loses_nothing(kwargs, named) -> None:
    milepost.set_prices({"m": {"input": 1, "output": 1}})
    with milepost.Run("bad", display="none") as run:
        with run.phase("map") as ph, ph.item("a") as item:
            item.usage("m", input_tokens=7, output_tokens=1)
            args = {"model": "m", "input_tokens": 1, **kwargs}
            with pytest.raises(milepost.InvalidValueError, match=named):
                item.usage(**args)
    assert run.snapshot().root["metrics"] == {"input_tokens": 7, "output_tokens": 1, "tokens": 8, "cost_usd": 8e-06}
    assert _item_metrics(run) == [{"input_tokens": 7, "output_tokens": 1, "tokens": 8, "cost_usd": 8e-06}]


def test_usage_after_the_item_or_the_run_ended_is_refused() -> None:
    with milepost.Run("late", display="none") as run:
        with run.phase("map") as ph:
            with ph.item("a") as item:
                item.usage("unpriced", input_tokens=1)
            with pytest.raises(milepost.InvalidValueError, match="'a' after it ended"):
                item.usage("unpriced", input_tokens=1)
    with pytest.raises(milepost.RunEndedError):
        ph.usage("unpriced", input_tokens=1)
    assert run.snapshot().root["metrics"] == {"input_tokens": 1, "output_tokens": 0, "tokens": 1}


def test_import_milepost_does_not_import_genai_prices() -> None:
    import subprocess
    import sys

    code = "import sys, milepost; assert 'genai_prices' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_usage_from_pool_workers_adds_up() -> None:
    milepost.set_prices({"m": {"input": 1, "output": 3}})

    def work(n: int) -> None:
        milepost.current_item().usage("m", input_tokens=1_000 * n, output_tokens=n)

    with milepost.Run("pool", display="none") as run:
        with run.phase("map", total=50) as ph:
            milepost.thread_map(work, range(50), workers=4, task=ph)
    metrics = run.snapshot().root["metrics"]
    assert (metrics["input_tokens"], metrics["output_tokens"]) == (1_000 * 1_225, 1_225)
    assert math.isclose(metrics["cost_usd"], (1_225_000 + 3 * 1_225) / 1_000_000, rel_tol=1e-12)
    assert sum(row["cost_usd"] for row in _item_metrics(run)) == pytest.approx(metrics["cost_usd"])
