"""The hand-written stubs in ``milepost/_milepost.pyi`` match the compiled native module."""

import subprocess
import sys


def test_stubtest_native_module(tmp_path):
    # Run outside the checkout so that only the installed package (and its stub) is seen.
    proc = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "milepost._milepost"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = proc.stdout + proc.stderr
    print(output)
    assert proc.returncode == 0, f"stubtest failed (exit {proc.returncode}):\n{output}"
