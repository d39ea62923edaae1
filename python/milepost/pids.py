"""Is the process that wrote a run still there? Its pid, and (on Linux) when it started, so
that a new process that reuses the number is no alibi, and a killed one not yet reaped by its
parent (a zombie) counts as gone. Read by the live channel and by the history's readers."""

from __future__ import annotations

import functools
import os
import socket
from typing import List, Optional

__all__ = ["HOST", "alive", "alive_since", "process_start"]

#: This machine's name: a run on another host (a shared home directory) is never judged by
#: its pid here.
HOST = socket.gethostname()


def _stat(pid: int) -> Optional[List[bytes]]:
    """The fields of /proc/`pid`/stat after the command name, or None where there are none."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold spaces: count from its end.
    return data[data.rindex(b")") + 2 :].split()


def process_start(pid: int) -> Optional[int]:
    """When process `pid` started (clock ticks since boot, from /proc), or None where that is
    unknown: with the pid it tells a live process from a new one that reuses its number."""
    fields = _stat(pid)
    return int(fields[19]) if fields else None


def alive(pid: int, start: Optional[int]) -> bool:
    """Whether the process that published a run is still there."""
    if os.name == "nt":  # os.kill there terminates the process: never use it to look
        return _alive_on_windows(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False  # there, but another user's: a reused pid (ours we could signal)
    fields = _stat(pid)
    if fields is None:
        # Gone since the signal check, or no /proc on this system (the pid is all we have).
        return not os.path.exists("/proc/self/stat")
    if fields[0] in (b"Z", b"X"):
        return False  # killed, and not yet reaped by its parent
    return start is None or int(fields[19]) == start


def alive_since(pid: int, when: Optional[float]) -> bool:
    """Whether process `pid` is still there and was there at `when` (Unix time; None: at any
    time): a process that started later only reuses the number of the one that wrote a run at
    `when` (the history keeps a run's pid and start, not its process's start)."""
    if not alive(pid, None):
        return False
    ticks, boot = (process_start(pid), _boot_time()) if when is not None else (None, None)
    if when is None or ticks is None or boot is None:
        return True
    return boot + ticks / os.sysconf("SC_CLK_TCK") <= when + _START_SLACK


#: Seconds of rounding in a process's start time as /proc gives it (clock ticks since a boot
#: time in whole seconds).
_START_SLACK = 2.0


@functools.lru_cache(maxsize=1)
def _boot_time() -> Optional[int]:
    """When this machine booted (Unix time, whole seconds), where /proc tells: read once."""
    try:
        with open("/proc/stat", "rb") as f:
            return next(int(line.split()[1]) for line in f if line.startswith(b"btime "))
    except (OSError, StopIteration, ValueError):
        return None


def _alive_on_windows(pid: int) -> bool:
    """The process can be opened and has no exit code yet (STILL_ACTIVE)."""
    import ctypes

    kernel32 = ctypes.windll.kernel32  # type: ignore[attr-defined]
    handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
    if not handle:
        return False
    try:
        code = ctypes.c_ulong()
        return bool(kernel32.GetExitCodeProcess(handle, ctypes.byref(code))) and code.value == 259
    finally:
        kernel32.CloseHandle(handle)
