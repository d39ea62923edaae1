"""The dashboard server over real HTTP on loopback: API, SSE, WebSocket, metrics, Cancel,
tokens. Every loop here is bounded in count and time; servers are stopped at the end."""

from __future__ import annotations

import json
import re
import threading
import time
from typing import Dict, Iterator, List, Tuple

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.sync.client import connect

import milepost
from milepost import dashboard


@pytest.fixture
def server():
    dashboard.stop()
    srv = dashboard.start(port=0)
    yield srv
    dashboard.stop()


def _base(srv) -> str:
    return f"http://127.0.0.1:{srv.port}"


def _sse(
    url: str, headers: Dict[str, str] | None = None, limit: int = 200, seconds: float = 10
) -> Iterator[Tuple[str, str, str]]:
    """`(event, id, data)` from an SSE stream, at most `limit` of them or `seconds` long."""
    deadline = time.monotonic() + seconds
    with httpx.stream("GET", url, headers=headers or {}, timeout=seconds) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        event, eid, data, n = "message", "", "", 0
        for line in r.iter_lines():
            if line.startswith(":"):
                continue
            if line == "":
                if data:
                    yield event, eid, data
                    n += 1
                event, eid, data = "message", "", ""
                if n >= limit or time.monotonic() > deadline:
                    return
            elif line.startswith("event: "):
                event = line[7:]
            elif line.startswith("id: "):
                eid = line[4:]
            elif line.startswith("data: "):
                data += line[6:]


def test_api_lists_and_shows_a_live_run(server) -> None:
    with milepost.Run("web-<b>", display="none", dashboard={"port": 0}) as run:
        ph = run.phase("map", total=10)
        ph.advance(4)
        ph.fail("doc-<script>", "bad <b>")
        run.log("careful", level="warning", source="me")
        run.log("chatty", level="info", source="other")
        time.sleep(0.5)
        base = _base(server)
        runs = httpx.get(base + "/api/runs").json()
        assert runs["runs"][0]["id"] == run.id and runs["runs"][0]["live"] is True
        assert runs["runs"][0]["name"] == "web-<b>", "JSON carries names as they are; the page escapes"
        snap = httpx.get(f"{base}/api/runs/{run.id}").json()
        assert snap["live"] is True and snap["snapshot"]["root"]["children"][0]["done"] == 4
        logs = httpx.get(f"{base}/api/runs/{run.id}/logs", params={"level": "warning"}).json()["logs"]
        assert {entry["message"] for entry in logs} == {"careful", "doc-<script>: bad <b>"}
        only = httpx.get(f"{base}/api/runs/{run.id}/logs", params={"source": "other"}).json()["logs"]
        assert [entry["message"] for entry in only] == ["chatty"]
        assert httpx.get(f"{base}/api/runs/nope").status_code == 404
        spec = httpx.get(base + "/openapi.json").json()
        assert "/api/runs/{run_id}/events" in spec["paths"]
    past = httpx.get(f"{base}/api/runs/{run.id}").json()
    assert past["live"] is False and past["snapshot"]["root"]["state"] == "completed"


def test_sse_streams_snapshots_and_events_and_resumes(server) -> None:
    with milepost.Run("sse", display="none", dashboard={"port": 0}) as run:
        ph = run.phase("p", total=1000)
        stop = threading.Event()

        def work():
            while not stop.is_set():
                ph.advance()
                time.sleep(0.005)

        t = threading.Thread(target=work)
        t.start()
        try:
            url = f"{_base(server)}/api/runs/{run.id}/events"
            got: List[Tuple[str, str, str]] = []
            start = time.monotonic()
            for item in _sse(url, limit=40, seconds=4):
                got.append(item)
                if sum(1 for e in got if e[0] == "snapshot") >= 10:
                    break
            took = time.monotonic() - start
            kinds = [e[0] for e in got if e[0] != "snapshot"]
            assert kinds[:2] == ["run_started", "phase_started"]
            snaps = [json.loads(d) for k, _, d in got if k == "snapshot"]
            dones = [s["root"]["done"] for s in snaps]
            assert dones == sorted(dones) and dones[-1] > dones[0], "the numbers rise"
            assert len(snaps) <= 10 * took + 2, "at most 10 snapshots a second"
            # Resume after the first event: only later events come again.
            resumed = [e for e in _sse(url, headers={"Last-Event-ID": "1"}, limit=3, seconds=3) if e[0] != "snapshot"]
            assert resumed and resumed[0][0] == "phase_started" and int(resumed[0][1]) == 2
        finally:
            stop.set()
            t.join()


