"""The plain (CI) and JSON-lines outputs, parsed the way a log reader or a machine would."""

from __future__ import annotations

import io
import json
import re

import milepost

LINE = re.compile(r"^\[milepost \d\d:\d\d:\d\d\] .+$")


def _job(run, clock) -> None:
    with run.phase("setup", total=2) as setup:
        setup.advance(2)
    with run.phase("map", total=100, unit="doc") as ph:
        for i in range(100):
            clock.advance(0.5)
            ph.advance()
            if i == 10:
                ph.fail("doc-10", TimeoutError("slow"))
            run.poll()
    run.log("done mapping", source="map")


def test_plain_lines_every_interval_and_at_boundaries(clock) -> None:
    out = io.StringIO()
    with milepost.Run("ci", display="plain", output=out, interval=10, clock=clock) as run:
        _job(run, clock)
    text = out.getvalue()
    assert "\r" not in text and text.endswith("\n")
    lines = text.splitlines()
    assert all(LINE.match(line) for line in lines), lines
    run_lines = [line for line in lines if "] ci · " in line]
    # start; setup and map boundaries (one line when they land in one poll); every 10 s
    # over the 50 s of mapping; the end.
    assert 6 <= len(run_lines) <= 10, run_lines
    assert any("  setup: 2/2 · completed" in line for line in lines)
    assert any(re.search(r"  map: \d+/100 · [\d.]+ doc/s · ETA ", line) for line in lines)
    assert any("failed doc-10: TimeoutError: slow" in line for line in lines)
    assert any("INFO [map] done mapping" in line for line in lines)
    assert "ci · completed" in run_lines[-1] and "1 failed" in run_lines[-1]


def test_plain_interval_from_environment(clock, monkeypatch) -> None:
    monkeypatch.setenv("MILEPOST_INTERVAL", "2.5")
    out = io.StringIO()
    with milepost.Run("env", display="plain", output=out, clock=clock) as run:
        ph = run.phase("p")
        for _ in range(10):
            clock.advance(1)
            ph.advance()
            run.poll()
    stamps = [line for line in out.getvalue().splitlines() if "env › p · running" in line]
    assert 4 <= len(stamps) <= 6, out.getvalue()


def test_plain_display_chosen_by_environment_writes_to_a_file(tmp_path, clock, monkeypatch) -> None:
    monkeypatch.setenv("MILEPOST_DISPLAY", "plain")
    path = tmp_path / "progress.log"
    with milepost.Run("file", output=str(path), clock=clock) as run:
        run.phase("p", total=1).advance()
    assert "file › p · completed" in path.read_text()


def test_json_lines_follow_the_schema(clock) -> None:
    out = io.StringIO()
    with milepost.Run("machine", display="json", output=out, interval=5, clock=clock) as run:
        _job(run, clock)
    objs = [json.loads(line) for line in out.getvalue().splitlines()]
    assert all(o["schema"] == milepost.SCHEMA_VERSION and o["type"] in ("event", "snapshot") for o in objs)
    events = [o for o in objs if o["type"] == "event"]
    snaps = [o for o in objs if o["type"] == "snapshot"]
    assert [e["event"] for e in events][:3] == ["run_started", "phase_started", "phase_finished"]
    assert events[-1]["event"] == "run_finished" and events[-1]["state"] == "completed"
    failed = next(e for e in events if e["event"] == "item_failed")
    assert failed["item"] == "doc-10" and failed["path"] == ["machine", "map"]
    assert 10 <= len(snaps) <= 14
    last = snaps[-1]["snapshot"]
    assert last["run_id"] == run.id and last["root"]["done"] == 102 and last["root"]["failed"] == 1
    map_node = last["root"]["children"][1]
    for key in (
        "total",
        "done",
        "failed",
        "skipped",
        "retried",
        "in_flight",
        "processed",
        "fraction",
        "success_rate",
        "rate",
        "eta",
        "eta_low",
        "eta_high",
        "mean_item_seconds",
        "elapsed",
        "metrics",
        "children",
        "unit",
        "state",
        "kind",
        "name",
        "id",
    ):
        assert key in map_node, key
    assert map_node["unit"] == "doc"
    mid = snaps[len(snaps) // 2]["snapshot"]["root"]["children"][1]
    assert mid["rate"] and mid["eta"] is not None
    assert all(snaps[i]["ts"] <= snaps[i + 1]["ts"] for i in range(len(snaps) - 1))


def test_json_lines_to_a_path_append(tmp_path, clock) -> None:
    path = tmp_path / "events.jsonl"
    for name in ("first", "second"):
        with milepost.Run(name, display="json", output=path, clock=clock) as run:
            run.phase("p").advance()
    runs = {json.loads(line).get("run_name") for line in path.read_text().splitlines()}
    assert {"first", "second"} <= runs


def test_rich_renderer_draws_bars_lanes_and_failures(clock) -> None:
    out = io.StringIO()
    with milepost.Run("fancy", display="rich", output=out, clock=clock) as run:
        ph = run.phase("map", total=10)
        with run.lane("w0"):
            ph.advance(4)
            ph.fail("doc-3", "broken <b>")
            with ph.item("doc-4"):
                run.poll()
    text = out.getvalue()
    assert "fancy › map · completed" in text
    assert "map" in text and "6/10" in text
    assert "━" in text, "rich's progress bar is drawn"
    assert "doc-3: broken <b>" in text


def test_plain_writes_an_ended_run_once_when_its_start_snapshot_comes_late(clock) -> None:
    # The start's snapshot is taken on the observers' thread: a loop over before it is taken
    # shows its end in it, and again in the end's own snapshot.
    from milepost.renderers.plain import PlainRenderer

    with milepost.Run("quick", display=None, history=False, clock=clock) as run:
        run.phase("p", total=3).advance(3)
        running = run.snapshot()
    ended = run.snapshot()
    out = io.StringIO()
    renderer = PlainRenderer(out)
    for snapshot in (running, running, ended, ended):
        renderer.on_snapshot(snapshot)
    lines = out.getvalue().splitlines()
    assert [line.split(" · ")[1].split()[0] for line in lines] == [
        "running",
        "running",
        "completed",
    ], lines
