"""Human durations in config: ``30`` (seconds), ``"30s"``, ``"5m"``, ``"24h"``, ``"1d"``, ``"1h30m"``.

Every duration is finite, not negative and at most ``MAX_DURATION`` (ten years), so no later datetime computation
(``now + interval``, ``now - max_age``) can overflow; each setting narrows that further with :func:`within`.
"""

from __future__ import annotations

import math
import re
from datetime import timedelta
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator

__all__ = ["MAX_DURATION", "Duration", "PositiveDuration", "format_duration", "parse_duration", "within"]

_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_FORMS = "use seconds (30) or \"30s\", \"5m\", \"24h\", \"1d\", \"1h30m\""

#: The longest duration any setting accepts.
MAX_DURATION = timedelta(days=3650)


def parse_duration(value: object) -> timedelta:
    """Parse a duration; raise ``ValueError`` (never ``OverflowError``) when ``value`` is not one or is out of range."""
    if isinstance(value, timedelta):
        return _checked(value.total_seconds(), value)
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 30, \"30s\", \"5m\", \"24h\" or \"1d\"")
    if isinstance(value, int | float):
        try:
            seconds = float(value)
        except OverflowError:  # an integer beyond float range
            seconds = math.inf
        return _checked(seconds, value)
    if isinstance(value, str):
        text = value.strip().lower().replace(" ", "")
        if text and _PART.sub("", text) == "":
            # float() of a long digit string is inf, never an error; the sum is checked below.
            total = sum(float(n) * _UNITS[u] for n, u in _PART.findall(text))
            return _checked(total, value)
    raise ValueError(f"{value!r} is not a duration: {_FORMS}")


def _checked(seconds: float, shown: object) -> timedelta:
    if math.isnan(seconds):
        raise ValueError(f"{shown!r} is not a duration: {_FORMS}")
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    if seconds > MAX_DURATION.total_seconds():  # inf included
        raise ValueError(f"{_short(shown)} is too long: no duration may exceed {format_duration(MAX_DURATION)}")
    return timedelta(seconds=seconds)


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def format_duration(value: timedelta) -> str:
    """``value`` in the config's own notation (``"1d"``, ``"90s"``, ``"1.5h"``), for error messages and docs."""
    seconds = value.total_seconds()
    for unit, size in (("d", 86400.0), ("h", 3600.0), ("m", 60.0), ("s", 1.0)):
        if seconds >= size:
            return f"{seconds / size:g}{unit}"
    return f"{seconds * 1000:g}ms"


def _positive(value: timedelta) -> timedelta:
    if value.total_seconds() <= 0:
        raise ValueError("must be greater than zero")
    return value


def within(at_least: timedelta, at_most: timedelta) -> AfterValidator:
    """A duration setting's own bounds (inclusive); the error names both, so the key plus this says what to do."""

    def check(value: timedelta) -> timedelta:
        if not at_least <= value <= at_most:
            raise ValueError(f"must be between {format_duration(at_least)} and {format_duration(at_most)} "
                             f"(got {format_duration(value)})")
        return value

    return AfterValidator(check)


#: A config field holding a duration in any form :func:`parse_duration` accepts.
Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
#: The same, and greater than zero.
PositiveDuration = Annotated[Duration, AfterValidator(_positive)]