def test_websocket_carries_the_same_stream(server) -> None:
    with milepost.Run("ws", display="none", dashboard={"port": 0}) as run:
        run.phase("p", total=5).advance(2)
        time.sleep(0.3)
        with connect(f"ws://127.0.0.1:{server.port}/ws?run={run.id}", open_timeout=5) as sock:
            messages = [json.loads(sock.recv(timeout=5)) for _ in range(3)]
    types = [m["type"] for m in messages]
    assert types[0] == "run_started" and "snapshot" in types
    snap = next(m for m in messages if m["type"] == "snapshot")["data"]
    assert snap["root"]["children"][0]["done"] == 2


def test_metrics_parse_with_prometheus_client(server) -> None:
    with milepost.Run("prom", display="none", dashboard={"port": 0}) as run:
        ph = run.phase("map", total=8)
        ph.advance(3)
        ph.metric("cost_usd", 0.5)
        time.sleep(0.4)
        text = httpx.get(_base(server) + "/metrics").text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    done = [
        s for s in families["milepost_items"].samples if s.labels == {"run": run.id, "phase": "map", "status": "done"}
    ]
    assert done[0].value == 3.0
    expected = [s for s in families["milepost_items_expected"].samples if s.labels["phase"] == "map"]
    assert expected[0].value == 8.0
    cost = [s for s in families["milepost_metric"].samples if s.labels["name"] == "cost_usd"]
    assert cost[0].value == 0.5


def test_cancel_from_the_dashboard_ends_the_run_cancelled(server) -> None:
    outcome: Dict[str, object] = {}

    def job():
        with milepost.Run("to-cancel", display="none", dashboard={"port": 0}) as run:
            outcome["id"] = run.id
            try:
                milepost.thread_map(lambda x: time.sleep(0.02), range(10_000), workers=4, description="map")
            except milepost.Cancelled:
                outcome["cancelled"] = True
        outcome["state"] = run.snapshot().root["state"]
        outcome["done"] = run.snapshot().find("map")["done"]

    t = threading.Thread(target=job)
    t.start()
    for _ in range(100):
        if "id" in outcome:
            break
        time.sleep(0.05)
    time.sleep(0.3)
    url = f"{_base(server)}/api/runs/{outcome['id']}/cancel"
    other = httpx.post(url, headers={"Origin": "http://evil.example"})
    assert other.status_code == 403, "another site's page cannot cancel"
    ok = httpx.post(url, headers={"Origin": _base(server)})
    assert ok.status_code == 202
    t.join(30)
    assert outcome.get("cancelled") and outcome["state"] == "cancelled"
    assert 0 < outcome["done"] < 10_000


def test_binding_beyond_127_0_0_1_requires_the_token() -> None:
    dashboard.stop()
    srv = dashboard.start(host="127.0.0.2", port=0)  # loopback range, but not the default address
    try:
        assert srv.token and srv.url.endswith(f"?token={srv.token}")
        base = f"http://127.0.0.2:{srv.port}"
        with milepost.Run("secure", display="none", dashboard={"port": 0}) as run:
            run.phase("p").advance()
            time.sleep(0.3)
            assert httpx.get(base + "/api/runs").status_code == 401
            assert httpx.get(base + "/", params={"token": "wrong"}).status_code == 401
            assert httpx.get(base + "/api/runs", headers={"Authorization": f"Bearer {srv.token}"}).status_code == 200
            assert httpx.get(f"{base}/api/runs/{run.id}/events", params={"token": "x"}).status_code == 401
            first = next(_sse(f"{base}/api/runs/{run.id}/events?token={srv.token}", limit=1, seconds=5))
            assert first[0] == "run_started"
            with pytest.raises(Exception):
                with connect(f"ws://127.0.0.2:{srv.port}/ws?run={run.id}", open_timeout=5) as sock:
                    sock.recv(timeout=2)
            with connect(f"ws://127.0.0.2:{srv.port}/ws?run={run.id}&token={srv.token}", open_timeout=5) as sock:
                assert json.loads(sock.recv(timeout=5))["type"] == "run_started"
            assert httpx.post(f"{base}/api/runs/{run.id}/cancel").status_code == 401
    finally:
        dashboard.stop()


