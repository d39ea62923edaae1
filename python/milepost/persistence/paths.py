"""History paths (`load#2/inner%2Fpart`) and their form for people (`load (2nd) › inner/part`).

The writer stores each phase under the snapshot node's `path`: names with `%`, `/` and `#`
escaped, a later sibling of the same name numbered (README "History paths are unambiguous").
"""

from __future__ import annotations

import re
from typing import List, Optional, Sequence, Tuple

from .. import _milepost

#: A history path's escapes.
_UNESCAPE = {"%25": "%", "%2F": "/", "%23": "#"}
_ESCAPED = re.compile("%25|%2F|%23")


def path_levels(path: Optional[str]) -> List[Tuple[str, int]]:
    """The levels of a history path below the run.

    Args:
        path: A stored path (`load#2/inner%2Fpart`); empty or None for the run itself.

    Returns:
        Per level, its name as it was given and which sibling of that name it is (1 for the
        first, 2 for `#2`, ...).
    """
    levels = []
    for level in path.split("/") if path else []:
        name, sep, nth = level.rpartition("#")  # a `#` in a name is escaped: this one numbers it
        if not (sep and nth.isdigit()):
            name, nth = level, "1"
        levels.append((_ESCAPED.sub(lambda m: _UNESCAPE[m.group(0)], name), int(nth)))
    return levels


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def display_path(levels: Sequence[Tuple[str, int]]) -> str:
    """A path for people: names as given (sanitized), levels joined by ` › `, a later sibling of
    the same name marked: `load (2nd) › inner/part`."""
    return " › ".join(_milepost.sanitize(name) + (f" ({_ordinal(nth)})" if nth > 1 else "") for name, nth in levels)
