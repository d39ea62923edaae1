"""The monitor's questions: cancel the run? (asked before anything is sent), and which run to
attach to when none was named."""

from __future__ import annotations

from typing import List, Tuple

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, Footer, Label, OptionList, Static
from textual.widgets.option_list import Option

from ..live.place import LiveError
from ..live.reader import LiveRun, LiveState, list_runs
from ..live.summary import progress, row
from .looks import clean, state_text, wall_time

__all__ = ["ConfirmCancel", "PickRun"]


class ConfirmCancel(ModalScreen[bool]):
    """Asks before a cancel is sent: True to send it."""

    DEFAULT_CSS = """
    ConfirmCancel { align: center middle; }
    ConfirmCancel > Vertical {
        width: 72; max-width: 100%; height: auto;
        border: thick $error; background: $surface; padding: 1 2;
    }
    ConfirmCancel Label { width: 100%; }
    ConfirmCancel Horizontal { height: auto; margin-top: 1; }
    ConfirmCancel Button { margin-right: 2; }
    """
    BINDINGS = [Binding("y", "answer(True)", "Yes, cancel"), Binding("n,escape", "answer(False)", "No")]

    def __init__(self, run: LiveRun) -> None:
        super().__init__()
        self.live = run

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(f"Cancel run {clean(self.live.name)} ({self.live.id})?", id="question")
            yield Label("Items in flight finish; no new ones start. The job saves its history and ends.")
            with Horizontal():
                yield Button("Yes, cancel it (y)", variant="error", id="yes")
                yield Button("No, keep it running (n)", variant="primary", id="no")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class PickRun(Screen[LiveRun]):
    """The runs on this machine, live ones first: Enter attaches to one."""

    DEFAULT_CSS = """
    PickRun OptionList { height: 1fr; }
    PickRun #pick-note { height: auto; padding: 0 1; }
    """
    BINDINGS = [Binding("q", "app.quit", "Quit")]

    def __init__(self) -> None:
        super().__init__()
        self.runs: List[Tuple[LiveRun, LiveState]] = []

    def compose(self) -> ComposeResult:
        yield Static("Attach to which run? (↑↓, Enter)", id="pick-title")
        yield OptionList(id="runs")
        yield Static("", id="pick-note")
        yield Footer()

    def on_mount(self) -> None:
        self.fill()
        self.set_interval(1.0, self.fill)

    def fill(self) -> None:
        try:
            found = list_runs()
        except LiveError as e:
            self.query_one("#pick-note", Static).update(Text(str(e), style="red"))
            return
        found = [p for p in found if p[1].state == "running"] + [p for p in found if p[1].state != "running"]
        if [r.id for r, _ in found] == [r.id for r, _ in self.runs]:
            return  # the same runs: keep the highlight where the user put it
        self.runs = found
        options = self.query_one("#runs", OptionList)
        options.clear_options()
        options.add_options([Option(_line(run, state), id=run.id) for run, state in found])
        options.highlighted = 0 if found else None
        options.focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        run = next((r for r, _ in self.runs if r.id == event.option.id), None)
        if run is None:
            return
        try:
            run.read()
        except LiveError as e:
            self.query_one("#pick-note", Static).update(Text(str(e), style="red"))
            return
        self.dismiss(run)


def _line(run: LiveRun, state: LiveState) -> Text:
    line = state_text(state.state)
    line.append(f"  {clean(run.name)}", style="bold")
    line.append(f"  {run.id}  {progress(row(run, state))}  started {wall_time(run.started_at)}  ")
    line.append(clean(run.command)[:60], style="dim")
    return line
