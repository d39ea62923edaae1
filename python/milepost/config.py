"""Settings for every job on a machine or in a project, without touching the code: `MILEPOST_*`
environment variables and the `[tool.milepost]` table of the nearest `pyproject.toml` (the
working directory's, else its parents').

One precedence everywhere: an argument in the code, then the environment, then the file, then
the default. A bad value in the environment or the file is warned about once (on the
`milepost` logger) and the next source is used: a setting meant for every job never stops one.

| setting | variable | `[tool.milepost]` | value |
|---|---|---|---|
| display | MILEPOST_DISPLAY | display | auto, native, plain, json, rich, none |
| interval | MILEPOST_INTERVAL | interval | seconds between plain/JSON lines (> 0) |
| history | MILEPOST_HISTORY | history | a database path, on (1, on, true, yes: the default), or off (0, off, no) |
| dashboard_host | MILEPOST_DASHBOARD_HOST | dashboard_host | the address `Run(dashboard=True)` binds |
| dashboard_port | MILEPOST_DASHBOARD_PORT | dashboard_port | 0-65535 (0: any free port) |
| color | MILEPOST_COLOR | color | auto, always, never (NO_COLOR set means never) |
"""

from __future__ import annotations

import logging
import os
import stat
import sys
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Set, Tuple

__all__ = ["setting", "file_settings", "SETTINGS", "OFF"]

_log = logging.getLogger("milepost")

DISPLAYS = ("auto", "native", "plain", "json", "rich", "notebook", "none")
#: What turns the history off, in the environment or the file.
OFF = ("0", "off", "false", "no", "none")
ON = ("1", "on", "true", "yes")


def _display(value: Any) -> str:
    text = str(value).strip().lower()
    if text not in DISPLAYS:
        raise ValueError(f"is not a display ({', '.join(DISPLAYS)})")
    return text


def _interval(value: Any) -> float:
    seconds = float(value)
    if not 0 < seconds < float("inf"):
        raise ValueError("is not a positive number of seconds")
    return seconds


def _history(value: Any) -> Optional[str]:
    """A path, None for off, or "" for on in the default place (1, on, true, yes)."""
    if value is False or str(value).strip().lower() in OFF:
        return None
    if value is True or str(value).strip().lower() in ON:
        return ""  # on, where it is kept by default (not a file named "True")
    if not isinstance(value, (str, os.PathLike)):
        raise ValueError("is not a database path (or on, or off)")
    text = str(value).strip()
    if not text:
        raise ValueError("is empty (a database path, or off)")
    return text


def _host(value: Any) -> str:
    text = str(value).strip()
    if not text or any(c.isspace() for c in text):
        raise ValueError("is not a host name or address")
    return text


def _port(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("is not a port number")
    port = int(value)
    if not 0 <= port <= 65535 or float(value) != port:
        raise ValueError("is not a port number (0-65535)")
    return port


def _color(value: Any) -> str:
    text = {True: "always", False: "never"}.get(value, str(value)) if isinstance(value, bool) else str(value)
    text = text.strip().lower()
    if text not in ("auto", "always", "never"):
        raise ValueError("is not auto, always or never")
    return text


#: name -> (environment variable, check and convert, default).
SETTINGS: Dict[str, Tuple[str, Callable[[Any], Any], Any]] = {
    "display": ("MILEPOST_DISPLAY", _display, "auto"),
    "interval": ("MILEPOST_INTERVAL", _interval, None),
    "history": ("MILEPOST_HISTORY", _history, ""),
    "dashboard_host": ("MILEPOST_DASHBOARD_HOST", _host, "127.0.0.1"),
    "dashboard_port": ("MILEPOST_DASHBOARD_PORT", _port, 8080),
    "color": ("MILEPOST_COLOR", _color, "auto"),
}

_warned: Set[Tuple[str, str]] = set()
_cache: Dict[str, Tuple[Tuple[int, int], Dict[str, Any]]] = {}


def setting(name: str) -> Any:
    """The value of setting `name` from the environment, else the file, else its default (an
    argument in the code, checked by its caller, comes before all of these)."""
    variable, check, default = SETTINGS[name]
    if name == "color" and os.environ.get("NO_COLOR") and not os.environ.get(variable):
        return "never"  # https://no-color.org: set (to anything) means no colour
    raw = os.environ.get(variable)
    if raw is not None and raw.strip() != "":
        try:
            return check(raw)
        except (TypeError, ValueError) as e:
            _warn(f"{variable}={raw!r}", f"{e}; ignored")
    table, where = file_settings()
    if name in table:
        try:
            return check(table[name])
        except (TypeError, ValueError) as e:
            _warn(f"{where}: [tool.milepost] {name} = {table[name]!r}", f"{e}; ignored")
    return default


def file_settings(start: Optional[Path] = None) -> Tuple[Dict[str, Any], str]:
    """The `[tool.milepost]` table of the nearest pyproject.toml from `start` (the working
    directory) upward, and where it is; empty when there is none, or it does not parse (said
    once). Read again only when the file changes."""
    # getcwd() is already absolute and free of links (the kernel's own path): no realpath.
    found = _walk(os.path.realpath(str(start)) if start is not None else os.getcwd())
    if found is None:
        return {}, ""
    name, st = found
    stamp = (st.st_mtime_ns, st.st_size)
    cached = _cache.get(name)
    if cached is None or cached[0] != stamp:
        cached = _cache[name] = (stamp, _read(Path(name)))
    return cached[1], name


def _walk(folder: str) -> Optional[Tuple[str, os.stat_result]]:
    """The nearest pyproject.toml from `folder` upward, with its `stat` (which says whether the
    cached table is still the file's). os.path and one `stat` a folder: every run asks for its
    settings, and a short `track()` loop's set-up is a few dozen microseconds."""
    while True:
        name = os.path.join(folder, "pyproject.toml")
        try:
            st = os.stat(name)
        except OSError:
            st = None
        if st is not None and stat.S_ISREG(st.st_mode):
            return name, st
        parent = os.path.dirname(folder)
        if parent == folder:
            return None
        folder = parent


def _read(path: Path) -> Dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10 has no tomllib
        try:
            import tomli as tomllib
        except ImportError:
            _warn(str(path), "cannot be read on Python 3.10 without the tomli package; its [tool.milepost] is ignored")
            return {}
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except (OSError, ValueError) as e:  # tomllib.TOMLDecodeError is a ValueError
        _warn(str(path), f"does not parse ({e}); its [tool.milepost] is ignored")
        return {}
    table = data.get("tool", {}).get("milepost", {}) if isinstance(data.get("tool"), dict) else {}
    if not isinstance(table, dict):
        _warn(f"{path}: [tool.milepost]", "is not a table; ignored")
        return {}
    unknown = sorted(set(table) - set(SETTINGS))
    if unknown:
        _warn(f"{path}: [tool.milepost]", f"has unknown keys {', '.join(unknown)} (known: {', '.join(SETTINGS)})")
    return table


def _warn(what: str, why: str) -> None:
    if (what, why) not in _warned:
        _warned.add((what, why))
        _log.warning("milepost: %s %s", what, why)
