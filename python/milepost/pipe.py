"""`milepost pipe` (and `python -m milepost` given options, or standard input, but no command):
a progress bar in a shell pipeline, as `tqdm` is one. Standard input goes to standard output
unchanged, byte for byte (any encoding, no decoding); lines (or bytes, or NUL-delimited
records) are counted as they pass; the bar is drawn on standard error. Nothing is kept in the
history, as for any `track()` of its own.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import BinaryIO, Optional

from .track import track

__all__ = ["add_arguments", "run_pipe", "CHUNK"]

#: Bytes read at a time: large enough that counting costs nothing beside the copy.
CHUNK = 1 << 16


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--total", type=int, default=None, help="what is expected: lines (or bytes with --bytes)")
    parser.add_argument("--bytes", action="store_true", help="count bytes, not lines")
    parser.add_argument("--null", action="store_true", help="count NUL-delimited records (find -print0)")
    parser.add_argument("--desc", default="pipe", help="the bar's label (default: pipe)")
    parser.add_argument("--unit", default=None, help="what is counted (default: lines; B with --bytes)")
    parser.add_argument("--display", default="auto", help="display (default: auto; plain when stderr is no terminal)")


def run_pipe(args: argparse.Namespace, source: Optional[BinaryIO] = None, sink: Optional[BinaryIO] = None) -> int:
    """Copies `source` (standard input) to `sink` (standard output), counting; returns the exit
    status. A reader that goes away (`| head`) raises BrokenPipeError, as any command's does."""
    if args.total is not None and args.total < 0:
        print(f"milepost pipe: --total must be >= 0, got {args.total}", file=sys.stderr)
        return 2
    if args.bytes and args.null:
        print("milepost pipe: --bytes and --null count different things: give one", file=sys.stderr)
        return 2
    source = source or sys.stdin.buffer
    sink = sink or sys.stdout.buffer
    unit = args.unit or ("B" if args.bytes else "records" if args.null else "lines")
    delimiter = b"\0" if args.null else b"\n"
    read = getattr(source, "read1", source.read)  # what is there now, not a whole block: live counts
    bar = track(total=args.total, desc=args.desc, unit=unit, display=args.display, file=sys.stderr)
    state = "completed"
    try:
        while True:
            chunk = read(CHUNK)
            if not chunk:
                break
            sink.write(chunk)
            bar.update(len(chunk) if args.bytes else chunk.count(delimiter))
        sink.flush()
    except KeyboardInterrupt:  # Ctrl-C: the bar ends cancelled, the shell gets 130
        state = "cancelled"
        return 130
    except BaseException:
        state = "cancelled"
        raise
    finally:
        bar.close(state)
    return 0


def wants_pipe(argv: list[str]) -> bool:
    """`python -m milepost` with no command: options (`--total 1000`) or nothing at all while
    standard input is not a terminal (`seq 10 | python -m milepost`)."""
    if not argv:
        try:
            return not os.isatty(sys.stdin.fileno())
        except (AttributeError, OSError, ValueError):
            return False
    return argv[0].startswith("-") and argv[0] not in ("-h", "--help", "--version")
