"""The `milepost` command."""

from __future__ import annotations

import argparse
import math
import os
import sys
from typing import Callable, List, Optional

from . import __version__, live_cli
from .errors import Cancelled, MilepostError
from .pipe import add_arguments as add_pipe_arguments
from .pipe import run_pipe, wants_pipe
from .renderers import DISPLAYS


def _count_or_all(text: str) -> Optional[int]:
    """A count >= 0, or "all" (None)."""
    if text.strip().lower() == "all":
        return None
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a count >= 0 or 'all', got {text!r}")
    return value


#: The most runs `--limit` asks for (a history holds fewer; SQLite takes no number past 2**63).
MAX_LIMIT = 1_000_000


def _whole(low: int, high: int) -> Callable[[str], int]:
    """An argument's type: a whole number from `low` to `high` (argparse then names the
    option and the value given)."""

    def parse(text: str) -> int:
        value = int(text) if text.strip().isascii() and text.strip().isdigit() else -1
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be a whole number from {low} to {high}, got {text!r}")
        return value

    return parse


def _speed(text: str) -> float:
    """A replay's speed: a positive finite number (0 or less never ended, or ran at once)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a number above 0, got {text!r}")
    return value


#: How many runs a listing gives: a whole number from 1 to MAX_LIMIT.
_limit = _whole(1, MAX_LIMIT)
#: The most items and worker processes a demo takes (more only fills memory, or the process
#: table: --items 10**20 grew to 1.5 GB without a line, --workers 100000 kept spawning).
MAX_DEMO_ITEMS = 10_000_000
MAX_DEMO_WORKERS = 256


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="milepost", description="Progress you can trust for long jobs.")
    parser.add_argument("--version", action="version", version=f"milepost {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser(
        "demo", help="run a MapReduce-style demo job (or, with --llm, an LLM one) with its live display"
    )
    demo.add_argument("--llm", action="store_true", help="an asyncio LLM job against a fake model on 127.0.0.1")
    demo.add_argument(
        "--items",
        type=_whole(1, MAX_DEMO_ITEMS),
        default=None,
        help=f"documents to map (default 5000; --llm: personas, 300; at most {MAX_DEMO_ITEMS:,})",
    )
    demo.add_argument(
        "--workers",
        type=_whole(1, MAX_DEMO_WORKERS),
        default=8,
        help=f"worker processes (default 8, at most {MAX_DEMO_WORKERS}; not with --llm)",
    )
    demo.add_argument(
        "--fail-rate", type=float, default=0.02, help="chance of an error per attempt (default 0.02; not with --llm)"
    )
    demo.add_argument("--display", choices=DISPLAYS, default="auto", help="display (default: auto)")
    demo.add_argument(
        "--item-ms", type=float, default=40.0, help="mean item time in ms (default 40; --llm: 2 tokens' time)"
    )
    demo.add_argument("--concurrency", type=int, default=16, help="--llm: calls at once (default 16)")
    demo.add_argument("--budget", type=float, default=0.075, help="--llm: the run's budget in USD (default 0.075)")
    demo.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    demo.add_argument("--snapshot-file", default=None, help="keep the latest snapshot in this JSON file")
    demo.add_argument(
        "--output",
        default=None,
        help="where plain, JSON or rich output goes: stdout, stderr (default) or a file (appended to)",
    )
    pipe = sub.add_parser(
        "pipe",
        help="a bar in a shell pipeline: stdin to stdout unchanged, lines counted, drawn on stderr",
        description="Passes standard input to standard output unchanged, counting lines (or bytes, or "
        "NUL-delimited records) as they pass, with a bar on standard error. `python -m milepost [options]` "
        "with no command does the same.",
    )
    add_pipe_arguments(pipe)
    hist = sub.add_parser("history", help="recent runs from the history database")
    hist.add_argument("--name", default=None, help="only runs with this name")
    hist.add_argument("--limit", type=_limit, default=20, help="how many runs (default 20)")
    show = sub.add_parser("show", help="one run: phases, workers, failures, metrics")
    show.add_argument("run", help="a run id, or a name (its latest run)")
    show.add_argument(
        "--failures",
        type=_count_or_all,
        default=20,
        metavar="N",
        help="how many failures to list, newest first (default 20; 'all')",
    )
    stats = sub.add_parser("stats", help="durations, costs and success across the runs of a name")
    stats.add_argument("name")
    stats.add_argument("--limit", type=_limit, default=50, help="how many recent runs (default 50)")
    srv = sub.add_parser("serve", help="the web dashboard: the live runs on this machine and the run history")
    srv.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1; others need a token)"
    )
    srv.add_argument("--port", type=_whole(0, 65535), default=8080, help="port (default 8080; 0: any free port)")
    srv.add_argument("--token", default=None, help="token to require (made up when binding beyond loopback)")
    srv.add_argument(
        "--db", default=None, help="history database (default: $MILEPOST_HOME/runs.db or .milepost/runs.db)"
    )
    rep = sub.add_parser("replay", help="draw a saved JSON-lines stream (display='json') again")
    rep.add_argument("file", help="a JSON-lines file, or a .progress.json snapshot")
    rep.add_argument("--speed", type=_speed, default=1.0, help="faster (2) or slower (0.5) than recorded")
    rep.add_argument("--no-wait", action="store_true", help="draw everything at once")
    live_cli.add_parsers(sub)
    for p in (hist, show, stats):
        form = p.add_mutually_exclusive_group()
        form.add_argument("--json", action="store_true", help="print JSON instead of a table")
        form.add_argument("--csv", action="store_true", help="print CSV: a row per run, phase or failure")
        p.add_argument(
            "--db", default=None, help="history database (default: $MILEPOST_HOME/runs.db or .milepost/runs.db)"
        )
    return parser


def _history_command(args: argparse.Namespace) -> int:
    import json

    from . import history_cli as text
    from . import history_csv as table
    from .persistence import History, NoHistory, SchemaError

    data: object
    try:
        with History.open(args.db) as history:
            if args.command == "history":
                runs = history.runs(args.name, args.limit)
                data, shown = runs, table.history_csv(runs) if args.csv else text.history_text(runs, args.name)
            elif args.command == "show":
                run = history.run(args.run, args.failures)
                data, shown = run, table.show_csv(run) if args.csv else text.show_text(run, args.db)
            else:
                stats = history.stats(args.name, args.limit)
                data, shown = stats, table.stats_csv(stats) if args.csv else text.stats_text(stats)
    except (NoHistory, SchemaError) as e:
        print(f"milepost {args.command}: {e}", file=sys.stderr)
        return 1
    print(json.dumps(data, indent=2, ensure_ascii=False) if args.json else shown)
    return 0


#: The status of a command whose output pipe closed (`milepost show run | head -3`): what a
#: shell reports for a program that SIGPIPE ended, as `cat` or `grep` would be.
PIPE_CLOSED = 128 + 13


def main(argv: Optional[List[str]] = None) -> int:
    """Runs a command. When its output pipe closes early, it stops there, quietly."""
    try:
        try:
            return _main(argv)
        finally:
            # What is still buffered is written now, so that a closed pipe is caught below
            # rather than reported by the interpreter at exit.
            sys.stdout.flush()
    except BrokenPipeError:
        _drop_stdout()
        return PIPE_CLOSED


def _drop_stdout() -> None:
    """Points standard output at /dev/null: what is left in its buffer, flushed at exit, goes
    nowhere instead of failing again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, sys.stdout.fileno())
        finally:
            os.close(devnull)
    except (AttributeError, OSError, ValueError):
        pass


