"""The KQL interpreter's error and table types."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

__all__ = ["KqlError", "Table", "kql_type_of", "semantic_error", "syntax_error"]


class KqlError(Exception):
    """A query the engine rejects: ``kind`` is ``SyntaxError`` or ``SemanticError`` (HTTP 400 either way)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


def syntax_error(message: str) -> KqlError:
    return KqlError("SyntaxError", message)


def semantic_error(message: str) -> KqlError:
    return KqlError("SemanticError", message)


@dataclass(slots=True)
class Table:
    """Columns as ``(name, KQL type)`` and rows as dicts; the shape the query API serialises."""

    columns: list[tuple[str, str]]
    rows: list[dict[str, Any]] = field(default_factory=list)

    def names(self) -> list[str]:
        return [name for name, _ in self.columns]

    def type_of(self, name: str) -> str:
        for column, kind in self.columns:
            if column == name:
                return kind
        raise semantic_error(f"Failed to resolve scalar expression named '{name}'")


def kql_type_of(value: Any) -> str:
    """The KQL type of a Python value (for computed columns)."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "long"
    if isinstance(value, float):
        return "real"
    if isinstance(value, datetime):
        return "datetime"
    if isinstance(value, timedelta):
        return "timespan"
    if isinstance(value, dict | list):
        return "dynamic"
    return "string"
