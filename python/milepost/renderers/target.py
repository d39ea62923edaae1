"""Where a text renderer writes: a stream, a path (appended to, closed at the end), or the
names "stdout" / "stderr". Standard streams are looked up at each write, so that redirection
(pytest's capture, contextlib.redirect_stdout) is honoured."""

from __future__ import annotations

import os
import sys
from typing import IO, Optional, TextIO, Union

Target = Union[str, "os.PathLike[str]", TextIO, None]


class Output:
    def __init__(self, target: Target = None) -> None:
        self._owned: Optional[IO[str]] = None
        self._stream: Optional[TextIO] = None
        self._stdout = False
        if target is None or target == "stderr":
            pass
        elif target in ("stdout", "-"):
            self._stdout = True
        elif isinstance(target, (str, os.PathLike)):
            self._owned = open(target, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()
            self._stream = self._owned
        else:
            self._stream = target

    @property
    def stream(self) -> TextIO:
        if self._stream is not None:
            return self._stream
        return sys.stdout if self._stdout else sys.stderr

    def write(self, text: str) -> None:
        out = self.stream
        out.write(text)
        out.flush()

    def close(self) -> None:
        if self._owned is not None:
            self._owned.close()
            self._owned = None
