"""tqdm code, as people write it, run on milepost: the snippets below are tqdm's README and
common usage with only the import changed (`from milepost import tqdm, trange`); each checks
the counts and what was shown (plain lines on stderr, as tqdm's output goes to stderr)."""

from __future__ import annotations

import asyncio
import operator
import re

import pandas as pd
import pytest

from milepost import tqdm, trange
from milepost.contrib.concurrent import process_map, thread_map


def _state(bar: tqdm) -> str:
    return bar._task.state  # what the bar ended as


def test_iterating_a_range(capsys) -> None:
    bar = tqdm(range(100))
    for _ in bar:
        pass
    assert (bar.n, bar.total, _state(bar)) == (100, 100, "completed")
    assert re.search(r"tqdm · completed .*100/100", capsys.readouterr().err)


def test_a_manual_bar_with_update_and_floats(capsys) -> None:
    with tqdm(total=100.0, desc="download", unit="B") as pbar:
        for _ in range(10):
            pbar.update(10)
    assert (pbar.n, pbar.total) == (100, 100)
    assert "download · completed" in capsys.readouterr().err


def test_set_description_in_the_loop_and_write_above(capsys) -> None:
    pbar = tqdm(["a", "b", "c", "d"])
    for char in pbar:
        pbar.set_description("Processing %s" % char)
        if char == "b":
            tqdm.write("found b")
    err = capsys.readouterr()
    assert pbar.n == 4 and "Processing d" in err.err
    assert "found b" in err.out + err.err


def test_set_postfix_shows_fields_and_keeps_numbers_as_their_latest_value(capsys) -> None:
    with tqdm(range(3), desc="train") as t:
        for i in t:
            t.set_postfix(loss=1.0 / (i + 1), acc=0.5 + i / 10, phase="warm")
    metrics = t._own.snapshot().root["metrics"]
    assert metrics["loss"] == pytest.approx(1 / 3) and metrics["acc"] == pytest.approx(0.7)
    assert "train [loss=0.333, acc=0.7, phase=warm]" in capsys.readouterr().err
    t2 = tqdm(total=1)
    t2.set_postfix_str("custom text")
    assert t2.postfix == "custom text"
    t2.close()


def test_nested_loops_and_an_early_break_are_not_cancelled(capsys) -> None:
    outer = trange(3, desc="outer")
    for _ in outer:
        for j in trange(5, desc="inner", leave=False):
            if j == 3:
                break  # tqdm leaves the bar where it stopped: not a failure, not "cancelled"
    err = capsys.readouterr().err
    assert outer.n == 3 and _state(outer) == "completed"
    assert "cancelled" not in err, err


def test_disable_draws_nothing(capsys) -> None:
    seen = [x for x in tqdm(range(5), disable=True)]
    assert seen == list(range(5)) and capsys.readouterr().err == ""


def test_unknown_keywords_are_named() -> None:
    with pytest.raises(TypeError, match="colr, smoothness"):
        tqdm(range(3), colr="red", smoothness=1)
    # tqdm's own keywords are accepted: milepost decides those itself.
    for _ in tqdm(range(2), ncols=80, mininterval=0.5, miniters=1, dynamic_ncols=True, position=1, unit_scale=True):
        pass


def test_pandas_progress_apply_and_map(capsys) -> None:
    tqdm.pandas(desc="rows")
    df = pd.DataFrame({"a": range(50), "b": range(50, 100)})
    out = df.progress_apply(lambda row: row["a"] + row["b"], axis=1)
    assert list(out) == [a + b for a, b in zip(range(50), range(50, 100), strict=True)]
    squares = df["a"].progress_map(lambda v: v * v)
    assert list(squares) == [v * v for v in range(50)]
    grouped = df.groupby(df["a"] % 5).progress_apply(lambda g: len(g))
    assert list(grouped) == [10] * 5
    assert len(re.findall(r"rows · completed", capsys.readouterr().err)) == 3


def test_contrib_concurrent_maps_take_several_iterables() -> None:
    assert thread_map(operator.pow, [1, 2, 3, 4], [2, 2, 2, 2], max_workers=2, desc="pow") == [1, 4, 9, 16]
    assert process_map(operator.add, range(20), range(20), max_workers=2, chunksize=4) == [2 * i for i in range(20)]
    with pytest.raises(TypeError, match="bogus"):
        thread_map(abs, [1], bogus=True)


