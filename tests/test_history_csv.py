"""`milepost history`, `show` and `stats` with `--csv`: what a spreadsheet reads, a row per run,
phase or failure, metrics as columns of their own."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from typing import List

import milepost


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "milepost", *args], capture_output=True, text=True, timeout=60)


def _rows(text: str) -> List[dict]:
    return list(csv.DictReader(io.StringIO(text)))


def _job(name: str, fail: bool) -> milepost.Run:
    with milepost.Run(name, display="none") as run:
        with run.phase("map", total=3) as ph:
            for i in range(3):
                with ph.item(f"doc-{i}") as item:
                    item.metric("cost_usd", 0.25)
                    item.metric("tokens", 100)
            if fail:
                ph.fail("doc-9", 'bad "quoted", multi\nline error')
    return run


def test_history_and_stats_are_a_row_a_run_with_metric_columns() -> None:
    first, second = _job("csv-job", fail=False), _job("csv-job", fail=True)
    rows = _rows(_cli("history", "--csv").stdout)
    assert [r["id"] for r in rows] == [second.id, first.id], "newest first, as the table"
    assert rows[0]["metric:cost_usd"] == "0.75" and rows[0]["metric:tokens"] == "300"
    assert (rows[0]["status"], rows[0]["failed"], rows[0]["processed"]) == ("completed", "1", "4")
    stats = _rows(_cli("stats", "csv-job", "--csv").stdout)
    assert [r["id"] for r in stats] == [first.id, second.id], "oldest first, as stats lists them"


def test_show_is_the_run_its_phases_and_its_failures_a_row_each() -> None:
    run = _job("csv-show", fail=True)
    out = _cli("show", run.id, "--csv").stdout
    rows = _rows(out)
    assert [r["record"] for r in rows] == ["run", "phase", "failure"]
    assert rows[1]["path"] == "map" and rows[1]["processed"] == "4" and rows[1]["metric:cost_usd"] == "0.75"
    assert rows[2]["name"] == "doc-9" and rows[2]["error"] == 'bad "quoted", multi line error'
    assert len(out.splitlines()) == 4, "a multi-line error stays on its row"


def test_csv_and_json_together_are_refused() -> None:
    done = _cli("history", "--csv", "--json")
    assert done.returncode == 2 and "not allowed with argument" in done.stderr


def test_a_phases_rate_is_in_the_csv_and_json_as_in_the_table() -> None:
    # The table worked out a rate the row did not keep (processed over elapsed); the CSV left
    # it empty and the JSON said null.
    run = _job("csv-rate", fail=False)
    phase = [r for r in _rows(_cli("show", run.id, "--csv").stdout) if r["record"] == "phase"][0]
    assert phase["name"] == "map" and float(phase["rate"]) == float(phase["processed"]) / float(phase["elapsed"])
    shown = json.loads(_cli("show", run.id, "--json").stdout)["phases"][0]
    assert shown["rate"] == shown["processed"] / shown["elapsed"]


def test_a_runs_cpu_time_and_peak_memory_are_columns_as_in_json() -> None:
    # `stats` trends them and `--json` gives them: the CSV had neither column.
    run = _job("csv-resources", fail=False)
    row = _rows(_cli("history", "--csv").stdout)[0]
    record = json.loads(_cli("history", "--json").stdout)[0]
    assert row["id"] == record["id"] == run.id
    assert float(row["cpu_seconds"]) == record["cpu_seconds"] and int(row["peak_rss_bytes"]) == record["peak_rss_bytes"]
    assert "cpu_seconds" in _rows(_cli("stats", "csv-resources", "--csv").stdout)[0]
