"""Log Analytics values the engine and the client share: a query's rows, and KQL string literals. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["LogRows", "kql_string"]


def kql_string(value: str) -> str:
    """``value`` as a KQL string literal: double quotes, backslash and quote escaped, no raw line breaks.

    Ids in a query come from remote data; escaping keeps an odd id from ending the literal and changing the query.
    """
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    return f'"{escaped}"'


@dataclass(frozen=True, slots=True)
class LogRows:
    """The primary table of a query: column names in order, rows as ``{column: value}``.

    ``partial_error`` is set when the service returned a partial result (some rows may be missing).
    """

    columns: tuple[str, ...]
    rows: tuple[dict[str, Any], ...]
    partial_error: str | None = None
