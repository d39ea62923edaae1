"""The live channel: a job in another process publishes itself; `milepost runs` finds it,
commands steer it, and how it ended (or that it crashed) is always readable."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import milepost
from live_jobs import start_job as _start
from milepost.live.place import LiveError, live_dir
from milepost.live.reader import find_run, list_runs


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "milepost", *args], capture_output=True, text=True, timeout=60)


def _wait_for(predicate, seconds: float = 10.0, step: float = 0.02):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"not within {seconds} s")


def test_a_job_is_listed_live_then_with_its_final_counts() -> None:
    # Four seconds of job: both listings below (a CLI process each, a second or more on a
    # loaded machine) see it running.
    proc, run_id = _start("steady", "200", "0.02")
    try:
        run = find_run(run_id)
        _wait_for(lambda: run.read().root.get("done", 0) > 3)
        listed = json.loads(_cli("runs", "--json").stdout)
        mine = next(e for e in listed if e["id"] == run_id)
        assert mine["state"] == "running" and mine["name"] == "steady" and mine["pid"] == proc.pid
        assert mine["meta"] == {"model": "test-model", "provider": "local"}
        assert "live_jobs.py" in mine["command"]
        table = _cli("runs").stdout
        assert "running" in table and run_id in table and "steady" in table
    finally:
        out, _ = proc.communicate(timeout=60)
    assert "ended completed" in out
    state = find_run(run_id).read()
    assert state.state == "completed"
    assert state.root["done"] == 200 and state.root["children"][0]["done"] == 200


def test_a_job_that_exits_at_once_is_shown_completed_with_its_counts() -> None:
    proc, run_id = _start("quick", "1234")
    proc.communicate(timeout=60)
    state = find_run(run_id).read()
    assert (state.state, state.root["done"]) == ("completed", 1234)


def test_a_killed_job_shows_crashed_and_keeps_its_last_counts() -> None:
    proc, run_id = _start("steady", "100000", "0.01")
    run = find_run(run_id)
    _wait_for(lambda: run.read().root.get("done", 0) > 5)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    t0 = time.monotonic()
    _wait_for(lambda: run.read().state == "crashed", seconds=2)
    assert time.monotonic() - t0 < 2
    assert run.read().root["done"] > 5, "the last published counts stay readable"
    assert "crashed" in _cli("runs").stdout


def test_cancel_reaches_the_job_within_a_second_and_its_history_is_saved() -> None:
    proc, run_id = _start("steady", "100000", "0.01")
    try:
        run = find_run(run_id)
        _wait_for(lambda: run.read().root.get("done", 0) > 5)
        t0 = time.monotonic()
        result = _cli("cancel", run_id)
        assert result.returncode == 0, result.stderr
        assert "cancel requested" in result.stdout
        _wait_for(lambda: run.read().state == "cancelled", seconds=5)
        assert time.monotonic() - t0 < 1.0 + 1.5, "the answer and the end within a second of the command"
    finally:
        out, _ = proc.communicate(timeout=30)
    assert "ended cancelled" in out
    db = sqlite3.connect(str(find_run(run_id).history))
    try:
        assert db.execute("SELECT status FROM runs WHERE id = ?", (run_id,)).fetchone()[0] == "cancelled"
    finally:
        db.close()
    again = _cli("cancel", run_id)
    assert again.returncode == 1 and "has ended (cancelled): nothing changed" in again.stderr


@pytest.mark.parametrize("kind", ["threads", "processes"])
def test_retry_runs_exactly_the_failed_items_again(kind, tmp_path) -> None:
    calls = tmp_path / "calls"
    proc, run_id = _start(kind, "40", str(calls))
    try:
        run = find_run(run_id)
        # Items 3, 13, 23, 33 fail the first time; the last item (39) waits for the retry.
        _wait_for(lambda: run.read().root.get("failed", 0) == 4, seconds=30)
        answer = run.send("retry")
        assert answer == "4 failed items will run again"
        Path(str(calls) + ".retried").touch()
    finally:
        out, err = proc.communicate(timeout=60)
    assert "ended completed" in out, out + err
    results = json.loads(next(line for line in out.splitlines() if line.startswith("results"))[len("results") :])
    assert results == [], "the items run again succeeded and took their places in the results"
    seen = calls.read_text().split()
    again = sorted(int(x) for x in set(seen) if seen.count(x) > 1)
    assert again == [3, 13, 23, 33], "exactly the failed items ran again, none of the completed ones"
    root = find_run(run_id).read().root
    assert (root["done"], root["failed"], root["retried"], root["total"]) == (40, 4, 4, 44)


def test_an_item_asked_to_skip_sees_it() -> None:
    proc, run_id = _start("skippable", "3")
    try:
        run = find_run(run_id)
        for i in range(3):
            _wait_for(lambda i=i: run.read().root.get("in_flight", 0) == 1, seconds=10)
            assert "skip asked" in run.send("skip", f"item-{i}")
            _wait_for(lambda i=i: run.read().root.get("skipped", 0) == i + 1, seconds=5)
    finally:
        out, _ = proc.communicate(timeout=60)
    assert "ended completed 3" in out


def test_bad_requests_are_clear_and_change_nothing(tmp_path) -> None:
    nothing = _cli("cancel", "no-such-run")
    assert nothing.returncode == 1 and "no live runs on this machine yet" in nothing.stderr
    proc, run_id = _start("quick", "5")
    proc.communicate(timeout=60)
    missing = _cli("cancel", "no-such-run")
    assert missing.returncode == 1 and "no run 'no-such-run' on this machine" in missing.stderr
    assert _cli("skip", run_id).returncode == 2  # the item is missing: argparse says so
    run = find_run(run_id)
    with pytest.raises(LiveError, match="unknown command 'reboot'"):
        run.send("reboot")
    # A run published by a newer milepost
    info = json.loads((run.directory / "run.json").read_text())
    (run.directory / "run.json").write_text(json.dumps({**info, "format": 99}))
    with pytest.raises(LiveError, match="newer milepost"):
        find_run(run_id)


@pytest.mark.skipif(os.getuid() != 0, reason="making a directory another user's needs root")
def test_another_users_runs_are_refused(tmp_path) -> None:
    proc, run_id = _start("quick", "5")
    proc.communicate(timeout=60)
    directory = live_dir() / run_id
    os.chown(directory, 65534, 65534)
    with pytest.raises(LiveError, match="belongs to another user"):
        find_run(run_id).read()
    assert all(r.id != run_id for r, _ in list_runs())
    os.chown(live_dir(), 65534, 65534)
    result = _cli("runs")
    assert result.returncode == 1 and "belongs to another user" in result.stderr


def test_the_live_files_are_the_users_alone() -> None:
    with milepost.Run("private", display="none") as run:
        run.phase("p").advance()
    directory = find_run(run.id).directory  # published after its end: it ended at once
    assert directory == live_dir() / run.id
    assert stat.S_IMODE(live_dir().stat().st_mode) == 0o700
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    for name in ("run.json", "snapshot.json", "events.jsonl"):
        assert stat.S_IMODE((directory / name).stat().st_mode) == 0o600, name


def test_a_run_without_history_publishes_nothing() -> None:
    with milepost.Run("unkept", display="none", history=False) as run:
        run.phase("p").advance()
    assert not (live_dir() / run.id).exists()


def test_a_name_is_never_taken_for_the_start_of_another_runs_id() -> None:
    with milepost.Run("other", display="none") as other:
        other.phase("p").advance()
    prefix = other.id[:4]
    with milepost.Run(prefix, display="none") as named:
        _wait_for(lambda: (live_dir() / named.id / "snapshot.json").exists())  # published at 0.25 s
        assert find_run(prefix).id == named.id, "the run of that name, not the run whose id starts so"
        assert find_run(other.id[:6]).id == other.id
        result = _cli("cancel", "a" * 300)
        assert result.returncode == 1 and "no run 'aaaa" in result.stderr and "Traceback" not in result.stderr


def test_milepost_runs_shows_names_and_commands_as_text() -> None:
    with milepost.Run("evil\x1b[31mRED\x1b[0m\nline2\ttab", display="none") as run:
        run.phase("p").advance()
    list_runs()  # a run that ended at once is published at its process's exit, or by a reader there
    table = _cli("runs").stdout
    assert "\x1b" not in table and "evilRED line2 tab" in table
    assert len([line for line in table.splitlines() if run.id in line]) == 1


def test_the_history_commands_show_a_killed_run_crashed() -> None:
    proc, run_id = _start("steady", "100000", "0.01")
    run = find_run(run_id)
    _wait_for(lambda: run.read().root.get("done", 0) > 3)
    time.sleep(1.5)  # the history's writer has written the running phase's row
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    shown = subprocess.run(
        [sys.executable, "-m", "milepost", "history", "--json", "--db", str(run.history)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert [r["status"] for r in json.loads(shown.stdout) if r["id"] == run_id] == ["crashed"]
    detail = subprocess.run(
        [sys.executable, "-m", "milepost", "show", run_id, "--json", "--db", str(run.history)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    phases = json.loads(detail.stdout)["phases"]
    assert phases and {p["status"] for p in phases} <= {"crashed", "completed"}, phases  # not "running"


def test_a_run_that_stopped_publishing_and_then_completed_is_not_called_crashed() -> None:
    with milepost.Run("went-quiet", display="none") as run:
        with run.phase("p") as ph:
            ph.advance(3)
    # Its publishing had stopped (as on a full disk): the last published state says running.
    directory = find_run(run.id).directory
    snapshot = json.loads((directory / "snapshot.json").read_text())
    (directory / "snapshot.json").write_text(json.dumps({**snapshot, "ended": None}))
    info = json.loads((directory / "run.json").read_text())
    (directory / "run.json").write_text(json.dumps({**info, "pid": 2**22 + 12345, "pid_start": 1}))  # gone
    assert find_run(run.id).read().state == "completed", "the history says how it ended"


def test_milepost_home_holds_the_live_directory_unless_it_is_set_apart(monkeypatch, tmp_path) -> None:
    monkeypatch.delenv("MILEPOST_LIVE_DIR", raising=False)
    monkeypatch.setenv("MILEPOST_HOME", str(tmp_path / "home"))
    assert live_dir() == tmp_path / "home" / "live"
    monkeypatch.setenv("MILEPOST_LIVE_DIR", str(tmp_path / "elsewhere"))
    assert live_dir() == tmp_path / "elsewhere"
    monkeypatch.delenv("MILEPOST_LIVE_DIR")
    monkeypatch.delenv("MILEPOST_HOME")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert live_dir() == tmp_path / "cache" / "milepost" / "live"


def test_ended_runs_beyond_the_newest_are_pruned_and_running_ones_kept() -> None:
    from milepost.live import reader

    for i in range(8):
        with milepost.Run(f"short-{i}", display="none"):
            pass
        time.sleep(0.01)  # distinct publish times: the newest are kept
    assert len(list_runs()) == 8, "each published after its end (listing waits for that)"
    root = live_dir()
    (root / ".pruned").touch()
    assert not reader.prune_due(root), "pruned an hour apart..."
    assert reader.prune_due(root, keep_ended=3), "...unless the directory holds more than twice the runs kept"
    reader.prune(root, keep_ended=3)
    assert {run.name for run, _ in list_runs()} == {"short-5", "short-6", "short-7"}
    proc, running = _start("steady", "60", "0.02")
    try:
        find_run(running)
        reader.prune(root, keep_ended=0)
        assert {run.name for run, _ in list_runs()} == {"steady"}, "a running run is kept"
    finally:
        proc.kill()
        proc.communicate(timeout=10)


def test_the_jobs_thread_never_waits_for_the_live_directory(monkeypatch) -> None:
    """A run is published from the delivery thread once it has lived a quarter second; a
    shorter one when its process exits, or when the process reads the live directory: entering
    and leaving a run never waits for the directory. What it logged before is in its events."""
    from milepost.live.publisher import PUBLISH_AFTER, LivePublisher

    opened_on = []
    original = LivePublisher._open  # noqa: SLF001 - the step under test

    def watched(self, *args) -> None:
        opened_on.append(threading.current_thread())
        original(self, *args)

    monkeypatch.setattr(LivePublisher, "_open", watched)
    with milepost.Run("brief", display="none") as brief:
        brief.log("said at once")
    assert opened_on == [], "not at its start, nor at its end"
    state = find_run(brief.id).read()  # a reader in the process publishes what waits
    assert state.state == "completed" and len(opened_on) == 1
    assert any(e.get("message") == "said at once" for e in find_run(brief.id).events().new())
    with milepost.Run("longer", display="none") as longer:
        longer.log("said early")
        time.sleep(PUBLISH_AFTER + 0.3)
        assert (live_dir() / longer.id / "snapshot.json").exists(), "published while it runs"
    assert find_run(longer.id).read().state == "completed"
    assert any(e.get("message") == "said early" for e in find_run(longer.id).events().new())
    assert len(opened_on) == 2 and opened_on[1] is not threading.main_thread()


def test_a_run_that_ends_before_its_first_publish_is_published_later_even_if_old_enough(monkeypatch) -> None:
    """The end's delivery, which the job's thread waits for, makes no directory: a run that
    lived long enough to be published but was not yet (its delivery thread had not come round)
    waits for its process's exit, or a reader, as a brief run does."""
    from milepost import service
    from milepost.live import publisher

    opened_on = []
    original = publisher.LivePublisher._open  # noqa: SLF001 - the step under test

    def watched(self, *args) -> None:
        opened_on.append(threading.current_thread())
        original(self, *args)

    monkeypatch.setattr(publisher.LivePublisher, "_open", watched)
    monkeypatch.setattr(publisher, "PUBLISH_AFTER", 0.0)  # old enough at once
    # Its delivery thread never starts (however slow this machine): the end's delivery, made on
    # the job's thread, is the run's first.
    monkeypatch.setattr(service, "FIRST_DELIVERY", 60.0)
    with milepost.Run("ended-first", display="none") as run:
        run.log("said before the end")
    assert opened_on == [], "not made by the end's delivery"
    assert not (live_dir() / run.id).exists()
    state = find_run(run.id).read()
    assert state.state == "completed" and opened_on == [threading.main_thread()], "made by the reader"
    assert any(e.get("message") == "said before the end" for e in find_run(run.id).events().new())


