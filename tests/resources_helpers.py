"""What the worker processes of test_resources_processes.py do (importable by spawned
children): burn a core, hold memory, start a grandchild, each until the test says stop (a
file appears) or a deadline passes, so that no test waits longer than it must."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import milepost

#: The most a worker holds on, whatever the test does.
DEADLINE = 20.0


def _stopped(stop: str, started: float) -> bool:
    return Path(stop).exists() or time.monotonic() - started > DEADLINE


def burn(task: milepost.Task, stop: str) -> None:
    """Keeps one core busy inside an item."""
    started = time.monotonic()
    with task.item("burn"):
        while not _stopped(stop, started):
            sum(range(10_000))


def hold_memory(task: milepost.Task, mib: int, stop: str) -> None:
    """Holds `mib` MiB, every page written (so it is resident), inside an item."""
    started = time.monotonic()
    with task.item("hold"):
        held = b"\x01" * (mib * 2**20)
        while not _stopped(stop, started):
            time.sleep(0.02)
        del held


GRANDCHILD = """
import sys, time
held = b"\\x01" * ({mib} * 2**20)
print("ready", flush=True)
sys.stdin.read()  # until the worker closes the pipe (it ends, or is killed)
"""


def with_grandchild(task: milepost.Task, mib: int, stop: str) -> int:
    """Starts a child of its own holding `mib` MiB, waits while it lives, and returns its pid."""
    started = time.monotonic()
    with task.item("parent"):
        child = subprocess.Popen(
            [sys.executable, "-c", GRANDCHILD.format(mib=mib)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert child.stdout is not None and child.stdin is not None
        child.stdout.readline()
        while not _stopped(stop, started):
            time.sleep(0.02)
        child.stdin.close()
        child.wait()
    return child.pid


def churn(task: milepost.Task, n: int) -> int:
    """Starts and ends `n` short child processes one after the other (each may vanish between
    the sampler listing it and reading it)."""
    with task.item("churn"):
        for _ in range(n):
            subprocess.run(["true"], check=True)
    return n
