"""The native renderer as a person sees it: its bytes fed to a terminal emulator (pyte)."""

from __future__ import annotations

import re
import textwrap

JOB = textwrap.dedent(
    """
    import logging, sys, threading, time, milepost
    lanes = int(sys.argv[1]) if len(sys.argv) > 1 else 12
    with milepost.Run("job", refresh_hz=20, max_lanes=5) as run:
        with run.phase("setup", total=3) as s:
            s.advance(3)
        ph = run.phase("map", total=100, unit="doc")
        ph.metric("cost_usd", 1.5)
        go = threading.Event()
        def worker(i):
            with run.lane(f"w{i}"):
                with ph.item(f"doc-{i}\\x1b[31m\\x1b]0;pwned\\x07.json"):
                    go.wait(5)
                    ph.advance(5)
        threads = [threading.Thread(target=worker, args=(i,)) for i in range(12)]
        for t in threads: t.start()
        time.sleep(0.6)
        print("PRINTED-LINE")
        logging.basicConfig(handlers=[milepost.LoggingHandler()], level=logging.INFO, force=True)
        logging.getLogger("app").warning("LOGGED-LINE")
        time.sleep(0.4)
        SNAPSHOT
        go.set()
        for t in threads: t.join()
        ph.fail("bad\\x1b[2Jitem", "Boom")
        ph.end()
    """
)


def _job(snapshot_code: str = "pass") -> str:
    return JOB.replace("SNAPSHOT", snapshot_code)


def test_bars_lanes_and_final_frame_on_screen(pty_run) -> None:
    mid = "open('/dev/null').close()"
    res = pty_run(_job(mid), cols=100, rows=30)
    assert res.status == 0, res.raw[-2000:]
    text = res.text
    assert re.search(r"✓ job · completed [\d.]+s · 76/103 · 1 failed", text), text
    assert re.search(r"setup\s+\[█+\] 100% 3/3 · completed", text), text
    assert re.search(r"map\s+\[█+[ ▏▎▍▌▋▊▉]*\]\s+73% 73/100 · completed", text), text
    assert "cost_usd $1.5000" in text
    assert "✗ baditem: Boom" in text, "the escape sequence in the name is removed"
    # Output written while the bars were up landed above them, whole.
    assert "PRINTED-LINE" in res.lines
    assert any(line.endswith("LOGGED-LINE") for line in res.lines)
    assert "\x1b]0;pwned" not in res.raw.decode("utf-8", "replace")
    assert "\x1b[2J" not in res.raw.decode("utf-8", "replace")


def test_lanes_fold_into_n_more_while_running(pty_run) -> None:
    # Capture the screen while the 12 workers hold their items: the child prints nothing
    # then, so the pty stream read up to that moment is what a person sees.
    res = pty_run(_job("time.sleep(0.5); sys.__stderr__.flush()"), cols=100, rows=30)
    assert res.status == 0
    raw = re.sub(r"\x1b\[[0-9;]*m", "", res.raw.decode("utf-8", "replace"))  # colours off
    assert "… 8 more lanes" in raw, raw[-3000:]
    assert re.search(r"w\d+ ▸ doc-\d+\.json \(0 done\)", raw)


def test_no_color_means_no_colour_codes(pty_run) -> None:
    colored = pty_run(_job(), env={})
    plain = pty_run(_job(), env={"NO_COLOR": "1"})
    sgr = re.compile(rb"\x1b\[[0-9;]*[1-9][0-9;]*m")
    assert sgr.search(colored.raw), "colours are used by default on a terminal"
    assert not sgr.search(plain.raw)
    assert "✓ job · completed" in plain.text
    # The `color` setting (MILEPOST_COLOR, or [tool.milepost] color) says the same, and
    # "always" wins over NO_COLOR as an explicit choice does.
    assert not sgr.search(pty_run(_job(), env={"MILEPOST_COLOR": "never"}).raw)
    assert sgr.search(pty_run(_job(), env={"MILEPOST_COLOR": "always", "NO_COLOR": "1"}).raw)


def test_frame_fits_a_narrow_terminal_and_follows_a_resize(pty_run) -> None:
    code = textwrap.dedent(
        """
        import time, milepost
        with milepost.Run("resize-job-with-a-long-name", refresh_hz=20) as run:
            ph = run.phase("a-phase-with-a-long-name", total=1000)
            for i in range(30):
                ph.advance(10); time.sleep(0.05)
            print("RESIZE-NOW")
            for i in range(30):
                ph.advance(10); time.sleep(0.05)
        """
    )
    res = pty_run(code, cols=120, rows=20, resize_to=(20, 40), resize_after=b"RESIZE-NOW")
    assert res.status == 0
    lines = [line for line in res.lines if line]
    assert any("resize-job" in line for line in lines)
    # After the resize every drawn line fits 40 columns (pyte's screen is 40 wide: a longer
    # line would have wrapped onto a line starting mid-word).
    frame = [line for line in lines if "resize-job" in line]
    assert all(len(line) <= 40 for line in frame)
    assert any("[██████    ]" in line for line in frame), lines  # 60% of a 10-cell bar


