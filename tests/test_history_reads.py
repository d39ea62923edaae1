"""`persistence.History`, the one home of the history's reads (runs, one run, logs, stats, the
run to resume, prior rates), and the one money rule every display reads as a `cost` field: the
CLI's JSON, the dashboard's API (runs, one run, its phases) and its live snapshots."""

from __future__ import annotations

import time

import httpx
import pytest

import milepost
from milepost import dashboard
from milepost.persistence import History, NoHistory, Store, cost_of, find_resumable, is_money, prior_rates


def _runs() -> list:
    """Three runs called `a` (one cancelled by Ctrl-C) and one called `b`, with money metrics."""
    ids = []
    for k in range(3):
        try:
            with milepost.Run("a", display="none") as run:
                ids.append(run.id)
                with run.phase("map", total=4) as ph:
                    ph.advance(3)
                    ph.fail("doc-x", f"boom {k}")
                    ph.metric("cost_usd", 0.5)
                    ph.metric("tokens", 10)
                run.metric("embed_cost", 0.25)
                run.log("careful", level="warning", source="me")
                run.log("chatty", source="other")
                if k == 2:
                    raise KeyboardInterrupt
        except KeyboardInterrupt:
            pass
    with milepost.Run("b", display="none") as run:
        run.phase("p", total=1).advance()
        ids.append(run.id)
    return ids


def test_money_is_one_rule() -> None:
    assert [is_money(n) for n in ("cost_usd", "EMBED_COST", "usd", "tokens", "latency")] == [
        True,
        True,
        True,
        False,
        False,
    ]
    assert cost_of({"cost_usd": 0.5, "embed_cost": 0.25, "tokens": 10}) == 0.75
    assert cost_of({"tokens": 10}) is None, "no money metric is no cost, not a cost of zero"


def test_runs_filter_page_and_carry_their_cost() -> None:
    a1, a2, a3, b = _runs()
    with History.open() as h:
        assert [r["id"] for r in h.runs()] == [b, a3, a2, a1]
        assert [r["id"] for r in h.runs("a", limit=2)] == [a3, a2]
        assert [r["id"] for r in h.runs("a", limit=2, offset=2)] == [a1]
        first = h.runs("a")[-1]
        assert first["cost"] == pytest.approx(0.75) and first["processed"] == 4 and first["success_rate"] == 0.75
        assert h.runs("b")[0]["cost"] is None


def test_one_run_by_id_or_name_with_phases_workers_and_failures() -> None:
    a1, _, a3, _ = _runs()
    with History.open() as h:
        latest = h.run("a")
        assert latest["id"] == a3 and latest["status"] == "cancelled"
        old = h.run(a1, failures=None)
        assert [p["path"] for p in old["phases"]] == ["map"]
        assert old["phases"][0]["cost"] == pytest.approx(0.5), "each phase carries its own cost"
        assert [(f["name"], f["error"], f["phase_display"]) for f in old["failures"]] == [("doc-x", "boom 0", "map")]
        assert old["failures_recorded"] == 1 and old["items"]["n"] >= 1
        with pytest.raises(NoHistory, match="no run with id or name 'nope'"):
            h.run("nope")


def test_logs_filter_as_the_dashboard_serves_them() -> None:
    a1 = _runs()[0]
    with History.open() as h:
        every = h.logs(a1)
        assert [r["message"] for r in every] == ["doc-x: boom 0", "careful", "chatty"]
        assert [r["message"] for r in h.logs(a1, level="warning")] == ["doc-x: boom 0", "careful"]
        assert [r["message"] for r in h.logs(a1, source="other")] == ["chatty"]
        assert [r["message"] for r in h.logs(a1, after=every[0]["id"])] == ["careful", "chatty"]
        assert every[0]["path"] == ["map"] and every[0]["level"] == "error"


