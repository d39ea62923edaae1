"""Commands to a live run, as files: a client drops one in the run's `commands/` directory
(written aside, then renamed in: never read half-written), the run takes it on its next tick
(every 0.25 s), carries it out and drops its answer in `replies/`.

Files, not a socket: nothing to serve in the job, nothing to reconnect, and a command left by a
client that vanished is answered all the same (see the README for the measurements).
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Dict, Iterator, Optional

__all__ = ["KINDS", "write_json", "drop", "take", "answer", "wait_answer"]

#: What a run can be asked, and what each takes: cancel it; run the failed items of its running
#: pools again; skip an item in flight (the job sees `item.skip_requested`).
KINDS = {"cancel": None, "retry": None, "skip": "item"}

COMMANDS = "commands"
REPLIES = "replies"


def write_json(path: Path, data: Any, text: Optional[str] = None, private_tmp: bool = False) -> None:
    """`data` (or ready JSON `text`) as `path`, replaced atomically, readable by its owner only.

    `private_tmp`: the caller is the file's only writer, so it is written aside under one fixed
    name (a third of the cost of a fresh temporary name, which the run pays four times a
    second); otherwise under a unique name."""
    raw = (text if text is not None else json.dumps(data, ensure_ascii=False)).encode("utf-8")
    if private_tmp:
        tmp = str(path.parent / f".{path.name}.{os.getpid()}.tmp")  # two processes of one run id
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    else:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        try:
            _write_all(fd, raw)  # a regular file takes it in one write; the loop is for the rule
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _write_all(fd: int, raw: bytes) -> None:
    view = memoryview(raw)
    while view:
        view = view[os.write(fd, view) :]


def drop(run: Path, kind: str, arg: Optional[str], sender: str) -> str:
    """Leaves a command for the run in directory `run`: its id."""
    command_id = f"{time.time_ns()}-{uuid.uuid4().hex[:8]}"
    body = {"id": command_id, "kind": kind, "arg": arg, "from": sender, "at": time.time()}
    # The run makes no `commands/` of its own (its start waits for every directory it makes);
    # not with parents: a run whose directory is gone has ended.
    (run / COMMANDS).mkdir(mode=0o700, exist_ok=True)
    write_json(run / COMMANDS / f"{command_id}.json", body)
    return command_id


def take(run: Path) -> Iterator[Dict[str, Any]]:
    """The commands waiting for the run, oldest first, each taken (removed) as it is read."""
    try:
        names = sorted(n for n in os.listdir(run / COMMANDS) if n.endswith(".json") and not n.startswith("."))
    except FileNotFoundError:
        return
    for name in names:
        path = run / COMMANDS / name
        try:
            text = _read_small(path)
            path.unlink()
        except OSError:
            path.unlink(missing_ok=True)  # not a command: a link, a pipe, a directory
            continue
        try:
            command = json.loads(text)
            if not isinstance(command, dict):
                raise ValueError("not an object")
        except ValueError:
            command = {"id": name[: -len(".json")], "kind": None, "bad": text[:200]}
        command.setdefault("id", name[: -len(".json")])
        yield command


#: The most of a command file that is read (a command is a few hundred bytes).
MAX_COMMAND_BYTES = 64 * 1024


def _read_small(path: Path) -> str:
    """A command file's text: a regular file only (never through a link, never a pipe that
    would block the run's dispatcher), at most MAX_COMMAND_BYTES of it."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(f"{path} is not a regular file")
        return os.read(fd, MAX_COMMAND_BYTES).decode("utf-8", "replace")
    finally:
        os.close(fd)


def answer(run: Path, command_id: str, ok: bool, message: str) -> None:
    safe = "".join(c for c in str(command_id) if c.isalnum() or c in "-_")[:64] or "unnamed"
    (run / REPLIES).mkdir(mode=0o700, exist_ok=True)
    write_json(run / REPLIES / f"{safe}.json", {"id": command_id, "ok": ok, "message": message, "at": time.time()})


def wait_answer(run: Path, command_id: str, timeout: float) -> Optional[Dict[str, Any]]:
    """The run's answer to a command, or None if none came within `timeout` seconds."""
    path = run / REPLIES / f"{command_id}.json"
    deadline = time.monotonic() + timeout
    while True:
        try:
            reply = json.loads(path.read_text(encoding="utf-8"))
            path.unlink(missing_ok=True)
            return reply if isinstance(reply, dict) else None
        except (OSError, ValueError):
            pass
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.02)