def test_suspend_clears_the_bars_for_raw_output(pty_run) -> None:
    code = textwrap.dedent(
        """
        import os, time, milepost
        with milepost.Run("sus", refresh_hz=20) as run:
            ph = run.phase("p", total=10)
            time.sleep(0.3)
            with milepost.suspend():
                os.write(1, b"RAW-OUTPUT\\n")
                time.sleep(0.3)
            ph.advance(10)
            time.sleep(0.2)
        """
    )
    res = pty_run(code)
    assert res.status == 0
    assert "RAW-OUTPUT" in res.lines
    assert any(line.startswith("✓ sus › p [") for line in res.lines), res.lines


def test_bare_track_is_one_line_like_tqdm(pty_run) -> None:
    code = textwrap.dedent(
        """
        import time, milepost
        for i in milepost.track(range(50), desc="hashing", unit="file"):
            time.sleep(0.005)
        print("after the loop")
        """
    )
    res = pty_run(code, cols=90, rows=10)
    assert res.status == 0
    lines = [line for line in res.lines if line]
    assert re.fullmatch(r"✓ hashing \[█+\] 100% 50/50 · completed in [\d.]+s", lines[0]), lines
    assert lines[1] == "after the loop"


def test_interrupted_loop_ends_cancelled_with_a_final_frame(pty_run) -> None:
    code = textwrap.dedent(
        """
        import time, milepost
        for i in milepost.track(range(1000), desc="loop"):
            time.sleep(0.002)
            if i == 100:
                raise KeyboardInterrupt
        """
    )
    res = pty_run(code, cols=90, rows=20)
    assert res.status != 0
    text = res.text
    assert "KeyboardInterrupt" in text
    assert re.search(r"✗ loop \[.*\]\s+10% 100/1,000 · cancelled", text), text


def test_many_threads_printing_and_logging_over_the_bars_do_not_deadlock(pty_run) -> None:
    code = textwrap.dedent(
        """
        import faulthandler, logging, sys, milepost
        faulthandler.dump_traceback_later(30, exit=True)  # a hang fails instead of blocking
        log = logging.getLogger("w")
        logging.basicConfig(handlers=[milepost.LoggingHandler()], level=logging.INFO, force=True)
        def work(i):
            if i % 3 == 0:
                print(f"print-{i}")
            elif i % 3 == 1:
                log.info(f"log-{i}")
            else:
                milepost.print(f"mp-{i}")
            sys.stderr.write(f"err-{i}\\n")
        with milepost.Run("chatty", refresh_hz=20) as run:
            milepost.thread_map(work, range(300), workers=8, description="talk")
        print("DONE")
        """
    )
    res = pty_run(code, cols=100, rows=40, timeout=90)
    assert res.status == 0, res.raw[-3000:]
    raw = res.raw.decode("utf-8", "replace")
    for i in (0, 1, 2, 150, 299):
        assert f"err-{i}" in raw
    assert "print-297" in raw and "log-298" in raw and "mp-299" in raw
    assert "DONE" in res.lines


def test_stdout_to_a_file_keeps_its_rows_while_bars_draw_on_the_terminal(pty_run, tmp_path) -> None:
    out = tmp_path / "rows.csv"
    code = textwrap.dedent(
        f"""
        import os, sys
        fd = os.open({str(out)!r}, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.dup2(fd, 1)
        import milepost
        for i in milepost.track(range(3), desc="rows"):
            print(f"row,{{i}}")
        """
    )
    res = pty_run(code)
    assert res.status == 0
    assert out.read_text() == "row,0\nrow,1\nrow,2\n"
    assert "row," not in res.text
    assert "✓ rows [" in res.text


def test_the_redirected_stream_behaves_like_the_original(pty_run) -> None:
    code = textwrap.dedent(
        """
        import sys, time, milepost
        with milepost.Run("streams") as run:
            run.phase("p", total=2).advance()
            time.sleep(0.2)
            sys.stdout.buffer.write(b"")  # the original's binary buffer is there
            sys.stdout.reconfigure(line_buffering=True)
            assert sys.stdout.encoding
            for i in range(20000):
                sys.stdout.write(f"\\rinner {i}")
            sys.stdout.write("\\n")
            print("partial...", end="", flush=True)
            print(" done")
        """
    )
    res = pty_run(code)
    assert res.status == 0, res.raw[-2000:]
    assert "inner 19999" in res.lines, "a carriage return starts the line over"
    assert not any("inner 19998" in line for line in res.lines)
    assert "partial... done" in res.lines, "a flushed partial line is not split"


def test_file_stdout_draws_the_bars_on_stdout(pty_run, tmp_path) -> None:
    err = tmp_path / "err.log"
    code = textwrap.dedent(
        f"""
        import os, sys, time
        fd = os.open({str(err)!r}, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.dup2(fd, 2)
        import milepost
        for i in milepost.track(range(20), desc="on-stdout", file=sys.stdout):
            time.sleep(0.01)
        """
    )
    res = pty_run(code)
    assert res.status == 0
    assert re.search(r"✓ on-stdout \[█+\] 100% 20/20", res.text), res.text
    assert err.read_text() == ""