def _main(argv: Optional[List[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if wants_pipe(argv):  # `seq 100 | python -m milepost --total 100 | ...`
        argv = ["pipe", *argv]
    args = _parser().parse_args(argv)
    if args.command == "pipe":
        return run_pipe(args)
    if args.command in ("history", "show", "stats"):
        return _history_command(args)
    if args.command in live_cli.COMMANDS and args.command != "monitor":
        return live_cli.run_command(args)
    commands = {"monitor": _monitor, "serve": _serve, "replay": _replay, "demo": _demo}
    return commands[args.command](args)


def _monitor(args: argparse.Namespace) -> int:
    try:
        from .monitor import run_monitor
    except ImportError:
        print("milepost monitor: the monitor needs: pip install 'milepost[monitor]'", file=sys.stderr)
        return 2
    return run_monitor(args.run)


def _serve(args: argparse.Namespace) -> int:
    from pathlib import Path

    try:
        from .dashboard.server import serve_forever
    except ImportError:
        print("milepost serve: the dashboard needs: pip install 'milepost[dashboard]'", file=sys.stderr)
        return 2
    serve_forever(args.host, args.port, Path(args.db) if args.db else None, args.token)
    return 0


def _replay(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .replay import ReplayError, Skipped, replay

    skipped = Skipped()
    try:
        replay(Path(args.file), args.speed, not args.no_wait, skipped=skipped)
    except BrokenPipeError:
        raise  # not the file's fault: the output went (main stops quietly)
    except (OSError, ReplayError) as e:
        print(f"milepost replay: {e}", file=sys.stderr)
        return 2
    if skipped.count:
        print(
            f"milepost replay: skipped {skipped.count} lines that are not milepost records "
            f"(the first at {skipped.first})",
            file=sys.stderr,
        )
    return 0


def _demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    if args.output not in (None, "stdout", "stderr") and os.path.isdir(args.output):
        print(f"milepost demo: --output {args.output} is a directory: give a file", file=sys.stderr)
        return 2
    try:
        run_demo(
            args.items if args.items is not None else 300 if args.llm else 5000,
            args.workers,
            args.fail_rate,
            args.display,
            args.item_ms,
            args.seed,
            args.snapshot_file,
            args.output,
            args.llm,
            args.concurrency,
            args.budget,
        )
    except ValueError as e:
        print(f"milepost demo: {e}", file=sys.stderr)
        return 2
    except (Cancelled, MilepostError) as e:  # its budget, `milepost cancel`, the dashboard; a failed run
        print(f"milepost demo: {e}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        raise  # the reader of its output went: `main` ends quietly
    except OSError as e:  # --output not writable, a full disk
        print(f"milepost demo: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