def test_asyncio_gather_and_as_completed() -> None:
    async def square(x: int) -> int:
        await asyncio.sleep(0.001 * (5 - x))
        return x * x

    async def main() -> tuple:
        gathered = await tqdm.gather(*[square(i) for i in range(5)], desc="gather")
        finished = [await f for f in tqdm.as_completed([square(i) for i in range(5)], desc="as done")]
        return gathered, finished

    gathered, finished = asyncio.run(main())
    assert gathered == [0, 1, 4, 9, 16] and sorted(finished) == [0, 1, 4, 9, 16]


def test_unit_scale_shows_bytes_as_tqdm_does(capsys, clock) -> None:
    # tqdm's download snippet: byte counts and rates with SI prefixes.
    import milepost

    with milepost.Run("download", display="none", history=False, clock=clock) as run:
        with tqdm(total=45_000_000, unit="B", unit_scale=True, unit_divisor=1000, desc="file.bin") as bar:
            for _ in range(10):
                clock.advance(0.1)
                bar.update(1_234_567)
                run.poll()
            line = run.snapshot().run_line()
    assert "12.3M/45.0M" in line and re.search(r"\b12\.3MB/s\b", line), line
    with tqdm(total=2048, unit="B", unit_scale=True, unit_divisor=1024, desc="kib") as bar:
        bar.update(2048)
    assert "kib · completed" in capsys.readouterr().err and bar.n == 2048
    for _ in tqdm(range(1500), unit_scale=True, desc="rows"):
        pass
    assert "1.50k/1.50k" in capsys.readouterr().err
    bar = tqdm(unit="B", unit_scale=True, desc="stream")  # no total: the unit follows the count
    bar.update(3_500_000)
    bar.close()
    assert "3.50MB" in capsys.readouterr().err


def test_unit_scale_values_milepost_cannot_honour_are_refused_by_name() -> None:
    import milepost

    with pytest.raises(milepost.InvalidValueError, match="unit_scale .* got 8"):
        tqdm(range(3), unit_scale=8)  # tqdm would multiply the counts by 8
    with pytest.raises(milepost.InvalidValueError, match="unit_divisor must be 1000 or 1024, got 1000.5"):
        milepost.track(range(3), unit_scale=True, unit_divisor=1000.5)


def test_nested_bars_show_an_inner_bar_per_outer_item(capsys) -> None:
    # tqdm's nested-loop snippet: the inner bar starts again from 0 for every outer item.
    import milepost

    seen = []
    with milepost.Run("train", display="none", history=False) as run:
        for epoch in trange(3, desc="epochs"):
            inner = tqdm(range(100), desc="batches", leave=False)
            for b in inner:
                if epoch == 2 and b == 40:
                    frame = "\n".join(run.snapshot().frame(120, 20))
            node = run.snapshot().find("batches")
            seen.append((inner.n, inner.total, node["done"], (node["current_pass"] or {}).get("number")))
    # What tqdm shows (n and total of the pass), and the phase's exact counts over every pass.
    assert seen == [(100, 100, 100, None), (100, 100, 200, 2), (100, 100, 300, 3)]
    assert re.search(r"batches .*40% 40/100 · pass 3", frame), frame
    assert "/300" not in frame.split("batches")[1]  # not one ever-growing bar


def test_reset_starts_a_new_pass_from_zero(capsys) -> None:
    bar = tqdm(total=10, desc="rounds")
    bar.update(10)
    bar.reset()  # the same total again, from 0
    bar.update(3)
    assert (bar.n, bar.total) == (3, 10)
    bar.reset(total=5)
    assert (bar.n, bar.total) == (0, 5)
    bar.total = 7
    assert bar.total == 7 and bar._task.total == 27 and bar._task.done == 13  # the phase's counts stay
    bar.update(7)
    bar.close()
    assert "rounds · completed 0.0s · 7/7 · pass 3" in capsys.readouterr().err


