"""The run's side of the live channel: an observer that publishes the run outside its process
and carries out the commands it is sent.

A run is published once it has lived PUBLISH_AFTER seconds: its directory is made then, on
the delivery thread; a run that ends before then (before that thread published it) waits in
`backlog` to be published when its process exits (the job's thread, which waits for the end's
delivery, never waits for the directory). In it (see `place`): `run.json` (who and where, written once),
`snapshot.json` (the latest snapshot, whose lanes carry the tails of what items stream, with
the run's metadata and what items in flight reported (progress, checks), replaced atomically
four times a second and at the end, with how the run ended),
`events.jsonl` (lifecycle events and log lines, appended; kept under EVENTS_BYTES by starting
a new file and keeping the one before as `events.1.jsonl`), and the `commands/` and `replies/`
of `commands` (each made by the first to write there). A write that fails (a full disk) is
said once and publishing stops; the job goes on.
"""

from __future__ import annotations

import collections
import functools
import json
import logging
import os
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Deque, Dict, List, Optional, Set, TextIO

from ..events import Event, RunFinished
from ..observers.base import BaseObserver
from . import backlog, commands
from .place import FORMAT, HOST, LiveError, ensure_live_dir, live_dir, process_start, run_dir
from .reader import prune, prune_due

if TYPE_CHECKING:
    from ..snapshot import Snapshot

__all__ = ["LivePublisher", "Steering"]

_log = logging.getLogger("milepost")

#: Seconds between published snapshots (and between looks for commands).
PUBLISH_INTERVAL = 0.25
#: Seconds a run has lived when it is first published: its directory is made then, on the
#: delivery thread. A run that ends before then (before that thread published it) is published
#: when its process exits (`backlog`): making and writing a directory costs more than such a
#: run, which should not wait for it.
PUBLISH_AFTER = PUBLISH_INTERVAL
#: Events kept for a run not yet published (written once it is; a flood keeps the first,
#: its start, and the newest).
EARLY_EVENTS = 10_000
#: Size at which the events file starts over (the previous one is kept beside it).
EVENTS_BYTES = 4 * 1024 * 1024

#: The live directories this process made or found and checked (`place.ensure_live_dir`).
_CHECKED: Set[Path] = set()


class Steering:
    """What the commands do to the run (given by the run: the publisher never imports it)."""

    def __init__(
        self,
        cancel: Callable[[str], None],
        retry: Callable[[], int],
        skip: Callable[[str], None],
        meta: Callable[[], Dict[str, Any]],
        reports: Callable[[], Dict[str, Dict[str, Any]]] = dict,
    ) -> None:
        self.cancel = cancel
        self.retry = retry
        self.skip = skip
        self.meta = meta
        #: What items in flight reported (progress, checks), by item name.
        self.reports = reports

    @classmethod
    def ended(cls, meta: Dict[str, Any], reports: Dict[str, Dict[str, Any]]) -> Steering:
        """A run's steering once it has ended: its last metadata and reports, nothing to do."""

        def refuse(*_: Any) -> Any:
            raise LiveError("the run has ended")

        return cls(refuse, refuse, refuse, lambda: meta, lambda: reports)


#: Held while this process prunes the live directory (one pruning at a time).
_PRUNING = threading.Lock()


def _prune_if_due(root: Path, here: bool = False) -> None:
    """Prunes the live directory if it is due, on a thread of its own: removing a few hundred
    directories takes tens of milliseconds, which no run's end should wait for. A pruning cut
    short by the process's exit is finished by the next. `here`: on this thread (at the
    process's exit, where no thread may start any more)."""
    if not prune_due(root) or not _PRUNING.acquire(blocking=False):
        return
    if here:
        try:
            prune(root)
        finally:
            _PRUNING.release()
        return

    def work() -> None:
        try:
            prune(root)
        except Exception as e:  # noqa: BLE001 - housekeeping: said, and done again next time
            _log.warning("milepost: pruning the live directory %s failed (%s: %s)", root, type(e).__name__, e)
        finally:
            _PRUNING.release()

    threading.Thread(target=work, name="milepost-prune", daemon=True).start()


