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


def test_package_type_checks_against_the_stubs():
    """The Python layer uses the native module as the stubs describe it."""
    import pathlib

    package = pathlib.Path(__file__).resolve().parents[1] / "python" / "milepost"
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", str(package), "--ignore-missing-imports", "--warn-unused-ignores"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
