"""How a span of time reads to a person: ``"3 h"``, ``"12 min"``, ``"4 d ago"`` (whole units, largest first)."""

from __future__ import annotations

from datetime import datetime

__all__ = ["ago_text", "span_text"]

_UNITS = (("d", 86400), ("h", 3600), ("min", 60))


def span_text(seconds: float, *, parts: int = 1) -> str:
    """``seconds`` in the largest whole unit (days, hours, minutes, else seconds); with ``parts=2`` the next unit too
    when it is not zero (``"1 h 30 min"``), for a configured limit that must read as exactly what was set."""
    whole = max(0, int(seconds))
    shown: list[str] = []
    for unit, size in (*_UNITS, ("s", 1)):
        if whole >= size and len(shown) < parts:
            shown.append(f"{whole // size} {unit}")
            whole %= size
        elif shown:
            break  # only adjacent units: "1 d 5 min" would hide the hours in between
    return " ".join(shown) or "0 s"


def ago_text(then: datetime | None, now: datetime) -> str:
    """``"5 min ago"``; ``"never"`` without a time, ``"just now"`` for one in the future (clocks differ)."""
    if then is None:
        return "never"
    seconds = (now - then).total_seconds()
    return "just now" if seconds < 0 else f"{span_text(seconds)} ago"
