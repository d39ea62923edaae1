"""The run's resources on every display and in the history: the native frame (run line and a
worker's lane, on a real terminal emulator), plain lines, JSON lines (against the schema),
Prometheus, the history's CPU time and peak memory with `milepost stats`, and the schema's
migration."""

from __future__ import annotations

import io
import json
import multiprocessing as mp
import os
import re
import sqlite3
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import jsonschema
import pytest
from referencing import Registry, Resource

import milepost
from resources_helpers import burn

FORK = mp.get_context("fork")
SCHEMAS = Path(milepost.__file__).parent / "schema"

# A worker burns a core inside an item while the run samples five times a second; the stop
# file ends it after the run has been seen for a while.
NATIVE_JOB = textwrap.dedent(
    """
    import multiprocessing as mp, os, sys, time, milepost
    sys.path.insert(0, TESTS)
    from resources_helpers import burn
    from concurrent.futures import ProcessPoolExecutor
    with milepost.Run("busy", display="native", refresh_hz=20, history=False, resources={"interval": 0.2}) as run:
        with ProcessPoolExecutor(1, mp_context=mp.get_context("fork")) as pool:
            job = pool.submit(burn, run, STOP)
            time.sleep(1.5)
            open(STOP, "w").close()
            job.result()
    """
)


def test_the_native_frame_shows_the_run_s_cpu_and_memory_and_each_worker_s(pty_run, tmp_path) -> None:
    code = NATIVE_JOB.replace("TESTS", repr(str(Path(__file__).parent))).replace("STOP", repr(str(tmp_path / "stop")))
    seen = []

    def watch(raw: bytes, _rows: int, _cols: int) -> None:
        seen.append(raw)

    res = pty_run(code, cols=120, rows=20, timeout=60, on_output=watch)
    assert res.status == 0, res.raw[-2000:]
    raw = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", res.raw.decode("utf-8", "replace"))
    assert re.search(r"busy · running [\d.]+s · 0 processed · \? it/s · CPU \d+% · RSS [\d.]+ [kMG]B", raw), raw[-3000:]
    # While the worker burned, its lane showed its own figures (after what it was on).
    assert re.search(r"pid \d+ ▸ burn \(0 done\) · \d+% · [\d.]+ MB", raw), raw[-3000:]
    # The final frame (left on screen) still says what the run used.
    assert re.search(r"busy · completed [\d.]+s · 1 processed · CPU \d+% · RSS", res.text), res.text


def test_plain_lines_carry_cpu_and_memory(tmp_path) -> None:
    out = io.StringIO()
    with milepost.Run("plain", display="plain", output=out, interval=0.3, history=False, resources={"interval": 0.1}):
        deadline = time.monotonic() + 10
        while "CPU " not in out.getvalue() and time.monotonic() < deadline:
            sum(range(50_000))
    lines = out.getvalue().splitlines()
    assert any(re.search(r"plain · running [\d.]+s · .* · CPU \d+% · RSS [\d.]+ [kMG]B$", line) for line in lines), (
        lines
    )
    assert "\x1b" not in out.getvalue()


def _validators():
    snapshot = json.loads((SCHEMAS / "snapshot-v1.json").read_text())
    jsonl = json.loads((SCHEMAS / "jsonl-v1.json").read_text())
    registry = Registry().with_resources(
        [
            ("https://milepost.invalid/schema/snapshot-v1.json", Resource.from_contents(snapshot)),
            ("https://milepost.invalid/schema/jsonl-v1.json", Resource.from_contents(jsonl)),
        ]
    )
    return jsonschema.Draft202012Validator(jsonl, registry=registry)


def _lane_figures(text: str, pid: int) -> list:
    """The lanes of worker `pid` with a CPU figure in the JSON lines written so far."""
    records = [json.loads(line) for line in text.splitlines() if line.endswith("}")]
    snaps = [r["snapshot"] for r in records if r["type"] == "snapshot"]
    return [lane for s in snaps for lane in s["lanes"] if lane["pid"] == pid and lane["cpu_percent"] is not None]


