"""Human durations in config: ``30`` (seconds), ``"30s"``, ``"5m"``, ``"24h"``, ``"1d"``, ``"1h30m"``."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator

__all__ = ["Duration", "PositiveDuration", "parse_duration"]

_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(value: object) -> timedelta:
    """Parse a duration; raise ``ValueError`` with the accepted forms when ``value`` is not one."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 30, \"30s\", \"5m\", \"24h\" or \"1d\"")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return timedelta(seconds=float(value))
    if isinstance(value, str):
        text = value.strip().lower().replace(" ", "")
        if text and _PART.sub("", text) == "":
            total = sum(float(n) * _UNITS[u] for n, u in _PART.findall(text))
            return timedelta(seconds=total)
    raise ValueError(f"{value!r} is not a duration: use seconds (30) or \"30s\", \"5m\", \"24h\", \"1d\", \"1h30m\"")


def _positive(value: timedelta) -> timedelta:
    if value.total_seconds() <= 0:
        raise ValueError("must be greater than zero")
    return value


#: A config field holding a duration in any form :func:`parse_duration` accepts.
Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
#: The same, and greater than zero.
PositiveDuration = Annotated[Duration, AfterValidator(_positive)]