def test_the_page_is_whole_and_served_without_a_file_path(server) -> None:
    base = _base(server)
    page = httpx.get(base + "/")
    assert page.status_code == 200 and "<html" in page.text.lower()
    assert "default-src 'none'" in page.headers["content-security-policy"]
    script, style = httpx.get(base + "/page.js"), httpx.get(base + "/page.css")
    assert script.headers["content-type"].startswith("text/javascript") and "textContent" in script.text
    assert style.headers["content-type"].startswith("text/css") and "#run-name" in style.text
    text = page.text + script.text + style.text
    # Nothing loaded from elsewhere: no external src/href, CSS url() or @import, and every
    # fetch, EventSource and WebSocket URL is relative (the SVG namespace URI is no fetch).
    external = re.findall(
        r"""(?:src|href)\s*=\s*["']\s*(?:https?:)?//|url\(\s*["']?\s*(?:https?:)?//|@import""",
        text,
        flags=re.IGNORECASE,
    )
    assert external == [], external
    remote = re.findall(r"""(?:fetch|EventSource|WebSocket)\(\s*["'`]https?://""", text)
    assert remote == [], remote
    # ...and relative to where the app is mounted: no path from the server's root.
    rooted = re.findall(r"""(?:api|fetch|EventSource)\(\s*["'`]/|(?:src|href)\s*=\s*["']/""", text)
    assert rooted == [], rooted
    assert "<script>" not in page.text and "<style>" not in page.text, "no inline script or style"
    for probe in ("/page.html", "/dashboard/page.html", "/../pyproject.toml", "/static/page.html"):
        assert httpx.get(base + probe).status_code == 404


def test_milepost_serve_shows_the_history(tmp_path) -> None:
    import os
    import signal
    import subprocess
    import sys

    db = tmp_path / "runs.db"
    with milepost.Run("kept", display="none", history=db) as run:
        run.phase("p", total=3).advance(3)
    with subprocess.Popen(
        [sys.executable, "-m", "milepost", "serve", "--port", "0", "--db", str(db)],
        stdout=subprocess.PIPE,
        text=True,
        env=os.environ,
    ) as proc:
        try:
            line = proc.stdout.readline()
            assert line.startswith("milepost dashboard: http://127.0.0.1:") and ":0/" not in line
            url = line.split(": ", 1)[1].strip()
            runs = httpx.get(url + "api/runs", timeout=10).json()["runs"]
            assert [(r["name"], r["status"], r["live"]) for r in runs] == [("kept", "completed", False)]
            past = httpx.get(f"{url}api/runs/{run.id}", timeout=10).json()
            assert past["live"] is False and past["phases"][0]["done"] == 3
            assert httpx.get(url, timeout=10).status_code == 200
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
    assert proc.returncode == 0


