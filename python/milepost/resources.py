"""What a run samples of its resources (`Run(resources=...)`): the settings, checked, and the
directories it writes to, whose free space it watches. The sampling itself is the native
core's (`rust/core/resources`), on a thread of its own that never takes the GIL."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, List, Mapping, Optional, Union

from . import _milepost
from .errors import InvalidValueError

__all__ = ["ResourceSettings", "written_dirs"]

_KEYS = ("interval", "disk_warn")


@dataclass(frozen=True)
class ResourceSettings:
    """How often a run samples its processes, and below which free share of a filesystem it
    writes to it warns.

    Attributes:
        interval: Seconds between samples (0.1 to 3600; default 1).
        disk_warn: Free share (0 to below 1; default 0.05, i.e. 5%) below which a filesystem the
            run writes to gets one warning.
    """

    interval: float
    disk_warn: float

    @classmethod
    def make(cls, value: Union[bool, Mapping[str, Any], None]) -> Optional[ResourceSettings]:
        """The settings `Run(resources=value)` asks for (None: no sampling); a bad value is an
        `InvalidValueError` naming it."""
        if value is False or value is None:
            return None
        if value is True:
            return cls(*_milepost.resource_options())
        if not isinstance(value, Mapping):
            raise InvalidValueError(
                f"resources must be True, False or a dict with 'interval' and 'disk_warn', got {value!r}"
            )
        for key, v in value.items():
            if key not in _KEYS:
                raise InvalidValueError(f"resources has no setting {key!r} (it has 'interval' and 'disk_warn')")
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise InvalidValueError(f"resources {key} must be a number, got {v!r}")
        return cls(*_milepost.resource_options(value.get("interval"), value.get("disk_warn")))


def written_dirs(paths: Iterable[Any]) -> List[str]:
    """The directories of `paths` (files the run writes: its history, its output, its snapshot
    file), absolute and without repeats; `None`, streams and "stdout"/"stderr" are none."""
    out: List[str] = []
    for p in paths:
        if p is None or not isinstance(p, (str, os.PathLike)) or p in ("stdout", "stderr"):
            continue
        d = str(Path(p).expanduser().absolute().parent)
        if d not in out:
            out.append(d)
    return out
