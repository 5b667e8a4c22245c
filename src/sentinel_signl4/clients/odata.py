"""OData pieces both REST clients (Sentinel's ARM API and Microsoft Graph) use: datetimes and ``eq``/``or`` groups."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

__all__ = ["any_of", "format_odata_datetime", "parse_odata_datetime"]


def format_odata_datetime(value: datetime) -> str:
    """``2026-11-26T10:00:00Z``: UTC, whole seconds, unquoted as ARM's and Graph's OData expect.

    Fractions are dropped (rounded down), which only widens a ``ge`` window: never a missed incident.
    """
    if value.tzinfo is None:
        raise ValueError("OData datetimes must be timezone-aware")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_odata_datetime(value: Any) -> datetime | None:
    """An aware UTC datetime from an ISO string as ARM and Graph send it (``Z``, up to 7 fractional digits), or
    ``None`` for anything else."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def any_of(path: str, values: Iterable[str]) -> str:
    """``path eq 'a'``, or ``(path eq 'a' or path eq 'b' …)`` for several values."""
    terms = [f"{path} eq '{value}'" for value in values]
    return terms[0] if len(terms) == 1 else "(" + " or ".join(terms) + ")"
