"""Exceptions raised by milepost."""

from __future__ import annotations

__all__ = ["MilepostError", "InvalidValueError"]


class MilepostError(Exception):
    """Base class of milepost's own exceptions."""


class InvalidValueError(MilepostError, ValueError):
    """A count, total, metric or name that milepost cannot accept; the message names it."""