def test_json_lines_carry_the_resources_of_the_tree_and_of_each_worker(tmp_path) -> None:
    out = io.StringIO()
    stop = tmp_path / "stop"
    with milepost.Run("jsonl", display="json", output=out, interval=0.2, resources={"interval": 0.2}) as run:
        with ProcessPoolExecutor(1, mp_context=FORK) as pool:
            pid = pool.submit(os.getpid).result()
            job = pool.submit(burn, run, str(stop))
            deadline = time.monotonic() + 10
            while not _lane_figures(out.getvalue(), pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            stop.touch()
            job.result()
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    validator = _validators()
    for record in records:
        validator.validate(record)
    snaps = [r["snapshot"] for r in records if r["type"] == "snapshot" and r["snapshot"]["resources"] is not None]
    assert snaps, "snapshots carry the resources once sampled"
    lanes = _lane_figures(out.getvalue(), pid)
    assert lanes and all(lane["rss_bytes"] > 0 for lane in lanes)
    final = snaps[-1]["resources"]
    assert final["cpu_seconds"] > 0 and final["peak_rss_bytes"] > 0 and final["disks"], final


def test_prometheus_has_the_tree_s_and_each_worker_s_cpu_and_memory(tmp_path) -> None:
    pytest.importorskip("starlette")
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    from milepost import dashboard

    dashboard.stop()
    stop = tmp_path / "stop"
    try:
        with milepost.Run("prom", display="none", dashboard={"port": 0}, resources={"interval": 0.2}) as run:
            port = dashboard.current().port
            with ProcessPoolExecutor(1, mp_context=FORK) as pool:
                pid = pool.submit(os.getpid).result()
                job = pool.submit(burn, run, str(stop))
                deadline = time.monotonic() + 10
                while True:
                    text = httpx.get(f"http://127.0.0.1:{port}/metrics").text
                    if f'milepost_process_cpu_ratio{{lane="pid {pid}"' in text or time.monotonic() > deadline:
                        break
                    time.sleep(0.1)
                stop.touch()
                job.result()
    finally:
        dashboard.stop()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    cpu = {
        s.labels["lane"]: s.value for s in families["milepost_process_cpu_ratio"].samples if s.labels["run"] == run.id
    }
    rss = {
        s.labels["lane"]: s.value
        for s in families["milepost_process_resident_bytes"].samples
        if s.labels["run"] == run.id
    }
    assert set(cpu) == {"", f"pid {pid}"} and set(rss) == {"", f"pid {pid}"}, text
    assert cpu[""] >= cpu[f"pid {pid}"] >= 0 and rss[""] > rss[f"pid {pid}"] > 0
    disks = [s for s in families["milepost_disk_free_ratio"].samples if s.labels["run"] == run.id]
    assert disks and all(0 <= s.value <= 1 for s in disks)


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "milepost", *args], capture_output=True, text=True, timeout=60, env={**os.environ}
    )


def test_the_history_keeps_cpu_time_and_peak_memory_and_stats_trend_them(tmp_path) -> None:
    db = tmp_path / "runs.db"
    for k in range(3):
        with milepost.Run("nightly", display="none", history=db, resources={"interval": 0.1}) as run:
            held = b"\x01" * ((k + 1) * 40 * 2**20)
            started = time.process_time()
            while time.process_time() - started < 0.1 * (k + 1):
                pass
            del held
    rows = (
        sqlite3.connect(str(db)).execute("SELECT cpu_seconds, peak_rss_bytes FROM runs ORDER BY started_at").fetchall()
    )
    assert all(cpu >= 0.1 * (k + 1) * 0.8 for k, (cpu, _) in enumerate(rows)), rows
    assert rows[0][1] < rows[1][1] < rows[2][1], "40, 80, 120 MB held on top of the interpreter"
    stats = _cli("stats", "nightly", "--db", str(db))
    assert stats.returncode == 0, stats.stderr
    assert re.search(r"^cpu +\S{3}  min [\d.]+s", stats.stdout, re.M), stats.stdout
    assert re.search(r"^peak rss +\S{3}  min [\d.]+ MB", stats.stdout, re.M), stats.stdout
    data = json.loads(_cli("stats", "nightly", "--db", str(db), "--json").stdout)
    assert data["peak_rss_bytes"]["last"] == rows[2][1] and data["runs"][0]["cpu_seconds"] == rows[0][0]
    show = _cli("show", run.id, "--db", str(db))
    assert re.search(r"resources: CPU time [\d.]+s · peak RSS [\d.]+ MB", show.stdout), show.stdout


def test_a_resumed_run_adds_its_cpu_time_and_keeps_the_peak(tmp_path) -> None:
    db = tmp_path / "runs.db"
    with (
        pytest.raises(RuntimeError),
        milepost.Run("again", display="none", history=db, resources={"interval": 0.1}) as run,
    ):
        held = b"\x01" * (150 * 2**20)
        started = time.process_time()
        while time.process_time() - started < 0.3:
            pass
        del held
        raise RuntimeError("interrupted")
    first = sqlite3.connect(str(db)).execute("SELECT cpu_seconds, peak_rss_bytes FROM runs").fetchone()
    with milepost.Run("again", display="none", history=db, resume=True) as resumed:
        assert resumed.id == run.id
    cpu, peak = sqlite3.connect(str(db)).execute("SELECT cpu_seconds, peak_rss_bytes FROM runs").fetchone()
    assert cpu >= first[0] >= 0.2 and peak == first[1] >= 150 * 2**20


def test_a_version_3_history_migrates_and_runs_without_sampling_keep_none(tmp_path) -> None:
    from milepost.persistence.schema import _V1, _V2, _V3, SCHEMA_VERSION, _script

    path = tmp_path / "old.db"
    db = sqlite3.connect(str(path))
    for script in (_V1, _V2, _V3):
        _script(db, script)
    db.execute("PRAGMA user_version = 3")
    db.execute("INSERT INTO runs (id, name, status, started_at, done) VALUES ('r', 'old', 'completed', 0, 1)")
    db.commit()
    db.close()
    with milepost.Run("old", display="none", history=path, resources=False):
        pass
    db = sqlite3.connect(str(path))
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION >= 4
    assert db.execute("SELECT cpu_seconds, peak_rss_bytes FROM runs").fetchall() == [(None, None), (None, None)]
    stats = json.loads(_cli("stats", "old", "--db", str(path), "--json").stdout)
    assert stats["cpu_seconds"] is None and stats["peak_rss_bytes"] is None
    assert "cpu" not in _cli("stats", "old", "--db", str(path)).stdout.split("\n\n")[-1]
