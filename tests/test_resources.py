"""Resource sampling in a run's own process: the figures in the snapshot, turning it off,
bad settings, and the filesystems the run writes to (free space, a warning, one that vanishes).
Worker processes' figures are tested in test_resources_processes.py."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Callable, List, Optional

import pytest

import milepost
from milepost.persistence import History
from milepost.snapshot import ResourcesData


def _tree_size(pid: int) -> int:
    """A process and its descendants, from the kernel's children lists."""
    children: List[str] = []
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            children += Path(f"/proc/{pid}/task/{task}/children").read_text().split()
        except OSError:
            pass
    return 1 + sum(_tree_size(int(child)) for child in children)


def _resource_threads() -> int:
    """Threads of this process named as the resource sampler's (the kernel keeps 15 characters)."""
    names = []
    for task in os.listdir("/proc/self/task"):
        try:
            names.append(Path(f"/proc/self/task/{task}/comm").read_text().strip())
        except OSError:
            pass  # a thread that ended meanwhile
    return sum(name == "milepost-resour" for name in names)


def _threads_become(n: int) -> bool:
    """Whether the sampler threads number `n` within 5 s (a new thread names itself once it runs)."""
    deadline = time.monotonic() + 5
    while _resource_threads() != n and time.monotonic() < deadline:
        time.sleep(0.01)
    return _resource_threads() == n


def _until(run: milepost.Run, check: Callable[[ResourcesData], bool], seconds: float = 10.0) -> ResourcesData:
    """The first sample `check` accepts, waiting at most `seconds` (busy: some checks need CPU)."""
    deadline = time.monotonic() + seconds
    last: Optional[ResourcesData] = None
    while time.monotonic() < deadline:
        last = run.snapshot().data["resources"]
        if last is not None and check(last):
            return last
        sum(range(20_000))
    raise AssertionError(f"no sample as expected within {seconds} s; the last: {last}")


def test_a_run_samples_its_own_process_while_it_goes() -> None:
    before = _resource_threads()
    with milepost.Run("res", display="none", history=False, resources={"interval": 0.2}) as run:
        assert _threads_become(before + 1)
        r = _until(run, lambda r: (r["cpu_percent"] or 0) > 0)
        # This process and whatever children it has now (in a whole test session, pools'
        # helpers and servers earlier tests started may still be there).
        assert r["processes"] == _tree_size(os.getpid()) and r["unreadable"] == 0
        assert r["rss_bytes"] is not None and r["rss_bytes"] > 10_000_000  # an interpreter at least
        assert r["open_files"] is not None and r["open_files"] >= 3
        assert r["cores"] >= 1 and r["interval"] == 0.2
        assert r["machine_cpu_percent"] == pytest.approx(r["cpu_percent"] / r["cores"])
        assert r["read_bytes_per_second"] is not None and r["write_bytes_per_second"] is not None
        assert r["error"] is None
    final = run.snapshot().data["resources"]
    assert final is not None and final["cpu_seconds"] > 0 and final["peak_rss_bytes"] >= r["rss_bytes"]
    # Joined when the run ends; the kernel lists a joined thread for a moment more (a join
    # returns once the thread's exit clears its id, before its entry leaves /proc), which a
    # loaded machine stretches: CI saw it once. A sampler left running would stay listed.
    assert _threads_become(before), "the sampler's thread is gone once the run ends"


def test_resources_false_samples_nothing_and_neither_does_an_injected_clock(clock) -> None:
    before = _resource_threads()
    with milepost.Run("off", display="none", history=False, resources=False) as run:
        assert _resource_threads() == before
        assert run.snapshot().data["resources"] is None
    with milepost.Run("manual", display="none", history=False, clock=clock) as run:
        assert run.snapshot().data["resources"] is None
    for _ in milepost.track(range(3), display="none"):
        assert _resource_threads() == before, "a bare loop samples nothing, as it keeps no history"


@pytest.mark.parametrize(
    ("value", "named"),
    [
        ({"interval": 0}, "interval"),
        ({"interval": 0.01}, "interval"),
        ({"interval": float("nan")}, "interval"),
        ({"interval": "1"}, "interval"),
        ({"interval": True}, "interval"),
        ({"disk_warn": 1.0}, "disk_warn"),
        ({"disk_warn": -0.01}, "disk_warn"),
        ({"disk_warn": None}, "disk_warn"),
        ({"intervals": 1.0}, "'intervals'"),
        ("yes", "'yes'"),
        (5, "5"),
    ],
)
def test_bad_resource_settings_are_refused_naming_them(value: Any, named: str, tmp_path) -> None:
    db = tmp_path / "runs.db"
    with pytest.raises(milepost.InvalidValueError, match=named):
        milepost.Run("bad", display="none", history=db, resources=value)
    assert not db.exists(), "a run refused for its settings leaves no trace"


class _Logs(milepost.BaseObserver):
    def __init__(self) -> None:
        self.lines: List[milepost.LogLine] = []

    def on_event(self, event: milepost.Event) -> None:
        if isinstance(event, milepost.LogLine):
            self.lines.append(event)


def test_a_filesystem_low_on_space_warns_once(tmp_path) -> None:
    logs = _Logs()
    db = tmp_path / "hist" / "runs.db"
    # Every filesystem has less than 99.9999% free: this one is "low" for the test.
    settings = {"interval": 0.1, "disk_warn": 0.999999}
    with milepost.Run("disk", display="none", history=db, resources=settings, observers=[logs]) as run:
        r = _until(run, lambda r: len(r["disks"]) == 1)
        time.sleep(0.5)  # a few more samples: still one warning
    disk = r["disks"][0]
    assert disk["path"] == str(tmp_path / "hist")
    assert disk["low"] and disk["free_bytes"] is not None and 0 <= disk["free_fraction"] < 1
    assert disk["total_bytes"] >= disk["free_bytes"]
    warnings = [e for e in logs.lines if e.level == "warning" and "disk space" in e.message]
    assert len(warnings) == 1, warnings
    assert str(tmp_path / "hist") in warnings[0].message and warnings[0].source == "milepost"
    with History.open(db) as history:
        kept = history.logs(run.id, level="warning")
    assert any("low disk space" in row["message"] for row in kept), kept


def test_a_directory_that_vanishes_has_unknown_free_space(tmp_path) -> None:
    out = tmp_path / "gone" / "run.log"
    out.parent.mkdir()
    kept = tmp_path / "kept" / "run.json"
    kept.parent.mkdir()
    with milepost.Run(
        "vanish", display="plain", output=out, snapshot_file=kept, history=False, resources={"interval": 0.1}
    ) as run:
        _until(run, lambda r: all(d["free_bytes"] is not None for d in r["disks"]) and len(r["disks"]) == 2)
        out.unlink()
        out.parent.rmdir()  # the plain display still holds its file open: nothing breaks
        r = _until(run, lambda r: r["disks"][0]["free_bytes"] is None)
    assert r["disks"][0] == {
        "path": str(tmp_path / "gone"),
        "free_bytes": None,
        "total_bytes": None,
        "free_fraction": None,
        "low": False,
    }
    assert r["disks"][1]["path"] == str(tmp_path / "kept") and r["disks"][1]["free_bytes"] is not None
    assert r["rss_bytes"] is not None
