"""A panel of the monitor: a widget that draws one of `render`'s functions from the latest
`View`, at the width it has (drawn again on every resize)."""

from __future__ import annotations

from typing import Callable, Optional

from rich.console import RenderableType
from rich.text import Text
from textual.widget import Widget

from .view import View

__all__ = ["Panel"]

Draw = Callable[[View, int], Optional[RenderableType]]


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
        if title:
            self.border_title = title

    def show(self, view: View) -> None:
        self.view = view
        self.display = self.draw(view, max(1, self.content_size.width or 80)) is not None
        self.refresh(layout=True)

    def render(self) -> RenderableType:
        if self.view is None:
            return Text("waiting for the run's first snapshot…", style="dim")
        return self.draw(self.view, max(1, self.content_size.width)) or Text("")
