"""The clients' side of the live channel: find the runs published on this machine, read their
latest state and events, tell a live run from one whose process died, send commands."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from ..errors import MilepostError
from ..outcome import END_STATES
from ..persistence import History
from . import backlog, commands
from .place import FORMAT, HOST, LiveError, alive, check_owned, live_dir, run_dir

__all__ = [
    "LiveRun",
    "LiveState",
    "EventTail",
    "list_runs",
    "find_run",
    "prune",
    "prune_due",
    "KEEP_SECONDS",
    "ANSWER_WAIT",
]

#: How long the directory of a run that ended (or crashed) is kept: `milepost runs` lists it as
#: recent until then.
KEEP_SECONDS = 7 * 24 * 3600
#: Seconds a client waits for a live run to answer a command (it looks four times a second).
ANSWER_WAIT = 3.0
#: Seconds between two prunings of the live directory.
PRUNE_EVERY = 3600.0
#: How many of the newest runs' directories are kept whatever their state (older ones are kept
#: while they run): a machine that starts many short runs kept one for each for KEEP_SECONDS
#: (40,000 directories, about 1 GB, in a week of benchmarks), and a directory that large made
#: every run's start slower.
KEEP_ENDED = 200


@dataclass
class LiveState:
    """A run as last published: `state` is how it ended, `running`, or `crashed` (its process
    is gone and it never ended)."""

    state: str
    published: float
    snapshot: Dict[str, Any]
    meta: Dict[str, Any] = field(default_factory=dict)
    #: What items in flight reported (`Item.progress`, `check`), by item name.
    reports: Dict[str, Dict[str, Any]] = field(default_factory=dict)

    @property
    def root(self) -> Dict[str, Any]:
        return self.snapshot.get("root", {})

    @property
    def ended(self) -> bool:
        return self.state != "running"


class LiveRun:
    """A run in the live directory (see `place`)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._end: Optional[str] = None
        try:
            check_owned(directory)
            self.info: Dict[str, Any] = json.loads((directory / "run.json").read_text(encoding="utf-8"))
        except FileNotFoundError as e:
            raise LiveError(f"{directory} is not a published run (no run.json)") from e
        except ValueError as e:
            raise LiveError(f"{directory / 'run.json'} is unreadable: {e}") from e
        if not isinstance(self.info, dict):
            raise LiveError(f"{directory / 'run.json'} is not a run description")
        try:  # what every client reads of it, checked once
            int(self.info.get("pid", 0))
            float(self.info.get("started_at", 0.0))
        except (TypeError, ValueError) as e:
            raise LiveError(f"{directory / 'run.json'} is not a run description: {e}") from e
        version = self.info.get("format")
        if not isinstance(version, int) or version > FORMAT:
            raise LiveError(
                f"run {directory.name} was published by a newer milepost (live format {version!r}, this one "
                f"reads {FORMAT}): upgrade milepost to attach to it"
            )

    @property
    def id(self) -> str:
        return str(self.info.get("id", self.directory.name))

    @property
    def name(self) -> str:
        return str(self.info.get("name", "?"))

    @property
    def pid(self) -> int:
        return int(self.info.get("pid", 0))

    @property
    def command(self) -> str:
        return " ".join(str(a) for a in self.info.get("argv", []))

    @property
    def started_at(self) -> float:
        return float(self.info.get("started_at", 0.0))

    @property
    def history(self) -> Optional[Path]:
        path = self.info.get("history")
        return Path(path) if path else None

    def process_alive(self) -> bool:
        if self.info.get("host") != HOST:
            return True  # another machine's process (a shared home): we cannot tell; trust it
        return alive(self.pid, self.info.get("pid_start"))

    def read(self) -> LiveState:
        """The latest published state. A run whose process is gone without its end being
        published is `crashed`; its last published counts stay readable."""
        try:
            data = json.loads((self.directory / "snapshot.json").read_text(encoding="utf-8"))
        except FileNotFoundError:
            data = {}
        except ValueError as e:  # written aside and renamed in: only a foreign hand makes this
            raise LiveError(f"{self.directory / 'snapshot.json'} is unreadable: {e}") from e
        if not isinstance(data, dict) or not isinstance(data.get("snapshot") or {}, dict):
            raise LiveError(f"{self.directory / 'snapshot.json'} is not a published snapshot")
        ended = data.get("ended")
        state = str(ended) if ended else ("running" if self.process_alive() else self._end_in_history())
        return LiveState(
            state,
            float(data.get("published") or 0.0),
            data.get("snapshot") or {},
            data.get("meta") or {},
            data.get("reports") or {},
        )

    def _end_in_history(self) -> str:
        """How a run whose process is gone without publishing its end ended, as its history
        has it (publishing may have stopped on a full disk while the run went on to its end);
        `crashed` when the history does not say either. Known once, then kept."""
        if self._end is None:
            self._end = "crashed"
            if self.history is not None:
                try:
                    with History.open(self.history) as history:
                        status = history.status(self.id)
                except (MilepostError, sqlite3.Error, OSError):
                    status = None
                if status in END_STATES:
                    self._end = str(status)
        return self._end

    def events(self) -> EventTail:
        return EventTail(self.directory)

    def send(self, kind: str, arg: Optional[str] = None, timeout: float = ANSWER_WAIT) -> str:
        """Sends a command and returns the run's answer; raises `LiveError` when the run has
        ended, cannot be reached, or refused it (nothing changed then)."""
        if kind not in commands.KINDS:
            raise LiveError(f"unknown command {kind!r} (expected one of {', '.join(commands.KINDS)})")
        if commands.KINDS[kind] and not arg:
            raise LiveError(f"{kind} needs an {commands.KINDS[kind]}")
        state = self.read().state
        if state != "running":
            raise LiveError(f"run {self.name} ({self.id}) has ended ({state}): nothing changed")
        command_id = commands.drop(self.directory, kind, arg, f"pid {os.getpid()} on {HOST}")
        reply = commands.wait_answer(self.directory, command_id, timeout)
        if reply is None:
            try:
                (self.directory / commands.COMMANDS / f"{command_id}.json").unlink()
            except FileNotFoundError:  # the run took it: it may still carry it out
                raise LiveError(
                    f"run {self.name} ({self.id}) took the command but did not answer within {timeout:g} s "
                    "(it may be busy): it may still carry it out"
                ) from None
            state = self.read().state
            why = f"it has ended ({state})" if state != "running" else f"it did not answer within {timeout:g} s"
            raise LiveError(f"run {self.name} ({self.id}): {why}; nothing changed")
        if not reply.get("ok"):
            raise LiveError(str(reply.get("message", "refused")))
        return str(reply.get("message", "done"))


