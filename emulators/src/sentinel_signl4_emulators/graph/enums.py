"""Graph security enums: allowed values, evolvable members and the ``Prefer: include-unknown-enum-members`` opt-in.

Incoming values (PATCH bodies, ``$filter`` literals) are checked here and outgoing ones masked here
(reference §3.1).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from sentinel_signl4_emulators.common.odata import And, Comparison, Expr, Not, Or
from sentinel_signl4_emulators.graph.entities import bad_request
from sentinel_signl4_emulators.graph.vocab import ENUM_VALUES

__all__ = [
    "ALERT_ENUM_PROPS",
    "ENUM_VALUES",
    "EVOLVABLE",
    "INCIDENT_ENUM_PROPS",
    "check_enum_in",
    "check_literals",
    "enum_out",
    "enum_value",
]

#: Members after ``unknownFutureValue`` per enum: Graph only sends them with the ``Prefer`` opt-in.
EVOLVABLE: Final[Mapping[str, frozenset[str]]] = {
    name: frozenset(values[values.index("unknownFutureValue") + 1:])
    for name, values in ENUM_VALUES.items() if values.index("unknownFutureValue") + 1 < len(values)
}

#: Which enum each filterable / writable property uses, per resource.
INCIDENT_ENUM_PROPS: Final[Mapping[str, str]] = {
    "status": "incidentStatus", "severity": "alertSeverity",
    "classification": "alertClassification", "determination": "alertDetermination",
}
ALERT_ENUM_PROPS: Final[Mapping[str, str]] = {
    "status": "alertStatus", "severity": "alertSeverity", "classification": "alertClassification",
    "determination": "alertDetermination", "serviceSource": "serviceSource",
}


#: Properties a PATCH may set (reference §3.1/§3.2). Anything else is refused with 400 [unverified: Graph may
def _is_evolvable(enum: str, value: str) -> bool:
    return value in EVOLVABLE.get(enum, frozenset())


def enum_value(enum: str, value: str, prop: str) -> str:
    if value not in ENUM_VALUES[enum]:
        allowed = ", ".join(ENUM_VALUES[enum])
        raise bad_request(f"Invalid value '{value}' for property '{prop}'. Allowed values: {allowed}.")
    return value


def enum_out(enum: str, value: str, include_unknown: bool) -> str:
    """Evolvable members are sent as ``unknownFutureValue`` unless the client opted in (reference §3.1)."""
    return value if include_unknown or not _is_evolvable(enum, value) else "unknownFutureValue"


def check_enum_in(enum: str, value: str, prop: str, include_unknown: bool) -> None:
    enum_value(enum, value, prop)
    if _is_evolvable(enum, value) and not include_unknown:
        # A client that did not opt in cannot know this member; Graph's answer to it using one is unverified.
        raise bad_request(f"The value '{value}' of property '{prop}' requires the request header "
                           "'Prefer: include-unknown-enum-members'.")


def check_literals(expr: Expr, enum_props: Mapping[str, str], include_unknown: bool) -> None:
    if isinstance(expr, And | Or):
        check_literals(expr.left, enum_props, include_unknown)
        check_literals(expr.right, enum_props, include_unknown)
    elif isinstance(expr, Not):
        check_literals(expr.operand, enum_props, include_unknown)
    elif isinstance(expr, Comparison) and expr.field in enum_props and isinstance(expr.value, str):
        check_enum_in(enum_props[expr.field], expr.value, expr.field, include_unknown)
