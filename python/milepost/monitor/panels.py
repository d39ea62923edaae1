"""A panel of the monitor: a widget that draws one of `render`'s functions from the latest
`View`, at the width it has (drawn again on every resize).

A panel renders its lines once per new view and hands Textual those lines (its line API),
asking for a new layout only when its height changed: four snapshots a second on five
monitors must not cost the machine a job runs on more than a sliver of a core."""

from __future__ import annotations

from typing import Any, Callable, List, Optional

from rich.console import RenderableType
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.geometry import Size
from textual.strip import Strip
from textual.widget import Widget

from .looks import legible
from .view import View

__all__ = ["Panel"]

Draw = Callable[[View, int], Optional[RenderableType]]

WAITING = Text("waiting for the run's first snapshot…", style="dim")


class Panel(Widget):
    """Shows `draw(view, width)`; hidden while `draw` gives None (no failures: no panel)."""

    DEFAULT_CSS = """
    Panel {
        height: auto;
        padding: 0 1;
    }
    Panel.boxed {
        border: round $primary-darken-1;
        border-title-color: $text;
        border-title-style: bold;
    }
    """

    def __init__(self, draw: Draw, title: Optional[str] = None, *, id: str) -> None:
        super().__init__(id=id, classes="boxed" if title else "")
        self.draw = draw
        self.view: Optional[View] = None
        self._lines: List[Strip] = []
        self._width = 0
        if title:
            self.border_title = title

    def show(self, view: View) -> None:
        self.view = view
        self._draw_lines(self.content_size.width or 80)

    def _draw_lines(self, width: int) -> None:
        width = max(1, width)
        renderable = WAITING if self.view is None else self.draw(self.view, width)
        shown = renderable is not None
        before = len(self._lines)
        if renderable is not None:
            console = self.app.console
            options = console.options.update_width(width)
            style = self.rich_style
            self._lines = [
                Strip(Segment.adjust_line_length(list(legible(line)), width, style=style), width)
                for line in console.render_lines(renderable, options, style=style, pad=False)
            ]
        self._width = width
        if shown != self.display:
            self.display = shown
        self.refresh(layout=len(self._lines) != before)

    def on_resize(self, event: Any) -> None:
        if self.content_size.width != self._width:
            self._draw_lines(self.content_size.width)

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        if width != self._width:
            self._draw_lines(width)
        return len(self._lines)

    def render_line(self, y: int) -> Strip:
        if y < len(self._lines):
            return self._lines[y]
        return Strip.blank(self._width, self.rich_style if isinstance(self.rich_style, Style) else None)
