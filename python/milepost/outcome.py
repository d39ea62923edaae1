"""How a run, a phase, a step, a loop or a pool ends: the one rule every place uses."""

from __future__ import annotations

import sys
from typing import Iterable, Optional

from .errors import Cancelled

__all__ = ["END_STATES", "end_state", "run_end_state"]

#: The states a task can end in.
END_STATES = ("completed", "failed", "cancelled")


def end_state(exc_type: Optional[type[BaseException]], exc: Optional[BaseException] = None) -> str:
    """The state a block ends in when it is left with `exc` (None: normally).

    - no exception, or `sys.exit()` / `sys.exit(0)`: completed (a normal exit);
    - Ctrl-C (KeyboardInterrupt), a cancel (`milepost.Cancelled`), a generator closed early
      (GeneratorExit), an asyncio task cancelled (`asyncio.CancelledError`): cancelled;
    - anything else, `sys.exit(1)` included: failed.
    """
    if exc_type is None:
        return "completed"
    if issubclass(exc_type, SystemExit):
        code = exc.code if isinstance(exc, SystemExit) else None
        return "completed" if code in (None, 0) else "failed"
    if issubclass(exc_type, (KeyboardInterrupt, GeneratorExit, Cancelled)):
        return "cancelled"
    # Looked up, not imported: without asyncio loaded no exception can be its CancelledError,
    # and `import milepost` does not pay for importing it.
    aio = sys.modules.get("asyncio")
    if aio is not None and issubclass(exc_type, aio.CancelledError):
        return "cancelled"
    return "failed"


def run_end_state(state: str, cancel_requested: bool, child_states: Iterable[str]) -> str:
    """How a run ends, given how its block was left (`state`, from `end_state`): a cancel
    asked for ends it cancelled even if the job caught `Cancelled` and went on; a phase or step
    that failed (a broken pool, a block left with an exception the job caught) makes a run
    that was otherwise completed end failed. Every display and the history read this state."""
    if state != "completed":
        return state
    if cancel_requested:
        return "cancelled"
    return "failed" if "failed" in child_states else "completed"