def test_a_foreign_host_is_refused_on_loopback(server) -> None:
    """DNS rebinding: a page on attacker.example, its name resolved to 127.0.0.1, sends its own
    Host. Only loopback names and addresses on the server's own port are answered."""
    port = server.port
    with milepost.Run("rebind", display="none", dashboard={"port": 0}) as run:
        run.phase("p", total=10).advance(2)
        run.log("secret line", source="me")
        time.sleep(0.3)
        base = _base(server)
        for host in (
            f"attacker.example:{port}",
            "attacker.example",
            f"127.0.0.1:{port + 1}",
            f"localhost.attacker.example:{port}",
            "127.0.0.1",
        ):
            for path in ("/api/runs", f"/api/runs/{run.id}/logs", "/", "/metrics"):
                r = httpx.get(base + path, headers={"Host": host})
                assert r.status_code == 400, (host, path, r.status_code)
                assert host in r.json()["error"] and "secret line" not in r.text
            r = httpx.post(f"{base}/api/runs/{run.id}/cancel", headers={"Host": host, "Origin": f"http://{host}"})
            assert r.status_code == 400
        for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"127.0.0.5:{port}", f"[::1]:{port}"):
            assert httpx.get(base + "/api/runs", headers={"Host": host}).status_code == 200, host
        assert not run.cancelled


def test_cancel_without_an_origin_or_token_is_refused(server) -> None:
    """Any local process could cancel with a bare POST: it needs the page's own Origin."""
    with milepost.Run("no-origin", display="none", dashboard={"port": 0}) as run:
        run.phase("p", total=10).advance(1)
        time.sleep(0.2)
        r = httpx.post(f"{_base(server)}/api/runs/{run.id}/cancel")
        assert r.status_code == 403 and "origin" in r.json()["error"].lower()
        assert not run.cancelled


def test_the_websocket_refuses_a_foreign_origin_and_host(server) -> None:
    from websockets.exceptions import InvalidStatus

    with milepost.Run("ws-origin", display="none", dashboard={"port": 0}) as run:
        run.phase("p").advance()
        time.sleep(0.2)
        url = f"ws://127.0.0.1:{server.port}/ws?run={run.id}"
        with pytest.raises(InvalidStatus) as refused:
            with connect(url, origin="http://evil.example", open_timeout=5) as sock:  # type: ignore[arg-type]
                sock.recv(timeout=2)
        assert refused.value.response.status_code == 403
        with pytest.raises(InvalidStatus):
            with connect(url, additional_headers={"Host": f"attacker.example:{server.port}"}, open_timeout=5) as sock:
                sock.recv(timeout=2)
        own = f"http://127.0.0.1:{server.port}"
        with connect(url, origin=own, open_timeout=5) as sock:  # type: ignore[arg-type]
            assert json.loads(sock.recv(timeout=5))["type"] == "run_started"


def test_responses_forbid_framing_and_sniffing_and_inline_script(server) -> None:
    base = _base(server)
    page = httpx.get(base + "/")
    csp = page.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "'unsafe-inline'" not in csp.split("script-src", 1)[1].split(";")[0]
    assert page.headers["x-frame-options"] == "DENY"
    for path in ("/", "/api/runs", "/metrics", "/openapi.json", "/healthz", "/api/runs/nope"):
        r = httpx.get(base + path)
        assert r.headers["x-content-type-options"] == "nosniff", path
        assert r.headers["x-frame-options"] == "DENY", path


@pytest.mark.parametrize(
    "path, param, value",
    [
        ("/api/runs", "limit", "abc"),
        ("/api/runs", "limit", "-1"),
        ("/api/runs", "offset", "x"),
        # Found trying it as a user: numbers past what SQLite takes answered 500.
        ("/api/runs", "offset", "9223372036854775807"),
        ("/api/runs", "offset", "99999999999999999999"),
        ("/api/runs/{id}/logs", "after", "99999999999999999999"),
        ("/api/runs/{id}/logs", "after", "abc"),
        ("/api/runs/{id}/logs", "level", "loud"),
        ("/api/runs/{id}/events", "after", "abc"),
    ],
)
def test_bad_query_values_get_400_naming_them(server, path, param, value) -> None:
    with milepost.Run("bad-input", display="none", dashboard={"port": 0}) as run:
        time.sleep(0.1)
        r = httpx.get(_base(server) + path.format(id=run.id), params={param: value})
        assert r.status_code == 400
        error = r.json()["error"]
        assert param in error and repr(value) in error, error