class EventTail:
    """New lines of a run's `events.jsonl` since the last call (follows it across the start of
    a new file)."""

    def __init__(self, directory: Path) -> None:
        self._path = directory / "events.jsonl"
        self._inode: Optional[int] = None
        self._offset = 0
        self._partial = b""

    def new(self, limit: int = 10_000) -> List[Dict[str, Any]]:
        try:
            st = self._path.stat()
        except FileNotFoundError:
            return []
        if st.st_ino != self._inode or st.st_size < self._offset:
            self._inode, self._offset, self._partial = st.st_ino, 0, b""
        if st.st_size == self._offset:
            return []
        with open(self._path, "rb") as f:
            f.seek(self._offset)
            data = f.read(min(st.st_size - self._offset, 8 * 1024 * 1024))
        self._offset += len(data)
        lines = (self._partial + data).split(b"\n")
        self._partial = lines.pop()
        out: List[Dict[str, Any]] = []
        for line in lines[-limit:]:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict):
                out.append(event)
        return out


def _check_root(root: Path) -> None:
    """Refuses a live directory that is not one (MILEPOST_LIVE_DIR naming a file), or not this
    user's alone."""
    if not root.is_dir():
        raise LiveError(f"{root} is not a directory: the live runs' directory (MILEPOST_LIVE_DIR) must be one")
    check_owned(root)


