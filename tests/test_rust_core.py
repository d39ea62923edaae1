"""The Rust core's own tests (`cargo test`), run as part of the one test command."""

from __future__ import annotations

import pathlib
import shutil
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_cargo_test_of_the_core() -> None:
    cargo = shutil.which("cargo")
    if cargo is None:
        pytest.fail("cargo is needed to test the Rust core (it also builds the package)")
    # Without the `python` feature: the core, the frame layout and the ticker, no PyO3.
    proc = subprocess.run(
        [cargo, "test", "--no-default-features", "--locked", "--quiet"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-5000:]
    assert "test result: ok" in proc.stdout
