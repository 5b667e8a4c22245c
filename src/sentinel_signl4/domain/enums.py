"""Vocabulary of the domain. Wire strings are converted to these at the edge (clients)."""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "ActionKind",
    "ActionState",
    "Classification",
    "ClassificationReason",
    "IncidentStatus",
    "Severity",
    "SignlStatus",
    "SkipReason",
]


class Severity(StrEnum):
    """Sentinel incident severity (`properties.severity`)."""

    HIGH = "High"
    MEDIUM = "Medium"
    LOW = "Low"
    INFORMATIONAL = "Informational"


class IncidentStatus(StrEnum):
    """Sentinel incident status (`properties.status`)."""

    NEW = "New"
    ACTIVE = "Active"
    CLOSED = "Closed"


class Classification(StrEnum):
    UNDETERMINED = "Undetermined"
    TRUE_POSITIVE = "TruePositive"
    BENIGN_POSITIVE = "BenignPositive"
    FALSE_POSITIVE = "FalsePositive"


class ClassificationReason(StrEnum):
    SUSPICIOUS_ACTIVITY = "SuspiciousActivity"
    SUSPICIOUS_BUT_EXPECTED = "SuspiciousButExpected"
    INCORRECT_ALERT_LOGIC = "IncorrectAlertLogic"
    INACCURATE_DATA = "InaccurateData"


class SignlStatus(StrEnum):
    """Value of the `X-S4-Status` control parameter."""

    NEW = "new"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class SkipReason(StrEnum):
    """Why an incident seen by a poll is not forwarded."""

    STATUS = "status"
    SEVERITY = "severity"
    AGE = "age"
    ALREADY_TAGGED = "already_tagged"
    ALREADY_LINKED = "already_linked"
    MERGED = "merged"  # Defender merged it into another incident: that one carries the attack now


class ActionKind(StrEnum):
    """Side effects the outbox knows how to perform."""

    RAISE_SIGNL = "raise_signl"
    TAG_INCIDENT = "tag_incident"
    RESOLVE_SIGNL = "resolve_signl"
    UPDATE_INCIDENT = "update_incident"
    ADD_COMMENT = "add_comment"
    ANNOTATE_SIGNL = "annotate_signl"


class ActionState(StrEnum):
    """Life of an outbox row.

    ``PENDING`` rows are due at ``next_attempt_at``. ``IN_FLIGHT`` means an attempt was started and its outcome is
    not yet recorded: after a crash or a timeout, such a row is *in doubt* and must be reconciled before it is
    attempted again. ``DONE`` is written only after the remote side confirmed. ``DEAD`` rows gave up, with a reason.
    ``DISCARDED`` rows were given up on by an operator (``sentinel-signl4 outbox discard``): final like ``DONE`` and
    ``DEAD``, but no longer a dead letter waiting for someone to act.
    """

    PENDING = "pending"
    IN_FLIGHT = "in_flight"
    DONE = "done"
    DEAD = "dead"
    DISCARDED = "discarded"
