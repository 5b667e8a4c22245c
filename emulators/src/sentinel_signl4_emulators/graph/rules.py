"""Graph's write rules: which PATCH properties exist and what they take, comments, severity roll-up.

Where a behaviour is not documented, a comment says ``[unverified]`` and the emulator takes the strict side.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

from sentinel_signl4_emulators.graph.entities import bad_request
from sentinel_signl4_emulators.graph.enums import check_enum_in

__all__ = ["ALERT_WRITABLE", "INCIDENT_WRITABLE", "comment_text", "highest", "validated_patch"]

#: Properties a PATCH may set (reference §3.1/§3.2). Anything else is refused with 400 [unverified: Graph may
#: ignore read-only properties silently; refusing catches clients that send whole resources back].
INCIDENT_WRITABLE: Final = frozenset({"assignedTo", "classification", "determination", "status", "customTags"})
ALERT_WRITABLE: Final = frozenset({"assignedTo", "classification", "determination", "status"})

# unknown < informational < … < high; unknownFutureValue ranks nowhere (it never raises an incident's severity).
_SEVERITY_RANK: Final = {"unknown": 0, "informational": 1, "low": 2, "medium": 3, "high": 4}


def highest(severities: Iterable[str]) -> str | None:
    known = [s for s in severities if s in _SEVERITY_RANK]
    return max(known, key=lambda s: _SEVERITY_RANK[s]) if known else None


def validated_patch(
    changes: Mapping[str, Any], writable: frozenset[str], enum_props: Mapping[str, str], include_unknown: bool,
) -> dict[str, Any]:
    if not changes:
        raise bad_request("The request body must contain at least one property to update.")
    values: dict[str, Any] = {}
    for key, value in changes.items():
        if key == "@odata.type":
            continue
        if key not in writable:
            raise bad_request(f"Property '{key}' cannot be updated. Updatable: {', '.join(sorted(writable))}.")
        if key == "assignedTo":
            if value is not None and not isinstance(value, str):
                raise bad_request("Property 'assignedTo' must be a string or null.")
            values[key] = value or None
        elif key == "customTags":
            if not isinstance(value, list) or not all(isinstance(tag, str) for tag in value):
                raise bad_request("Property 'customTags' must be an array of strings.")
            values[key] = list(dict.fromkeys(value))  # duplicates collapse, order kept
        else:
            if not isinstance(value, str):
                raise bad_request(f"Property '{key}' must be a string.")
            check_enum_in(enum_props[key], value, key, include_unknown)
            values[key] = value
    return values


def comment_text(text: str) -> str:
    if not text.strip():
        # Graph's answer to an empty comment is unverified; refusing it catches a client bug.
        raise bad_request("Property 'comment' must not be empty.")
    return text
