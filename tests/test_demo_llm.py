"""`milepost demo --llm` run as a user would: a real process generating personas against the
fake model on 127.0.0.1, priced, under a budget, with retries and failures."""

from __future__ import annotations

import json
import re
import subprocess
import sys

LLM = [sys.executable, "-m", "milepost", "demo", "--llm", "--items", "120", "--item-ms", "1"]


def test_the_llm_demo_prices_streams_retries_and_fits_its_budget(tmp_path) -> None:
    snap = tmp_path / "s.json"
    proc = subprocess.run([*LLM, "--snapshot-file", str(snap)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert re.search(r"summary: personas › generate · completed .* 120/120", proc.stderr), proc.stderr[-2000:]
    root = json.loads(snap.read_text())["root"]
    metrics = root["metrics"]
    assert root["state"] == "completed" and root["retried"] > 0 and root["failed"] > 0
    assert 0 < metrics["cost_usd"] < 0.075, "priced, and within the default budget"
    assert 0 < metrics["cache_read_tokens"] < metrics["input_tokens"], "the shared system prompt is read from the cache"
    assert "HTTP 400: the prompt was refused" in proc.stderr, "a refused prompt is a failure with its error"
    shown = subprocess.run([sys.executable, "-m", "milepost", "show", "personas"], capture_output=True, text=True)
    assert "about: provider fake (127.0.0.1) · models fake-mini, fake-large" in shown.stdout, shown.stdout
    assert "HTTP 503: the model is overloaded" in shown.stdout, "each retried attempt's error is listed"


def test_a_small_budget_stops_the_llm_demo_and_says_why() -> None:
    proc = subprocess.run([*LLM, "--budget", "0.005"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr[-3000:]
    # The refusal weighs what the items in flight are expected to spend; what they did spend
    # decides whether the run passed the 80% warning line ($0.0040) on its way out.
    spent = re.search(r"summary: personas › generate · cancelled .* cost_usd \$(\d\.\d+)", proc.stderr)
    assert spent, proc.stderr[-2000:]
    warned, shown = "budget warning: cost_usd $0.00" in proc.stderr, float(spent.group(1))
    if abs(shown - 0.004) > 0.00005:  # the summary shows the spend rounded to $0.0001
        assert warned == (shown > 0.004), (shown, proc.stderr[-3000:])
    assert re.search(
        r"milepost demo: the run was cancelled \(budget: cost_usd \$0\.00\d\d of \$0\.0050 spent, "
        r"\$0\.00\d\d expected of the \d+ items in flight\)",
        proc.stderr,
    )
    assert re.search(r"summary: personas › generate · cancelled .* \d+/120", proc.stderr), proc.stderr[-2000:]


def test_bad_llm_demo_arguments_are_named() -> None:
    proc = subprocess.run([*LLM, "--budget", "-1"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "budget['cost_usd'] must be a positive finite number, got -1.0" in proc.stderr
    proc = subprocess.run([*LLM, "--concurrency", "0"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "--concurrency must be >= 1, got 0" in proc.stderr


def test_bad_item_ms_is_named() -> None:
    for bad in ("nan", "-1"):
        proc = subprocess.run([*LLM[:-2], "--item-ms", bad], capture_output=True, text=True, timeout=60)
        assert proc.returncode == 2 and "--item-ms must be a finite number >= 0" in proc.stderr, proc.stderr