def test_a_bad_last_event_id_gets_400(server) -> None:
    with milepost.Run("bad-header", display="none", dashboard={"port": 0}) as run:
        r = httpx.get(f"{_base(server)}/api/runs/{run.id}/events", headers={"Last-Event-ID": "x1"})
        assert r.status_code == 400 and "Last-Event-ID" in r.json()["error"]


@pytest.mark.parametrize("token", ["x", "abc123", "a" * 32])
def test_a_weak_token_is_refused(token) -> None:
    dashboard.stop()
    with pytest.raises(milepost.InvalidValueError, match="token"):
        dashboard.start(host="127.0.0.2", port=0, token=token)
    assert dashboard.current() is None
    with pytest.raises(milepost.InvalidValueError, match="token"):
        dashboard.create_app(token=token)


def test_dashboard_zero_serves_on_a_free_port() -> None:
    dashboard.stop()
    try:
        with milepost.Run("port-zero", display="none", dashboard=0) as run:
            srv = dashboard.current()
            assert srv is not None and srv.port not in (0, 8080)
            time.sleep(0.2)
            ids = [r["id"] for r in httpx.get(_base(srv) + "/api/runs").json()["runs"]]
            assert run.id in ids
    finally:
        dashboard.stop()


def test_a_busy_port_does_not_stop_the_job(caplog) -> None:
    """Another process holds the port: the job still runs, on the next free port, and the
    warning names the busy port."""
    import logging
    import socket

    dashboard.stop()
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    busy = holder.getsockname()[1]
    try:
        with caplog.at_level(logging.WARNING, logger="milepost"):
            with milepost.Run("busy", display="none", dashboard={"port": busy}) as run:
                run.phase("p", total=3).advance(3)
                srv = dashboard.current()
        assert run.snapshot().root["done"] == 3
        assert srv is not None and srv.port != busy
        assert str(busy) in caplog.text and str(srv.port) in caplog.text
    finally:
        holder.close()
        dashboard.stop()


def test_starting_on_a_busy_port_names_it() -> None:
    import socket

    dashboard.stop()
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        busy = holder.getsockname()[1]
        with pytest.raises(OSError, match=f"127.0.0.1:{busy}"):
            dashboard.start(port=busy)
    assert dashboard.current() is None


def test_two_servers_stream_the_same_run(server) -> None:
    """The run's own server and an app that mounts `create_app()` (each its own loop) follow
    one run together, and both get its end."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.routing import Mount

    from test_dashboard_end import raw_sse, read_to_eof, sse_events

    outer = uvicorn.Server(
        uvicorn.Config(
            Starlette(routes=[Mount("/progress", app=dashboard.create_app())]),
            host="127.0.0.1",
            port=0,
            log_level="critical",
            lifespan="off",
        )
    )
    thread = threading.Thread(target=outer.run, daemon=True)
    thread.start()
    try:
        for _ in range(200):
            if outer.started:
                break
            time.sleep(0.05)
        port = outer.servers[0].sockets[0].getsockname()[1]
        with milepost.Run("two-loops", display="none", dashboard={"port": 0}) as run:
            ours = raw_sse(server.port, run.id)
            mounted = raw_sse(port, run.id, "/progress")
            time.sleep(0.3)
            run.phase("p", total=3).advance(3)
        for raw in (read_to_eof(ours, 10), read_to_eof(mounted, 10)):
            kinds = [k for k, _ in sse_events(raw)]
            assert kinds[-1:] == ["end"] and "run_finished" in kinds, kinds[-4:]
    finally:
        outer.should_exit = True
        thread.join(15)


def test_a_run_asked_for_before_its_first_delivery_is_live(server) -> None:
    """Found in CI under load: a page that asked for a run before its first snapshot reached
    the dashboard (its delivery thread starts a moment after the run) got the history's row,
    showed a recorded run, and never followed the live one."""
    with milepost.Run("asked-early", display="none", dashboard={"port": 0}) as run:
        r = httpx.get(_base(server) + f"/api/runs/{run.id}")
        assert r.status_code == 200 and r.json()["live"] is True, r.text
        assert r.json()["snapshot"]["name"] == "asked-early"
