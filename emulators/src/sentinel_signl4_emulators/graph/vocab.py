"""The Graph security enums the emulator speaks, as Graph defines them (not as the connector maps them).

Values, in spec order, are those of ``tests/specs/graph/security-enums.json`` (taken from the generated
``msgraph-sdk-python`` models, ``msgraph/generated/models/security/*.py``); members after ``unknownFutureValue``
are evolvable. ``tests/unit/test_emulator_vocabulary.py`` holds these lists against that file.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

__all__ = ["ALERT_RESOLVED", "ENUM_VALUES", "INCIDENT_REDIRECTED", "service_source_display_name"]

#: Every enum the emulator validates and renders, by its name in security-enums.json, values in spec order.
ENUM_VALUES: Final[Mapping[str, tuple[str, ...]]] = {
    "incidentStatus": ("active", "resolved", "inProgress", "redirected", "unknownFutureValue", "awaitingAction"),
    "alertStatus": ("unknown", "new", "inProgress", "resolved", "unknownFutureValue"),
    "alertSeverity": ("unknown", "informational", "low", "medium", "high", "unknownFutureValue"),
    "alertClassification": (
        "unknown", "falsePositive", "truePositive", "informationalExpectedActivity", "unknownFutureValue",
    ),
    "alertDetermination": (
        "unknown", "apt", "malware", "securityPersonnel", "securityTesting", "unwantedSoftware", "other",
        "multiStagedAttack", "compromisedAccount", "phishing", "maliciousUserActivity", "notMalicious",
        "notEnoughDataToValidate", "confirmedActivity", "lineOfBusinessApplication", "unknownFutureValue",
    ),
    "serviceSource": (
        "unknown", "microsoftDefenderForEndpoint", "microsoftDefenderForIdentity", "microsoftDefenderForCloudApps",
        "microsoftDefenderForOffice365", "microsoft365Defender", "azureAdIdentityProtection", "microsoftAppGovernance",
        "dataLossPrevention", "unknownFutureValue", "microsoftDefenderForCloud", "microsoftSentinel",
        "microsoftInsiderRiskManagement", "microsoftThreatIntelligence",
    ),
    "detectionSource": (
        "unknown", "microsoftDefenderForEndpoint", "antivirus", "smartScreen", "customTi",
        "microsoftDefenderForOffice365", "automatedInvestigation", "microsoftThreatExperts", "customDetection",
        "microsoftDefenderForIdentity", "cloudAppSecurity", "microsoft365Defender", "azureAdIdentityProtection",
        "manual", "microsoftDataLossPrevention", "appGovernancePolicy", "appGovernanceDetection",
        "unknownFutureValue", "microsoftDefenderForCloud", "nrtAlerts", "scheduledAlerts",
        "microsoftDefenderThreatIntelligenceAnalytics", "builtInMl", "microsoftSentinel",
    ),
}

#: The values the emulator's own behaviour turns on.
INCIDENT_REDIRECTED: Final = "redirected"  # merged into another incident by Defender
ALERT_RESOLVED: Final = "resolved"


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