def own_start() -> Optional[int]:
    """`process_start` of this process, read once a process (in a forked child, again)."""
    pid = os.getpid()
    if _OWN_START[0] != pid:
        _OWN_START[:] = [pid, process_start(pid)]
    return _OWN_START[1]


_OWN_START: List[Optional[int]] = [None, None]


@functools.lru_cache(maxsize=16)
def _resolved(path: str, cwd: str) -> str:
    """The history file's resolved path (`path` as seen from `cwd`), for readers anywhere."""
    return str(Path(cwd, path).resolve())


class LivePublisher(BaseObserver):
    """Publishes a run in the live directory (see the module's docstring)."""

    interval: Optional[float] = PUBLISH_INTERVAL  # typed as the observer protocol has it
    snapshot_on_boundaries = True

    def __init__(self, run_id: str, name: str, started_at: float, history: Optional[Path], steer: Steering) -> None:
        self._id = run_id
        cwd = os.getcwd()  # once: a run's start may wait for the interpreter's lock at each call
        self._info = {
            "format": FORMAT,
            "id": run_id,
            "name": name,
            "pid": os.getpid(),
            "pid_start": own_start(),
            "host": HOST,
            "argv": list(sys.argv),
            "cwd": cwd,
            "started_at": started_at,
            "history": _resolved(str(history), cwd) if history is not None else None,
        }
        self._steer = steer
        self._born = time.monotonic()
        #: Where the run is published: chosen at its start (a run published later, at the
        #: process's exit, goes where the run began, whatever the environment says by then).
        self._root = live_dir()
        #: The run's directory, made once the run has lived PUBLISH_AFTER seconds.
        self._dir: Optional[Path] = None
        #: The events delivered before then, written once it is made.
        self._early: Deque[Event] = collections.deque(maxlen=EARLY_EVENTS)
        #: The newest snapshot of a run not published yet (its end's, once it ended).
        self._unpublished: Optional[Snapshot] = None
        self._events: Optional[TextIO] = None
        self._ended: Optional[str] = None
        self._off = False
        self._written = 0

    @property
    def directory(self) -> Optional[Path]:
        return self._dir

    def _open(self, at_exit: bool = False) -> None:
        # On the delivery thread, once the run has lived PUBLISH_AFTER seconds (or, for a run
        # that ended first, from the backlog): the live directory is checked once a process
        # (made again if it went), `commands/` and `replies/` are made by whoever first writes
        # there, and `run.json` has one writer, this process.
        root = self._root
        directory = run_dir(self._id, root)
        try:
            if root not in _CHECKED:
                raise FileNotFoundError(root)
            directory.mkdir(mode=0o700, exist_ok=True)
        except FileNotFoundError:
            ensure_live_dir(root)
            _CHECKED.add(root)
            directory.mkdir(mode=0o700, exist_ok=True)
        self._dir = directory
        commands.write_json(directory / "run.json", self._info, private_tmp=True)
        fd = os.open(directory / "events.jsonl", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._events = open(fd, "a", encoding="utf-8")  # noqa: SIM115 - kept open
        self._written = self._events.tell()
        early, self._early = self._early, collections.deque()
        for event in early:
            self._append(event)
        _prune_if_due(root, here=at_exit)  # ended runs' leftovers (a listing; removed if due)

    def on_event(self, event: Event) -> None:
        if isinstance(event, RunFinished):
            self._ended = event.state
        if self._events is not None:
            self._guard(self._append, event)
        elif self._dir is None:
            if len(self._early) == EARLY_EVENTS:
                first = self._early.popleft()  # the run's start stays; the oldest after it goes
                self._early.popleft()
                self._early.appendleft(first)
            self._early.append(event)

    def _append(self, event: Event) -> None:
        assert self._events is not None and self._dir is not None
        line = json.dumps(event.to_dict(), ensure_ascii=False, separators=(",", ":")) + "\n"
        self._events.write(line)
        self._written += len(line)  # characters: near enough to bytes for a bound (tell() flushes)
        if self._written > EVENTS_BYTES:
            self._written = 0
            self._events.close()
            os.replace(self._dir / "events.jsonl", self._dir / "events.1.jsonl")
            self._events = open(self._dir / "events.jsonl", "a", encoding="utf-8")  # noqa: SIM115
            os.chmod(self._dir / "events.jsonl", 0o600)

    def on_snapshot(self, snapshot: Snapshot) -> None:
        if self._dir is None:
            # Not published yet and young, or ended (this is its end's snapshot, delivered
            # while the job's thread waits): published when its process exits (`backlog`).
            if self._off or self._ended is not None or time.monotonic() - self._born < PUBLISH_AFTER:
                self._unpublished = snapshot
                return
            self._guard(self._open)
            if self._dir is None:
                return
        self._guard(self._publish, snapshot)
        self._guard(self._obey)

    def _publish(self, snapshot: Snapshot) -> None:
        assert self._dir is not None
        if self._events is not None:
            self._events.flush()  # events before the snapshot that follows them
        head = {
            "format": FORMAT,
            "published": time.time(),
            "ended": self._ended,
            "meta": self._steer.meta(),
            "reports": self._steer.reports(),
        }
        text = json.dumps(head, ensure_ascii=False, separators=(",", ":"))
        body = f'{text[:-1]},"snapshot":{snapshot.json()}}}'
        commands.write_json(self._dir / "snapshot.json", None, body, private_tmp=True)

    def _obey(self) -> None:
        assert self._dir is not None
        for command in commands.take(self._dir):
            try:
                ok, message = self._carry_out(command)
            except Exception as e:  # noqa: BLE001 - a taken command is always answered
                ok, message = False, f"the run could not do it: {type(e).__name__}: {e}"
            commands.answer(self._dir, command["id"], ok, message)

    def _carry_out(self, command: Dict[str, Any]) -> tuple[bool, str]:
        kind, arg, sender = command.get("kind"), command.get("arg"), str(command.get("from") or "a client")
        if self._ended is not None:
            return False, f"the run has ended ({self._ended}): nothing changed"
        if kind == "cancel":
            self._steer.cancel(f"asked by {sender}")
            return True, "cancel requested: items in flight finish, no new ones start"
        if kind == "retry":
            n = self._steer.retry()
            if n == 0:
                return True, "no failed items to run again in the run's running pools"
            return True, f"{n} failed item{'s' if n != 1 else ''} will run again"
        if kind == "skip" and isinstance(arg, str) and arg:
            self._steer.skip(arg)
            return True, (
                f"skip asked for {arg!r}: skipped if the job checks item.skip_requested while it runs it "
                "(within 10 minutes, in the run's own process)"
            )
        return False, f"unknown command {kind!r} (expected one of {', '.join(commands.KINDS)})"

    def close(self) -> None:
        if self._dir is None:
            if self._unpublished is not None and not self._off:
                # A run that ended before its first publish: what the publish needs is taken
                # now, so that waiting for it holds nothing of the run (its steering is the
                # run's own methods).
                meta, reports = self._steer.meta(), self._steer.reports()
                self._steer = Steering.ended(meta, reports)
                backlog.later(self._publish_ended)
            return
        # Commands that came after the last look are answered: nobody waits for ever.
        self._guard(self._obey)
        if self._events is not None:
            self._guard(self._events.close)
            self._events = None

    def _publish_ended(self, at_exit: bool) -> None:
        """The directory of a run that has ended, with its last snapshot (from `backlog`: at
        the process's exit, where pruning, if due, is done here, or for a reader)."""
        final, self._unpublished = self._unpublished, None
        self._guard(self._open, at_exit)
        if self._dir is not None and final is not None:
            self._guard(self._publish, final)
        self.close()  # as a published run's end: its events file closed

    def _guard(self, action: Callable[..., Any], *args: Any) -> None:
        if self._off:
            return
        try:
            action(*args)
        except (OSError, LiveError) as e:
            self._off = True
            _log.warning("milepost: live publishing stopped (%s); the job goes on, `milepost monitor` cannot see it", e)
