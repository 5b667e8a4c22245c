"""KQL value semantics: text and dynamic conversions, comparisons, string operators, arithmetic, sort order."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sentinel_signl4_emulators.common.kql_types import Table, kql_type_of

__all__ = [
    "WORD_OPS",
    "arith",
    "as_dynamic",
    "column_key",
    "column_types",
    "compare",
    "has_term",
    "infer_type",
    "kql_text",
    "member_of",
    "sort_key",
    "to_datetime",
    "to_float",
    "to_int",
]


def kql_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def as_dynamic(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def to_datetime(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str) and value.strip():
        try:
            parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace(" ", "T"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def compare(op: str, left: Any, right: Any) -> bool:
    if left is None or right is None:
        return False
    if isinstance(left, datetime) or isinstance(right, datetime):
        left, right = to_datetime(left), to_datetime(right)
        if left is None or right is None:
            return False
    if op in ("=~", "!~"):
        equal = kql_text(left).casefold() == kql_text(right).casefold()
        return equal if op == "=~" else not equal
    if isinstance(left, str) != isinstance(right, str):
        left, right = kql_text(left), kql_text(right)
    try:
        return bool({"==": left == right, "!=": left != right}.get(op) if op in ("==", "!=") else {
            "<": lambda: left < right, "<=": lambda: left <= right,
            ">": lambda: left > right, ">=": lambda: left >= right,
        }[op]())
    except TypeError:
        return False


def has_term(text: str, term: str) -> bool:
    # Kusto's "has" matches whole terms (runs of letters and digits), case-insensitively.
    pattern = rf"(?<![A-Za-z0-9_]){re.escape(term.casefold())}(?![A-Za-z0-9_])"
    return re.search(pattern, text.casefold()) is not None


WORD_OPS: Mapping[str, Callable[[str, str], bool]] = {
    "has": has_term,
    "contains": lambda a, b: b.casefold() in a.casefold(),
    "startswith": lambda a, b: a.casefold().startswith(b.casefold()),
    "endswith": lambda a, b: a.casefold().endswith(b.casefold()),
}


def member_of(value: Any, key: Any) -> Any:
    value = as_dynamic(value)
    if isinstance(value, dict):
        return value.get(str(key))
    if isinstance(value, list) and isinstance(key, int) and -len(value) <= key < len(value):
        return value[key]
    return None


def arith(op: str, left: Any, right: Any) -> Any:
    if left is None or right is None:
        return None
    try:
        return left + right if op == "+" else left - right
    except TypeError:
        return None


def to_int(value: Any) -> int | None:
    try:
        return int(float(value)) if value is not None and value != "" else None
    except (TypeError, ValueError):
        return None


def to_float(value: Any) -> float | None:
    try:
        return float(value) if value is not None and value != "" else None
    except (TypeError, ValueError):
        return None


def sort_key(value: Any) -> tuple[int, Any]:
    if isinstance(value, datetime):
        return (0, value.timestamp())
    if isinstance(value, bool):
        return (1, int(value))
    if isinstance(value, int | float):
        return (1, value)
    if isinstance(value, timedelta):
        return (1, value.total_seconds())
    return (2, kql_text(value))


def column_key(name: str) -> Callable[[Mapping[str, Any]], tuple[int, Any]]:
    return lambda row: sort_key(row[name])


def column_types(table: Table) -> dict[str, str]:
    return dict(table.columns)


def infer_type(rows: Sequence[Mapping[str, Any]], name: str) -> str:
    for row in rows:
        if row.get(name) is not None:
            return kql_type_of(row[name])
    return "string"
