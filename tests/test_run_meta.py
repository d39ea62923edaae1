"""What a run is about (`Run(meta=...)`) and what its retried attempts failed with: kept in the
history, listed by `milepost show` (text and JSON), given by the dashboard's API."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from typing import Any, List

import httpx
import pytest

import milepost
from milepost import dashboard
from milepost.persistence import default_path


def _show(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "milepost", "show", *args], capture_output=True, text=True, timeout=60)


def test_meta_is_kept_merged_on_resume_and_shown() -> None:
    with milepost.Run("meta", display="none", meta={"provider": "openai", "model": "gpt-4o"}) as run:
        run.meta["experiment"] = "ablation-3"  # set during the run: kept too
        run.phase("p", total=2).advance()
        run.cancel("later")  # a run that did not complete can be resumed
    run_id = run.id
    shown = _show(run_id)
    assert "about: provider openai · model gpt-4o · experiment ablation-3" in shown.stdout, shown.stdout
    assert json.loads(_show(run_id, "--json").stdout)["meta"] == {
        "provider": "openai",
        "model": "gpt-4o",
        "experiment": "ablation-3",
    }
    # A resumed run keeps what it does not set again; what it sets wins.
    with milepost.Run("meta", display="none", resume=True, meta={"model": "gpt-4.1"}) as again:
        assert again.id == run_id
        assert again.meta == {"provider": "openai", "model": "gpt-4.1", "experiment": "ablation-3"}
    meta = json.loads(_show(run_id, "--json").stdout)["meta"]
    assert meta == {"provider": "openai", "model": "gpt-4.1", "experiment": "ablation-3"}


def test_meta_values_that_are_not_json_are_kept_as_text_and_names_are_sanitized() -> None:
    with milepost.Run("meta-text", display="none", meta={"path": milepost, "\x1b[31mred": 1.5}) as run:
        pass
    text = _show(run.id).stdout
    assert "\x1b" not in text and "<module 'milepost'" in text
    assert json.loads(_show(run.id, "--json").stdout)["meta"]["path"].startswith("<module 'milepost'")


@pytest.mark.parametrize(
    ("meta", "named"), [(["model"], "['model']"), ({"": 1}, "''"), ({3: "x"}, "3"), ("gpt-4o", "'gpt-4o'")]
)
def test_bad_meta_is_refused_naming_it_before_anything_is_made(meta: Any, named: str) -> None:
    with pytest.raises(milepost.InvalidValueError, match="meta") as raised:
        milepost.Run("bad-meta", display="none", meta=meta)
    assert named in str(raised.value)
    assert not default_path().exists(), "no history row for a run that was refused"


def test_show_lists_each_retried_attempt_with_its_error() -> None:
    attempts: List[int] = []

    def flaky(i: int) -> int:
        attempts.append(i)
        if attempts.count(i) == 1 and i % 2:
            raise TimeoutError(f"slow reply for {i}")
        return i

    with milepost.Run("retries", display="none") as run:
        milepost.thread_map(flaky, range(50), workers=4, retries=2, backoff=0.0, description="gen")
    text = _show(run.id).stdout
    assert "retried attempts (newest first): 25" in text, text
    assert text.count("gen: ") == 20 and "… 5 more (milepost show --json)" in text
    retries = json.loads(_show(run.id, "--json").stdout)["retries"]
    assert sorted(r["name"] for r in retries) == sorted(str(i) for i in range(1, 50, 2))
    assert all(r["error"] == f"TimeoutError: slow reply for {r['name']}" for r in retries)


def test_the_dashboard_gives_a_live_runs_meta() -> None:
    dashboard.stop()
    server = dashboard.start(port=0)
    try:

        def listed(run_id: str) -> List[Any]:
            runs = httpx.get(f"http://127.0.0.1:{server.port}/api/runs", timeout=10).json()["runs"]
            return [r for r in runs if r["id"] == run_id]

        async def main() -> str:
            async with milepost.Run("dash-meta", display="none", meta={"model": "m1"}, dashboard={"port": 0}) as run:
                run.meta["provider"] = "p1"
                run.phase("p", total=1).advance()
                await asyncio.sleep(0.3)
                assert [r["meta"] for r in listed(run.id)] == [{"model": "m1", "provider": "p1"}]
            return run.id

        run_id = asyncio.run(main())
        # By id: other tests' runs (another process's, still live) may come first in the list.
        deadline = time.monotonic() + 10
        while not [r for r in listed(run_id) if not r["live"]]:
            assert time.monotonic() < deadline, "the run still listed live 10 s after it ended"
            time.sleep(0.05)
        assert listed(run_id)[0]["meta"] == {"model": "m1", "provider": "p1"}, (
            "kept by the history for a run that ended"
        )
    finally:
        dashboard.stop()


def test_meta_values_json_cannot_hold_are_kept_as_text_and_the_history_stays_on() -> None:
    odd = {
        "nan": float("nan"),
        "inf": float("-inf"),
        "none": None,
        "big": 2**80,
        "nested": {"a": [1, 2]},
        "surrogate": "bad\udcff name",
        "long": "x" * 100_000,
    }
    with milepost.Run("odd-meta", display="none", meta=odd) as run:
        run.phase("p", total=1).advance()
    assert run.history_path is not None, "the history did not turn itself off"
    meta = json.loads(_show(run.id, "--json").stdout)["meta"]
    assert meta["nan"] == "nan" and meta["inf"] == "-inf" and meta["none"] is None
    assert meta["big"] == str(2**80) and meta["nested"] == "{'a': [1, 2]}"
    assert meta["surrogate"].startswith("bad") and "\ufffd" in meta["surrogate"]
    assert len(meta["long"]) == 300 and meta["long"].endswith("…")
    assert json.loads(_show(run.id, "--json").stdout)["status"] == "completed"


def test_keys_set_during_the_run_are_checked_as_the_constructors_are() -> None:
    with milepost.Run("meta-keys", display="none") as run:
        for key in ("", "  ", 5, None):
            with pytest.raises(milepost.InvalidValueError, match="meta's keys must be non-empty strings"):
                run.meta[key] = 1
        with pytest.raises(milepost.InvalidValueError, match="got 7"):
            run.meta.update({7: "x"})
        run.meta.setdefault("model", "m")
    assert json.loads(_show(run.id, "--json").stdout)["meta"] == {"model": "m"}
