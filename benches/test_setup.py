"""Group "setup": what starting and ending a bar costs, for a job that wraps many short loops.

Each contender makes `BARS` one-item bars back to back, as such a job does; the table's "ns an
item" is then the cost of one bar (create, one item, close), and its ratio to tqdm is read
beside tqdm's own in the same run. `milepost track` draws plain lines to /dev/null (tqdm's
`file=`), `display="none"` draws nothing; a `Run` is entered and left with the history on (a
database in the benchmark's own home) and off.
"""

import pytest
import rich.progress
from rich.console import Console
from tqdm import tqdm

import milepost

pytestmark = pytest.mark.benchmark(group="setup")

BARS = 100


def bars(make):
    def run_them(*_):
        for _ in range(BARS):
            for _ in make():
                pass

    return run_them


def runs(**options):
    def run_them(*_):
        for _ in range(BARS):
            with milepost.Run("setup", display="none", **options) as run:
                pass
        return run

    return run_them


def test_setup(interleaved, devnull):
    last = interleaved(
        {
            "tqdm": (bars(lambda: tqdm(range(1), file=devnull)), tuple),
            "rich": (bars(lambda: rich.progress.track(range(1), console=Console(file=devnull))), tuple),
            "milepost track": (bars(lambda: milepost.track(range(1), file=devnull)), tuple),
            "milepost track display=none": (bars(lambda: milepost.track(range(1), display="none")), tuple),
            "milepost Run": (runs(history=False), tuple),
            "milepost Run with history": (runs(), tuple),
        },
        BARS,
        rounds=15,
    )
    with_history = last["milepost Run with history"]
    assert with_history.finished and with_history.history_path is not None
    assert milepost.current_run() is None, "every bar's run ended"
