"""The Graph security enums the emulator speaks, as Graph defines them (not as the connector maps them).

Values, in spec order, are those of ``tests/specs/graph/security-enums.json`` (taken from the generated
``msgraph-sdk-python`` models, ``msgraph/generated/models/security/*.py``); members after ``unknownFutureValue``
are evolvable. ``tests/unit/test_emulator_vocabulary.py`` holds these lists against that file.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Final

__all__ = [
    "GraphAlertStatus",
    "GraphClassification",
    "GraphDetermination",
    "GraphIncidentStatus",
    "GraphSeverity",
    "service_source_display_name",
]


class GraphIncidentStatus(StrEnum):
    """``microsoft.graph.security.incidentStatus`` (``awaitingAction`` is evolvable)."""

    ACTIVE = "active"
    RESOLVED = "resolved"
    IN_PROGRESS = "inProgress"
    REDIRECTED = "redirected"
    UNKNOWN_FUTURE_VALUE = "unknownFutureValue"
    AWAITING_ACTION = "awaitingAction"


class GraphAlertStatus(StrEnum):
    """``microsoft.graph.security.alertStatus``."""

    UNKNOWN = "unknown"
    NEW = "new"
    IN_PROGRESS = "inProgress"
    RESOLVED = "resolved"
    UNKNOWN_FUTURE_VALUE = "unknownFutureValue"


class GraphSeverity(StrEnum):
    """``microsoft.graph.security.alertSeverity`` (incidents use it too)."""

    UNKNOWN = "unknown"
    INFORMATIONAL = "informational"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    UNKNOWN_FUTURE_VALUE = "unknownFutureValue"


class GraphClassification(StrEnum):
    """``microsoft.graph.security.alertClassification``."""

    UNKNOWN = "unknown"
    FALSE_POSITIVE = "falsePositive"
    TRUE_POSITIVE = "truePositive"
    INFORMATIONAL_EXPECTED_ACTIVITY = "informationalExpectedActivity"
    UNKNOWN_FUTURE_VALUE = "unknownFutureValue"


class GraphDetermination(StrEnum):
    """``microsoft.graph.security.alertDetermination``, current SDK names."""

    UNKNOWN = "unknown"
    APT = "apt"
    MALWARE = "malware"
    SECURITY_PERSONNEL = "securityPersonnel"
    SECURITY_TESTING = "securityTesting"
    UNWANTED_SOFTWARE = "unwantedSoftware"
    OTHER = "other"
    MULTI_STAGED_ATTACK = "multiStagedAttack"
    COMPROMISED_ACCOUNT = "compromisedAccount"
    PHISHING = "phishing"
    MALICIOUS_USER_ACTIVITY = "maliciousUserActivity"
    NOT_MALICIOUS = "notMalicious"
    NOT_ENOUGH_DATA_TO_VALIDATE = "notEnoughDataToValidate"
    CONFIRMED_ACTIVITY = "confirmedActivity"
    LINE_OF_BUSINESS_APPLICATION = "lineOfBusinessApplication"
    UNKNOWN_FUTURE_VALUE = "unknownFutureValue"


#: ``productName`` of an alert by its ``serviceSource``: the product names Microsoft's docs give each service.
_SERVICE_SOURCE_NAMES: Final[Mapping[str, str]] = {
    "microsoftDefenderForEndpoint": "Microsoft Defender for Endpoint",
    "microsoftDefenderForIdentity": "Microsoft Defender for Identity",
    "microsoftDefenderForCloudApps": "Microsoft Defender for Cloud Apps",
    "microsoftDefenderForOffice365": "Microsoft Defender for Office 365",
    "microsoft365Defender": "Microsoft Defender XDR",
    "azureAdIdentityProtection": "Microsoft Entra ID Protection",
    "microsoftAppGovernance": "App governance",
    "dataLossPrevention": "Microsoft Purview Data Loss Prevention",
    "microsoftDefenderForCloud": "Microsoft Defender for Cloud",
    "microsoftSentinel": "Microsoft Sentinel",
    "microsoftInsiderRiskManagement": "Microsoft Purview Insider Risk Management",
    "microsoftThreatIntelligence": "Microsoft Defender Threat Intelligence",
}


def service_source_display_name(value: object) -> str | None:
    """The product name a ``serviceSource`` value stands for (``None`` for unknown/absent values)."""
    if not isinstance(value, str):
        return None
    return _SERVICE_SOURCE_NAMES.get(value)
