"""Sentinel's validation rules: enum values, labels, classification on close, comment length and the error shape.

Facts come from reference/microsoft-apis.md §1; where it marks something unverified, so does a comment here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from enum import StrEnum
from typing import Final

from sentinel_signl4_emulators.sentinel.entities import StoredIncident
from sentinel_signl4_emulators.sentinel.vocab import Classification, ClassificationReason, IncidentStatus

__all__ = [
    "COMMENT_MAX_LENGTH",
    "SentinelError",
    "apply_classification",
    "bad_request",
    "enum_value",
    "merge_labels",
    "unique",
]

#: Comment messages longer than this are rejected (Sentinel's documented comment limit; the exact error
#: text is unverified).
COMMENT_MAX_LENGTH: Final = 30_000

# Valid (classification, reason) pairs as the portal and Logic Apps connector offer them (§1.6).
_VALID_REASONS: Final[Mapping[Classification, frozenset[ClassificationReason | None]]] = {
    Classification.UNDETERMINED: frozenset({None}),
    Classification.TRUE_POSITIVE: frozenset({ClassificationReason.SUSPICIOUS_ACTIVITY}),
    Classification.BENIGN_POSITIVE: frozenset({ClassificationReason.SUSPICIOUS_BUT_EXPECTED}),
    Classification.FALSE_POSITIVE: frozenset(
        {ClassificationReason.INCORRECT_ALERT_LOGIC, ClassificationReason.INACCURATE_DATA}
    ),
}


class SentinelError(Exception):
    """A failure the service reports as ``{"error": {"code", "message"}}`` with HTTP ``status``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def bad_request(message: str) -> SentinelError:
    return SentinelError(400, "BadRequest", message)


def enum_value(enum: type[StrEnum], value: str, prop: str) -> str:
    try:
        return enum(value).value
    except ValueError:
        allowed = ", ".join(member.value for member in enum)
        raise bad_request(f"The value '{value}' is not valid for '{prop}'. Allowed values: {allowed}.") from None


def unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def merge_labels(current: list[tuple[str, str]], sent: Sequence[str]) -> list[tuple[str, str]]:
    """Labels become exactly what was sent; a label that was AutoAssigned keeps that type."""
    auto = {name for name, kind in current if kind == "AutoAssigned"}
    return [(name, "AutoAssigned" if name in auto else "User") for name in unique(sent)]


def apply_classification(
    incident: StoredIncident,
    status: str,
    classification: str | None,
    reason: str | None,
    comment: str | None,
) -> None:
    parsed = None if classification is None else enum_value(Classification, classification, "classification")
    parsed_reason = None if reason is None else enum_value(ClassificationReason, reason, "classificationReason")
    if status == IncidentStatus.CLOSED and parsed is None:
        # Closing without classification fails (XSOAR, demisto PRs); the exact message is unverified.
        raise bad_request("Classification is required when closing an incident.")
    if parsed is not None:
        kind = Classification(parsed)
        why = None if parsed_reason is None else ClassificationReason(parsed_reason)
        if kind is not Classification.UNDETERMINED and why is None:
            raise bad_request(f"classification '{kind.value}' must have classificationReason.")
        if why not in _VALID_REASONS[kind]:
            # Message unverified; the valid pairs are the portal's.
            raise bad_request(
                f"classificationReason '{why.value if why else None}' is not valid for classification "
                f"'{kind.value}'."
            )
    incident.classification = parsed
    incident.classification_reason = parsed_reason
    incident.classification_comment = comment
