"""How the monitor draws states and progress: a colour and a mark for every state (the mark
keeps states apart where NO_COLOR turns colours grey), a bar that fills the width it is
given, and the text helpers every panel shares."""

from __future__ import annotations

import time
from typing import Any, Dict, Iterable, Optional

from rich.console import Console, ConsoleOptions, RenderResult
from rich.measure import Measurement
from rich.segment import Segment
from rich.style import Style
from rich.text import Text

from .. import _milepost
from ..config import setting

__all__ = ["Bar", "LEVEL_STYLES", "clean", "count", "duration", "mark", "state_text", "wall_time"]

#: Node, run and item states: (mark, style). `crashed` is the monitor's own: the process is
#: gone and never said how it ended.
STATES: Dict[str, tuple[str, str]] = {
    "pending": ("·", "dim"),
    "running": ("●", "bold cyan"),
    "completed": ("✓", "bold green"),
    "done": ("✓", "green"),
    "failed": ("✗", "bold red"),
    "cancelled": ("⊘", "bold yellow"),
    "crashed": ("‼", "bold magenta"),
    "skipped": ("↷", "yellow"),
    # worker lanes
    "idle": ("○", "dim"),
    "busy": ("●", "cyan"),
    "finished": ("✓", "green"),
    "stalled": ("…", "bold yellow"),
    "died": ("✗", "bold red"),
}

LEVEL_STYLES = {"debug": "dim", "info": "", "warning": "yellow", "error": "bold red", "critical": "bold red reverse"}


def _legible(style: Optional[Style]) -> Optional[Style]:
    """Without colour (NO_COLOR), only what stays legible: no text colour, no dimming (Textual
    would turn red on black into grey on black); the background, bold, italic and reverse stay,
    and so do the marks."""
    if style is None:
        return None
    return Style(bgcolor=style.bgcolor, bold=style.bold, italic=style.italic, reverse=style.reverse)


def no_color() -> bool:
    """NO_COLOR, MILEPOST_COLOR=never or `[tool.milepost] color = "never"` (see `config`)."""
    return bool(setting("color") == "never")


def legible(segments: Iterable[Segment]) -> Iterable[Segment]:
    """`segments` as drawn: as they are, or, under NO_COLOR, without colour or dimming."""
    if not no_color():
        return segments
    return (Segment(text, _legible(style), control) for text, style, control in segments)


def legible_text(text: Text) -> Text:
    """A line for a log widget, under NO_COLOR without colour or dimming."""
    if not no_color():
        return text
    plain = Text(text.plain)
    for span in text.spans:
        style = Style.parse(span.style) if isinstance(span.style, str) else span.style
        plain.stylize(Style(bold=style.bold, italic=style.italic, reverse=style.reverse), span.start, span.end)
    return plain


def mark(state: str) -> tuple[str, str]:
    return STATES.get(state, ("?", ""))


def state_text(state: str) -> Text:
    """`● running`, coloured."""
    symbol, style = mark(state)
    return Text(f"{symbol} {state}", style=style)


def clean(value: Any) -> str:
    """User text (names, errors, output) without escapes or control characters."""
    return _milepost.sanitize(str(value if value is not None else ""))


def count(n: Optional[int]) -> str:
    return "?" if n is None else _milepost.format_count(int(n))


def duration(seconds: Optional[float]) -> str:
    return "–" if seconds is None else _milepost.format_duration(max(0.0, float(seconds)))


def item_duration(seconds: Optional[float]) -> str:
    """An item's duration: below a second in milliseconds (items of a few ms read "0.0s" as
    a run's elapsed time is written)."""
    if seconds is None or seconds >= 1:
        return duration(seconds)
    ms = max(0.0, float(seconds)) * 1000
    return f"{ms:.1f}ms" if ms < 10 else f"{ms:.0f}ms"


def wall_time(t: float) -> str:
    """A Unix time as the local date and time (the run started then)."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))


class Bar:
    """A progress bar as wide as the space it is given (at least `minimum` cells); a run
    without a total gets an empty bar, not a guess."""

    def __init__(self, fraction: Optional[float], state: str, minimum: int = 6) -> None:
        self.fraction = None if fraction is None else min(1.0, max(0.0, fraction))
        self.state = state
        self.minimum = minimum

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement(self.minimum, options.max_width)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = max(self.minimum, options.max_width)
        filled = 0 if self.fraction is None else round(self.fraction * width)
        style = Style.parse(mark(self.state)[1] or "cyan")
        yield Segment("█" * filled, style)
        yield Segment("░" * (width - filled), Style(dim=True))