def list_runs(root: Optional[Path] = None) -> List[Tuple[LiveRun, LiveState]]:
    """Every run published on this machine by this user, newest first, with its state."""
    backlog.drain()  # runs of this process that ended before their first publish
    root = root or live_dir()
    if not root.exists():
        return []
    _check_root(root)
    found: List[Tuple[LiveRun, LiveState]] = []
    for entry in os.scandir(root):
        if not entry.is_dir(follow_symlinks=False):
            continue
        try:
            run = LiveRun(Path(entry.path))
            found.append((run, run.read()))
        except (LiveError, OSError, ValueError, TypeError):
            continue  # half-made or foreign: not a run to list
    found.sort(key=lambda pair: pair[0].started_at, reverse=True)
    return found


def find_run(which: str, root: Optional[Path] = None) -> LiveRun:
    """A run by id, by name (the newest of that name), or by the start of its id: in that
    order, so that a name made of hex digits (`cafe`, `2024`) is never taken for another run's
    id."""
    backlog.drain()
    root = root or live_dir()
    if not root.exists():
        raise LiveError(f"no live runs on this machine yet ({root} does not exist)")
    _check_root(root)
    try:
        exact: Optional[Path] = run_dir(which, root)
        is_run = exact is not None and exact.is_dir()
    except (LiveError, OSError):
        is_run = False  # not an id this directory could hold (a path, a 300-character name)
    if is_run and exact is not None:
        return LiveRun(exact)
    runs = list_runs(root)
    by_name = [r for r, _ in runs if r.name == which]
    if by_name:
        return by_name[0]
    by_prefix = [r for r, _ in runs if r.id.startswith(which)] if which else []
    if len(by_prefix) == 1:
        return by_prefix[0]
    if len(by_prefix) > 1:
        raise LiveError(f"{which!r} is the start of {len(by_prefix)} run ids: give more of it")
    raise LiveError(f"no run {which!r} on this machine (see `milepost runs`)")


def prune_due(root: Path, keep_ended: int = KEEP_ENDED) -> bool:
    """Whether the live directory is to be pruned now (and, if so, it is marked pruned): once
    every PRUNE_EVERY seconds, or at once when it holds more than twice `keep_ended` runs. Two
    small reads: a run's start may ask."""
    marker = root / ".pruned"
    try:
        if time.time() - marker.stat().st_mtime < PRUNE_EVERY and not _crowded(root, keep_ended):
            return False
    except FileNotFoundError:
        pass
    marker.touch(mode=0o600)
    os.utime(marker)
    return True


def prune(root: Path, keep: float = KEEP_SECONDS, keep_ended: int = KEEP_ENDED) -> None:
    """Removes the directories of runs that ended (or crashed) over `keep` seconds ago, and of
    those that ended beyond the newest `keep_ended` runs. Reads only the runs it may remove
    (one that is still running stays)."""
    now = time.time()
    runs: List[Tuple[float, Path]] = []
    for entry in os.scandir(root):
        if entry.is_dir(follow_symlinks=False):
            with contextlib.suppress(OSError):
                runs.append((_published(Path(entry.path)), Path(entry.path)))
    for newer, (published, directory) in enumerate(sorted(runs, reverse=True)):  # the newest first
        if newer < keep_ended and now - published <= keep:
            continue
        try:
            if LiveRun(directory).read().ended:
                shutil.rmtree(directory, ignore_errors=True)
        except (LiveError, OSError, ValueError, TypeError):
            continue  # not a run, or not ours to judge: left alone


def _published(directory: Path) -> float:
    """When the run last published: its snapshot's time, else (it never published one) when
    it started."""
    try:
        return (directory / "snapshot.json").stat().st_mtime
    except FileNotFoundError:
        return (directory / "run.json").stat().st_mtime


def _crowded(root: Path, keep_ended: int) -> bool:
    """Whether the live directory holds more than twice `keep_ended` runs, told by its link
    count where that counts its subdirectories (ext4, XFS; elsewhere it is not told)."""
    return os.stat(root).st_nlink > 2 + 2 * keep_ended
