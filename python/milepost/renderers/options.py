"""How a run is shown: the display options in one object, checked once, and the displays
they make. `Run` hands its options here and never names a renderer class."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, List, Optional, TextIO, Union

from .. import _milepost
from ..dispatch import check_interval
from ..errors import InvalidValueError
from . import interval_from_env, native_target, resolve_display

if TYPE_CHECKING:
    from ..observers import Observer

__all__ = ["DisplayOptions"]

Output = Union[TextIO, str, "os.PathLike[str]", None]


@dataclass(frozen=True)
class DisplayOptions:
    """A run's display settings (the `Run` arguments of the same names), checked.

    Attributes:
        display: The display resolved from the argument, `MILEPOST_DISPLAY` and where the
            output goes (`native`, `rich`, `plain`, `json` or `none`).
        output: Where plain, JSON or rich output goes: a stream, a path or "stdout"/"stderr".
        interval: Seconds between plain or JSON lines (None: the display's default).
        refresh_hz: Redraws per second of the live displays.
        max_lanes: Worker lanes shown before folding into "… N more lanes".
        leave: Keep the final frame on screen.
        redirect: While the native display draws, route `print` output above the bars.
    """

    display: str
    output: Output = None
    interval: Optional[float] = None
    refresh_hz: float = 10.0
    max_lanes: int = 8
    leave: bool = True
    redirect: bool = True

    @classmethod
    def make(
        cls,
        display: Optional[str] = "auto",
        output: Output = None,
        interval: Optional[float] = None,
        refresh_hz: float = 10.0,
        max_lanes: int = 8,
        leave: bool = True,
        redirect: bool = True,
    ) -> DisplayOptions:
        """The options, every value checked (an error names the bad one)."""
        stream = output if hasattr(output, "write") else None
        chosen = resolve_display(display, stream)  # type: ignore[arg-type]
        if isinstance(refresh_hz, bool) or not isinstance(refresh_hz, (int, float)) or not 0 < refresh_hz <= 20:
            raise InvalidValueError(f"refresh_hz must be a number in (0, 20], got {refresh_hz!r}")
        if isinstance(max_lanes, bool) or not isinstance(max_lanes, int) or max_lanes < 0:
            raise InvalidValueError(f"max_lanes must be an int >= 0, got {max_lanes!r}")
        return cls(
            chosen,
            output,
            check_interval(interval, "interval"),
            max(float(refresh_hz), 0.5),
            max_lanes,
            leave,
            redirect,
        )

    @property
    def stream(self) -> Optional[TextIO]:
        return self.output if hasattr(self.output, "write") else None  # type: ignore[return-value]

    def displays(self, core: _milepost.RunCore, manual: bool = False) -> List[Observer]:
        """The display observers these options ask for, drawing `core`'s run (`manual`: the
        run's clock is injected, nothing may run in the background)."""
        if self.display == "native":
            from .native import NativeDisplay

            return [
                NativeDisplay(
                    core,
                    self.refresh_hz,
                    self.max_lanes,
                    self.leave,
                    self.redirect,
                    stdout=native_target(self.stream) == "stdout",
                    manual=manual,
                )
            ]
        if self.display == "plain":
            from .plain import PlainRenderer

            return [PlainRenderer(self.output, interval=self.interval or interval_from_env(10.0))]
        if self.display == "json":
            from .jsonl import JsonLinesRenderer

            return [JsonLinesRenderer(self.output, interval=self.interval or interval_from_env(1.0))]
        if self.display == "rich":
            from .rich import RichRenderer

            return [RichRenderer(self.stream, 1.0 / self.refresh_hz, self.leave, self.max_lanes)]
        if self.display == "notebook":
            from .notebook import NotebookDisplay

            return [NotebookDisplay(self.max_lanes)]
        return []
