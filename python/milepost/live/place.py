"""Where live runs are published: one directory per user, one subdirectory per run.

The directory is `$MILEPOST_LIVE_DIR`, else `$MILEPOST_HOME/live` (a home set for milepost
holds all it keeps), else `$XDG_CACHE_HOME/milepost/live`, else `~/.cache/milepost/live`: on
the user's own disk, not in `$XDG_RUNTIME_DIR` (which is removed when the user's last session
ends, while a `nohup` job goes on) and not in a shared /tmp. Only its owner can read or write
it (mode 0700, files 0600); a directory that belongs to another user, or that others can write
to, is refused: nobody else sees or steers a run.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Optional

from ..errors import MilepostError
from ..pids import HOST, alive, process_start

__all__ = ["LiveError", "live_dir", "run_dir", "check_owned", "process_start", "alive", "FORMAT", "HOST"]

#: The layout version of a run's directory (`run.json` says which it was written with).
FORMAT = 1


class LiveError(MilepostError):
    """A live run cannot be found, read or steered (the message says why)."""


def live_dir() -> Path:
    configured = os.environ.get("MILEPOST_LIVE_DIR")
    if configured:
        return Path(configured)
    home = os.environ.get("MILEPOST_HOME")
    if home:
        return Path(home) / "live"
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / "milepost" / "live"


def check_owned(path: Path) -> None:
    """Refuses a directory or file that is not this user's alone."""
    st = path.lstat()
    if stat.S_ISLNK(st.st_mode):
        raise LiveError(f"{path} is a symbolic link: refused (live runs are kept in the user's own directory)")
    if hasattr(os, "getuid") and st.st_uid != os.getuid():
        raise LiveError(f"{path} belongs to another user (uid {st.st_uid}): its runs are theirs to see")
    if stat.S_ISDIR(st.st_mode) and st.st_mode & 0o022:
        raise LiveError(f"{path} can be written by other users (mode {stat.S_IMODE(st.st_mode):o}): refused")


def ensure_live_dir(root: Optional[Path] = None) -> Path:
    """The live directory (`root`, else `live_dir()`), made (0700) if needed and checked."""
    root = root if root is not None else live_dir()
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    check_owned(root)
    return root


def run_dir(run_id: str, root: Optional[Path] = None) -> Path:
    if not run_id or any(c in run_id for c in "/\\\0") or run_id in (".", ".."):
        raise LiveError(f"not a run id: {run_id!r}")
    return (root or live_dir()) / run_id
