"""The `milepost` command."""

from __future__ import annotations

import argparse
import sys
from typing import List, Optional

from . import __version__
from .renderers import DISPLAYS


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="milepost", description="Progress you can trust for long jobs.")
    parser.add_argument("--version", action="version", version=f"milepost {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="run a MapReduce-style demo job with its live display")
    demo.add_argument("--items", type=int, default=5000, help="documents to map (default 5000)")
    demo.add_argument("--workers", type=int, default=8, help="worker processes (default 8)")
    demo.add_argument("--fail-rate", type=float, default=0.02, help="chance of an error per attempt (default 0.02)")
    demo.add_argument("--display", choices=DISPLAYS, default="auto", help="display (default: auto)")
    demo.add_argument("--item-ms", type=float, default=40.0, help="mean item time in ms (default 40)")
    demo.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    demo.add_argument("--snapshot-file", default=None, help="keep the latest snapshot in this JSON file")
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "demo":
        from .demo import run_demo

        try:
            run_demo(args.items, args.workers, args.fail_rate, args.display, args.item_ms, args.seed,
                     args.snapshot_file)
        except ValueError as e:
            print(f"milepost demo: {e}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
