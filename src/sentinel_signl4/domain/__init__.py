"""Pure domain core: no I/O, no clock."""

from sentinel_signl4.domain.enums import (
    ActionKind,
    ActionState,
    Classification,
    ClassificationReason,
    IncidentStatus,
    Severity,
    SignlStatus,
    SkipReason,
)
from sentinel_signl4.domain.filtering import IncidentFilter, skip_reason
from sentinel_signl4.domain.incident import Incident, Owner
from sentinel_signl4.domain.signl import SOURCE_SYSTEM, SignlRequest, external_id_for, external_id_prefix

__all__ = [
    "SOURCE_SYSTEM",
    "ActionKind",
    "ActionState",
    "Classification",
    "ClassificationReason",
    "Incident",
    "IncidentFilter",
    "IncidentStatus",
    "Owner",
    "Severity",
    "SignlRequest",
    "SignlStatus",
    "SkipReason",
    "external_id_for",
    "external_id_prefix",
    "skip_reason",
]
