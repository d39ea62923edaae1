"""`milepost monitor`: a terminal UI attached to a live run (Textual).

- `start`: `run_monitor`, the command (bad requests are refused before the app starts).
- `app`: the Textual app; `run_screen`: the run's screen; `dialogs`: the cancel question and
  the run picker; `logs`: the log view.
- `feed`: polling a run's files; `view`: what is shown at one moment; `render` and `looks`:
  the panels' text; `panels`: the widget that shows one.
"""

from .start import run_monitor

__all__ = ["run_monitor"]
