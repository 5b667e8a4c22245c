"""How a span of time reads to a person: ``"3 h"``, ``"12 min"``, ``"4 d ago"`` (whole units, largest first)."""

from __future__ import annotations

from datetime import datetime

__all__ = ["ago_text", "span_text"]

_UNITS = (("d", 86400), ("h", 3600), ("min", 60))


def span_text(seconds: float) -> str:
    """``seconds`` in the largest whole unit: days, hours, minutes, else seconds."""
    whole = max(0, int(seconds))
    for unit, size in _UNITS:
        if whole >= size:
            return f"{whole // size} {unit}"
    return f"{whole} s"


def ago_text(then: datetime | None, now: datetime) -> str:
    """``"5 min ago"``; ``"never"`` without a time, ``"just now"`` for one in the future (clocks differ)."""
    if then is None:
        return "never"
    seconds = (now - then).total_seconds()
    return "just now" if seconds < 0 else f"{span_text(seconds)} ago"
