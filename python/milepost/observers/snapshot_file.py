"""The `.progress.json` file: the latest snapshot, replaced atomically."""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Union

from .base import BaseObserver

if TYPE_CHECKING:
    from ..snapshot import Snapshot

_log = logging.getLogger("milepost")


class JsonSnapshotFile(BaseObserver):
    """Writes the snapshot to `path` every `interval` seconds and at the end.

    The file is written to a temporary file in the same directory, flushed to disk, then
    renamed over the old one, so a reader (or a crash) never sees a half-written file. A
    failed write (full disk, read-only directory) is logged once and the job goes on.
    """

    def __init__(self, path: Union[str, os.PathLike[str]] = ".progress.json", interval: float = 2.0) -> None:
        self.path = Path(path)
        self.interval = interval
        self._warned = False

    def on_snapshot(self, snapshot: Snapshot) -> None:
        try:
            self._write(snapshot.json())
        except OSError as e:
            if not self._warned:
                self._warned = True
                _log.warning("milepost: cannot write %s (%s); progress goes on without it", self.path, e)

    def _write(self, text: str) -> None:
        directory = self.path.parent
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=directory)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
                f.write("\n")
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