def test_recent_items_are_the_newest_of_the_run_with_their_own_metrics() -> None:
    with milepost.Run("items", display="none") as run:
        with run.phase("map", total=5) as ph:
            for i in range(5):
                with ph.item(f"doc-{i}") as item:
                    item.metric("tokens", 10 + i)
                    item.metric("cost_usd", 0.01)
    other = _runs()[0]
    with History.open() as h:
        newest = h.recent_items(run.id, limit=3)
        assert [r["name"] for r in newest] == ["doc-4", "doc-3", "doc-2"]
        assert newest[0]["metrics"] == {"tokens": 14, "cost_usd": 0.01} and newest[0]["cost"] == pytest.approx(0.01)
        assert newest[0]["status"] == "done" and newest[0]["phase"] == "map" and newest[0]["duration"] is not None
        assert [r["name"] for r in h.recent_items(run.id, limit=10, after=newest[1]["id"])] == ["doc-4"]
        assert all(r["name"] != "doc-4" for r in h.recent_items(other)), "only the run's own items"


def test_stats_resumable_and_prior_rates() -> None:
    a1, a2, a3, _ = _runs()
    with History.open() as h:
        stats = h.stats("a", 10)
        assert [r["id"] for r in stats["runs"]] == [a1, a2, a3], "oldest first"
        assert stats["cost"] == {"min": 0.75, "median": 0.75, "max": 0.75, "last": 0.75}
        assert h.resumable("a", True) == a3 and h.resumable("x", a1) == a1 and h.resumable("a", "nope") is None
        point = h.resume_point(a3)
        assert point.explicit["map"] == (3, 0) and point.started_at > 0
        assert set(h.prior_rates("a", exclude=a2)) == {"map"}
    store = Store()
    try:
        assert find_resumable(store, "a", True) == a3
        assert set(prior_rates(store, "a", a1)) == {"map"}
    finally:
        store.close()


def test_no_history_is_named(tmp_path) -> None:
    with pytest.raises(NoHistory, match="no run history at"):
        History.open(tmp_path / "none.db")
    assert isinstance(NoHistory("x"), milepost.MilepostError)


@pytest.fixture
def server():
    dashboard.stop()
    srv = dashboard.start(port=0)
    yield f"http://127.0.0.1:{srv.port}"
    dashboard.stop()


def test_every_answer_the_page_reads_carries_a_ready_cost(server) -> None:
    past = _runs()[0]
    with milepost.Run("live-cost", display="none", dashboard={"port": 0}) as run:
        ph = run.phase("map", total=4)
        ph.metric("cost_usd", 0.5)
        run.metric("tokens", 3)
        time.sleep(0.4)
        runs = {r["id"]: r for r in httpx.get(server + "/api/runs").json()["runs"]}
        assert runs[run.id]["live"] and runs[run.id]["cost"] == 0.5
        assert runs[past]["cost"] == pytest.approx(0.75) and runs[past]["live"] is False
        snap = httpx.get(f"{server}/api/runs/{run.id}").json()["snapshot"]
        assert snap["root"]["cost"] == 0.5 and snap["root"]["children"][0]["cost"] == 0.5
    one = httpx.get(f"{server}/api/runs/{past}").json()
    assert one["run"]["cost"] == pytest.approx(0.75) and one["phases"][0]["cost"] == pytest.approx(0.5)


def test_the_page_reads_cost_and_never_sums_metric_names(server) -> None:
    script = httpx.get(server + "/page.js").text
    assert "usd" not in script.lower() and "metrics[" not in script


def test_workers_are_listed_in_the_order_of_their_numbers() -> None:
    # w0, w1, w10, w11, ... w19, w2: sorted as text.
    with milepost.Run("many-workers", display="none") as run:
        phase = run.phase("p")
        for i in (10, 2, 0, 1, 11):
            run.context.bind_lane(run.add_lane(f"w{i}"))
            with phase.item(f"doc-{i}"):
                pass
    with History.open() as history:
        assert [w["name"] for w in history.workers(run.id)] == ["w0", "w1", "w2", "w10", "w11"]
