"""The live channel: a run with a history publishes itself outside its process (see
`publisher`), and anyone of the same user on the machine can find it, read it and steer it
(see `reader`). `milepost runs`, `milepost monitor` and `milepost serve` are its clients."""

from __future__ import annotations

from .place import LiveError, live_dir

__all__ = ["LiveError", "live_dir"]
