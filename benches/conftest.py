"""Shared fixtures and the ratio table printed after a real benchmark run.

Shared machines are noisy, so no benchmark asserts a time. What we read instead is each
contender's per-item time next to a baseline measured in the same run: the overhead over
`bare` in ns/item and the ratio to tqdm and rich, which noise moves far less than absolute times.

Every per-item benchmark stores `extra_info["label"]` (bare, milepost, tqdm, rich...) and
`extra_info["items"]` (items per round); A/B benchmarks run in subprocesses store their result
in `extra_info["report"]` instead. An `interleaved` benchmark times several contenders in one
test, taking turns round after round so that all of them see the same moments of a shared
machine, and stores each one's ns an item in `extra_info["interleaved"]`; it may name one its
`floor` (a native call doing nothing of its own: `islice`, a C method call), and its table
then gives each one's distance to it: ns an item more (`floor_by="ns"`) or its overhead over
`bare` divided by the floor's (`floor_by="ratio"`). Set `MILEPOST_BENCH_TABLE=path` to also write the tables
as Markdown; `MILEPOST_BENCH_STAT` picks the statistic (default `min`: the least disturbed
round; `median` also works).
"""

from __future__ import annotations

import os
import statistics
import time
from collections import defaultdict
from typing import Any, Callable, Dict, Iterator, List, Optional, TextIO, Tuple

import pytest

_BENCHES = pytest.StashKey[List[Dict[str, Any]]]()
_STAT = os.environ.get("MILEPOST_BENCH_STAT", "min")


@pytest.fixture(autouse=True)
def _history_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Benchmarks keep their runs' history in a directory of their own, never in the checkout
    (nor in the history `milepost history` shows the user), and publish their live runs in one
    of their own (never where `milepost runs` looks)."""
    monkeypatch.setenv("MILEPOST_HOME", str(tmp_path_factory.mktemp("milepost-home")))
    monkeypatch.setenv("MILEPOST_LIVE_DIR", str(tmp_path_factory.mktemp("milepost-live") / "live"))


@pytest.fixture
def devnull() -> Iterator[TextIO]:
    """Where tqdm and rich draw: their formatting work still happens, the terminal's doesn't."""
    with open(os.devnull, "w", encoding="utf-8") as stream:
        yield stream


@pytest.fixture
def per_item(benchmark: Any) -> Callable[..., Any]:
    """`per_item(label, items, target, setup, rounds)`: times `target(*setup())` and labels the
    result so the summary can divide by `items`. Building the contender happens in `setup`,
    outside the timed region; draining it (and finishing it) is inside."""

    def measure(label: str, items: int, target: Callable[..., Any], setup: Callable[[], Any], rounds: int = 20) -> Any:
        benchmark.extra_info["label"] = label
        benchmark.extra_info["items"] = items
        return benchmark.pedantic(target, setup=lambda: (setup(), {}), rounds=rounds, warmup_rounds=1)

    return measure


#: A contender of an interleaved benchmark: `target(*args)` is timed, `args = setup()` and, if
#: given, `after(*args)` (which may check and close what `setup` made) are not.
Contender = Tuple[Callable[..., Any], ...]


@pytest.fixture
def interleaved(benchmark: Any) -> Callable[..., Dict[str, Any]]:
    """`interleaved(contenders, items, rounds, floor, floor_by)`: times every contender
    (`{label: (target, setup[, after])}`, see `Contender`) once a round, in an order that turns each round, for `rounds`
    rounds (one in a CI smoke run); returns each one's last result, to be checked. The table
    takes each contender's least disturbed round (see `MILEPOST_BENCH_STAT`)."""

    def measure(
        contenders: Dict[str, Contender],
        items: int,
        rounds: int = 50,
        floor: Optional[str] = None,
        floor_by: str = "ratio",
    ) -> Dict[str, Any]:
        labels = list(contenders)
        seconds: Dict[str, List[float]] = {label: [] for label in labels}
        results: Dict[str, Any] = {}

        def run_all() -> None:
            for r in range(1 if benchmark.disabled else rounds):
                for label in labels[r % len(labels) :] + labels[: r % len(labels)]:
                    target, setup, *after = contenders[label]
                    args = setup()
                    t0 = time.perf_counter()
                    results[label] = target(*args)
                    seconds[label].append(time.perf_counter() - t0)
                    for close in after:
                        close(*args)

        benchmark.pedantic(run_all, rounds=1, iterations=1)
        benchmark.extra_info["interleaved"] = {
            label: {"min": min(s) / items * 1e9, "median": statistics.median(s) / items * 1e9}
            for label, s in seconds.items()
        }
        benchmark.extra_info["interleaved_items"] = items
        if floor is not None:
            benchmark.extra_info["floor"], benchmark.extra_info["floor_by"] = floor, floor_by
        return results

    return measure


