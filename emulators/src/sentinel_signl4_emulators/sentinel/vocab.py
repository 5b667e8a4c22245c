"""Microsoft Sentinel's incident enums, as the ARM contract defines them.

Values, in spec order, are those of ``IncidentSeverityEnum``, ``IncidentStatusEnum``, ``IncidentClassificationEnum``
and ``IncidentClassificationReasonEnum`` in ``tests/specs/azure-rest-api-specs/.../stable/2024-09-01/common/
IncidentTypes.json`` (Azure/azure-rest-api-specs; the 2025-09-01 ``Incidents.json`` inlines the same lists).
``tests/unit/test_emulator_vocabulary.py`` holds these lists against those files.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["Classification", "ClassificationReason", "IncidentStatus", "Severity"]


class Severity(StrEnum):
    """``IncidentSeverityEnum``."""

    HIGH = "High"
    MEDIUM = "Medium"
    LOW = "Low"
    INFORMATIONAL = "Informational"


class IncidentStatus(StrEnum):
    """``IncidentStatusEnum``."""

    NEW = "New"
    ACTIVE = "Active"
    CLOSED = "Closed"


class Classification(StrEnum):
    """``IncidentClassificationEnum``."""

    UNDETERMINED = "Undetermined"
    TRUE_POSITIVE = "TruePositive"
    BENIGN_POSITIVE = "BenignPositive"
    FALSE_POSITIVE = "FalsePositive"


class ClassificationReason(StrEnum):
    """``IncidentClassificationReasonEnum``."""

    SUSPICIOUS_ACTIVITY = "SuspiciousActivity"
    SUSPICIOUS_BUT_EXPECTED = "SuspiciousButExpected"
    INCORRECT_ALERT_LOGIC = "IncorrectAlertLogic"
    INACCURATE_DATA = "InaccurateData"