def test_of_many_short_runs_the_newest_are_published() -> None:
    from milepost.live.backlog import KEEP

    ids = []
    for i in range(KEEP + 5):
        with milepost.Run(f"short-{i}", display="none") as run:
            pass
        ids.append(run.id)
    assert not (live_dir() / ids[-1]).exists(), "waiting for the process's exit or a reader"
    assert {run.id for run, _ in list_runs()} == set(ids[-KEEP:])


def test_a_process_of_short_runs_publishes_them_at_its_exit_and_prunes() -> None:
    """Runs that end within a quarter second are published when their process exits, which
    also removes what is due (here: a run that ended eight days ago)."""
    with milepost.Run("old", display="none") as old:
        pass
    directory = find_run(old.id).directory
    eight_days_ago = time.time() - 8 * 86400
    os.utime(directory / "snapshot.json", (eight_days_ago, eight_days_ago))
    os.utime(live_dir() / ".pruned", (eight_days_ago, eight_days_ago))  # pruned long ago
    code = "import milepost\nwith milepost.Run('quick', display='none') as run:\n    print(run.id)"
    quick = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert quick.returncode == 0, quick.stderr
    assert find_run(quick.stdout.strip()).read().state == "completed", "published at its exit"
    assert not directory.exists(), "the run that ended eight days ago was removed"


def test_a_run_published_after_its_end_goes_where_it_began_and_holds_nothing(monkeypatch, tmp_path) -> None:
    import gc
    import weakref

    monkeypatch.setenv("MILEPOST_LIVE_DIR", str(tmp_path / "began"))
    with milepost.Run("moved", display="none") as run:
        pass
    run_id, ended = run.id, weakref.ref(run)
    del run
    gc.collect()
    assert ended() is None, "waiting to be published holds nothing of the run"
    monkeypatch.setenv("MILEPOST_LIVE_DIR", str(tmp_path / "later"))
    list_runs()  # publishes what waits
    assert (tmp_path / "began" / run_id / "snapshot.json").exists()
    assert not (tmp_path / "later" / run_id).exists()


def test_what_a_run_said_before_its_publish_is_in_its_events() -> None:
    with milepost.Run("chatty-start", display="none") as run:
        for i in range(1500):
            run.log(f"line {i}")
    events = find_run(run.id).events().new(limit=100_000)
    said = [e["message"] for e in events if e.get("message", "").startswith("line ")]
    assert said == [f"line {i}" for i in range(1500)]
    assert events[0]["event"] == "run_started"