def test_an_inner_bar_with_a_postfix_stays_one_line_showing_the_latest_values() -> None:
    import milepost

    with milepost.Run("train", display="none", history=False) as run:
        for _ in trange(3, desc="epochs"):
            inner = tqdm(range(10), desc="train", leave=False)
            for b in inner:
                inner.set_postfix(loss=1 / (b + 1), lr=0.001)
        snap = run.snapshot()
    steps = [n for _, n in snap.nodes() if n["path"].split("/")[-1] == "train"]
    assert len(steps) == 1 and steps[0]["current_pass"]["number"] == 3  # one line, pass 3
    assert steps[0]["metrics"] == pytest.approx({"loss": 0.1, "lr": 0.001})  # the latest, not the sum
    assert "lr 0.001" in snap.run_line() and "loss 0.1" in snap.run_line()


def test_fractional_updates_add_up_and_a_negative_one_is_refused(capsys) -> None:
    import milepost

    bar = tqdm(total=1.0, desc="fraction")
    for _ in range(10):
        bar.update(0.1)
    assert bar.n == 1
    half = tqdm(total=5, desc="halves")
    for _ in range(10):
        half.update(0.5)
    assert half.n == 5
    with pytest.raises(milepost.InvalidValueError, match=r"update\(n\) must be >= 0 .* got -1"):
        half.update(-1)
    assert half.n == 5  # nothing already counted is lost
    bar.close()
    half.close()


def test_a_renamed_bar_shows_its_new_name_once(capsys) -> None:
    bar = tqdm(range(3), desc="first")
    for i in bar:
        bar.set_description(f"step {i}")
    assert re.search(r"\] step 2 · completed", capsys.readouterr().err)


def test_leave_false_inner_bars_are_not_drawn_once_they_end() -> None:
    # tqdm's pattern with a description per outer item: each inner bar is new, and tqdm
    # clears it when it ends (leave=False); kept ones (leave=True) stay on screen.
    import milepost

    with milepost.Run("epochs-run", display="none", history=False) as run:
        for e in trange(4, desc="epochs"):
            for _ in tqdm(range(10), desc=f"epoch {e}", leave=False):
                pass
            for _ in tqdm(range(5), desc=f"kept {e}"):
                pass
        frame = "\n".join(run.snapshot().frame(120, 40))
        nodes = {n["name"]: n for _, n in run.snapshot().nodes()}
    assert "epochs" in frame and not re.search(r"epoch \d", frame), frame
    assert all(f"kept {e}" in frame for e in range(4)), frame
    assert all(nodes[f"epoch {e}"]["done"] == 10 for e in range(4))  # counted all the same


def test_bad_totals_and_updates_are_refused_by_name_and_change_nothing(capsys) -> None:
    """Found trying it as a user: `reset(-3)` raised, naming `add_total(n)`, after it had
    started a new pass (the bar read 0/0); `update(nan)` named `advance(n)` and "an int"; and
    `total=float("inf")`, which tqdm takes for an unknown total, was refused."""
    import milepost

    bar = tqdm(total=5, desc="kept")
    bar.update(3)
    with pytest.raises(milepost.InvalidValueError, match=r"reset\(total\) must be a number >= 0 .* got -3"):
        bar.reset(-3)
    assert (bar.n, bar.total) == (3, 5)
    with pytest.raises(milepost.InvalidValueError, match=r"update\(n\) must be a finite number >= 0, got nan"):
        bar.update(float("nan"))
    assert bar.n == 3
    bar.close()
    endless = tqdm(total=float("inf"), desc="endless")
    endless.update(2)
    assert (endless.n, endless.total) == (2, None)
    endless.close()
    quiet = tqdm(total=5, disable=True)
    with pytest.raises(milepost.InvalidValueError, match=r"reset\(total\)"):
        quiet.reset(-1)
    huge = tqdm(total=10, desc="huge")
    huge.update(4)
    for total in (2**60, 1e300):
        with pytest.raises(milepost.InvalidValueError, match=r"reset\(total\) would take the phase's total past"):
            huge.reset(total)
        assert (huge.n, huge.total) == (4, 10), "a refused reset leaves the bar as it was"
    huge.reset(float("inf"))
    huge.update(5)
    assert (huge.n, huge.total) == (5, None)
    huge.close()