@pytest.hookimpl(wrapper=True)
def pytest_benchmark_group_stats(config: pytest.Config, benchmarks: List[Dict[str, Any]], group_by: str) -> Any:
    # Called only when benchmarks produced stats (never under --benchmark-disable): keep the
    # flat stats for the terminal summary.
    config.stash[_BENCHES] = list(benchmarks)
    return (yield)


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    benches = config.stash.get(_BENCHES, None)
    if not benches:
        return
    tables = build_tables(benches)
    terminalreporter.write_sep("-", f"milepost ratios (per-item time from the {_STAT} round)")
    for title, header, rows in tables:
        terminalreporter.write_line("")
        terminalreporter.write_line(title)
        for line in text_table(header, rows):
            terminalreporter.write_line("  " + line)
    path = os.environ.get("MILEPOST_BENCH_TABLE")
    if path:
        with open(path, "w", encoding="utf-8") as out:
            out.write(markdown(tables))
        terminalreporter.write_line(f"\nMarkdown table written to {path}")


Table = tuple  # (title, header, rows)


def build_tables(benches: List[Dict[str, Any]]) -> List[Table]:
    groups: Dict[str, List[Dict[str, Any]]] = defaultdict(list)
    for bench in benches:
        groups[bench["group"] or "ungrouped"].append(bench)
    tables: List[Table] = []
    for group in sorted(groups):
        members = groups[group]
        timed = [b for b in members if "items" in b["extra_info"]]
        if timed:
            tables.append(ratio_table(group, timed))
        for bench in members:
            if "interleaved" in bench["extra_info"]:
                tables.append(interleaved_table(group, bench["extra_info"]))
            report = bench["extra_info"].get("report")
            if report:
                rows = [[key, fmt(value)] for key, value in report.items()]
                tables.append((f"{group}: {bench['name']}", ["measure", "value"], rows))
    return tables


def ratio_table(group: str, timed: List[Dict[str, Any]]) -> Table:
    ns = {b["extra_info"]["label"]: b[_STAT] / b["extra_info"]["items"] * 1e9 for b in timed}
    header, rows = ratio_rows(ns)
    items = {b["extra_info"]["items"] for b in timed}
    # Other facts a benchmark recorded (e.g. counts tqdm lost) go in the title, not hidden.
    notes = [
        f"{b['extra_info']['label']} {k}={fmt(v)}"
        for b in timed
        for k, v in b["extra_info"].items()
        if k not in ("label", "items", "report")
    ]
    title = f"{group} ({', '.join(str(i) for i in sorted(items))} items per round)"
    return (title + (f"; {'; '.join(notes)}" if notes else ""), header, rows)


def interleaved_table(group: str, info: Dict[str, Any]) -> Table:
    ns = {label: stats[_STAT] for label, stats in info["interleaved"].items()}
    header, rows = ratio_rows(ns, info.get("floor"), info.get("floor_by", "ratio"))
    title = f"{group} ({info['interleaved_items']} items per round, contenders taking turns)"
    return (title, header, rows)


def ratio_rows(
    ns: Dict[str, float], floor: Optional[str] = None, floor_by: str = "ratio"
) -> Tuple[List[str], List[List[str]]]:
    """Each contender's ns an item, its overhead over `bare`, its ratio to tqdm and rich, and
    (with a `floor`) its distance to the floor."""
    bare, tqdm, rich = ns.get("bare"), ns.get("tqdm"), ns.get("rich")
    header = ["benchmark", "ns/item", "overhead ns/item", "x tqdm", "x rich"]
    by_ns = floor_by == "ns"
    if floor is not None and bare is not None:
        header.append(f"ns/item over {floor}" if by_ns else f"overhead x {floor}")
    rows = []
    for label in sorted(ns, key=lambda label: (label != "bare", ns[label])):
        row = [
            label,
            f"{ns[label]:.1f}",
            "baseline" if label == "bare" else (f"{ns[label] - bare:+.1f}" if bare is not None else "-"),
            _ratio(ns[label], tqdm),
            _ratio(ns[label], rich),
        ]
        if floor is not None and bare is not None:
            if label == "bare":
                row.append("-")
            else:
                row.append(f"{ns[label] - ns[floor]:+.1f}" if by_ns else _ratio(ns[label] - bare, ns[floor] - bare))
        rows.append(row)
    return header, rows


def _ratio(value: float, reference: Optional[float]) -> str:
    return f"{value / reference:.2f}" if reference else "-"


def fmt(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def text_table(header: List[str], rows: List[List[str]]) -> List[str]:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
        for r in [header, *rows]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return lines


def markdown(tables: List[Table]) -> str:
    parts = []
    for title, header, rows in tables:
        lines = [
            f"**{title}**",
            "",
            "| " + " | ".join(header) + " |",
            "|" + "|".join([":---"] + ["---:"] * (len(header) - 1)) + "|",
        ]
        lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"
