"""The Microsoft Graph security vocabulary and how it maps onto ours (Sentinel's). Pure: no I/O.

Graph (``microsoft.graph.security``) names statuses, severities and verdicts differently from Sentinel, and splits
Sentinel's *classification + reason* into *classification + determination*. Wire values are exactly those of
shared/specs/graph/security-enums.json; values listed after ``unknownFutureValue`` are *evolvable* and are only
sent by Graph to clients that ask with ``Prefer: include-unknown-enum-members``.

Statuses
    ==================  ======================================  =====================
    ours (Sentinel)     Graph incident                          Graph alert (alerts_v2)
    ==================  ======================================  =====================
    New                 ``active``                              ``new``
    Active              ``inProgress``, ``awaitingAction``      ``inProgress``
    Closed              ``resolved``                            ``resolved``
    ==================  ======================================  =====================

    A ``redirected`` incident (merged into another one by Defender) and any unknown status read as **Active**:
    the one status that neither pages (New) nor resolves a Signl (Closed). Following a redirect is the caller's
    job (``redirectIncidentId``), not a status change.

Severities
    ``high/medium/low/informational`` ⇄ ``High/Medium/Low/Informational``. Graph's ``unknown`` and
    ``unknownFutureValue`` read as **High**, for the reason given in ``sources/sentinel_wire.py``: the server
    filter only returns them when every severity was asked for, and then paging for them is what the user wants.

Classification (ours → Graph; :func:`verdict_for`)
    ========================================  ======================================================
    Sentinel classification + reason          Graph classification + determination
    ========================================  ======================================================
    Undetermined                              ``unknown`` + ``unknown``
    TruePositive + SuspiciousActivity         ``truePositive`` + ``other``
    BenignPositive + SuspiciousButExpected    ``informationalExpectedActivity`` + ``confirmedActivity``
    FalsePositive + IncorrectAlertLogic       ``falsePositive`` + ``notMalicious``
    FalsePositive + InaccurateData            ``falsePositive`` + ``other``
    ========================================  ======================================================

    Sentinel's reasons say less than Graph's determinations (a true positive's "suspicious activity" does not say
    malware or phishing), so the mapping picks the determination that claims nothing false: ``other`` where no
    specific one follows. A caller that knows better passes ``determination`` explicitly; it must belong to the
    classification (:data:`DETERMINATIONS_BY_CLASSIFICATION`, the grouping the Defender portal offers).

Classification (Graph → ours; :func:`classification_from_graph`)
    ``truePositive`` → TruePositive + SuspiciousActivity; ``informationalExpectedActivity`` → BenignPositive +
    SuspiciousButExpected; ``falsePositive`` + ``notMalicious`` → FalsePositive + IncorrectAlertLogic;
    ``falsePositive`` + anything else → FalsePositive + InaccurateData; ``unknown`` → Undetermined when resolved,
    else no classification. The round trip of every row of the table above is exact.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from sentinel_signl4.domain.enums import Classification, ClassificationReason, IncidentStatus, Severity

__all__ = [
    "DETERMINATIONS_BY_CLASSIFICATION",
    "EVOLVABLE",
    "GraphAlertStatus",
    "GraphClassification",
    "GraphDetermination",
    "GraphIncidentStatus",
    "GraphSeverity",
    "GraphVerdict",
    "alert_statuses_for",
    "classification_from_graph",
    "graph_severities_for",
    "graph_severity",
    "incident_statuses_for",
    "normalize_determination",
    "service_source_display_name",
    "severity_from_graph",
    "status_from_graph_alert",
    "status_from_graph_incident",
    "verdict_for",
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
    """``microsoft.graph.security.alertDetermination``, current SDK names (older ones: normalize_determination)."""

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


#: Members after ``unknownFutureValue`` per enum (security-enums.json): only sent with the Prefer header.
EVOLVABLE: Final[Mapping[str, frozenset[str]]] = {
    "incidentStatus": frozenset({"awaitingAction"}),
    "serviceSource": frozenset({
        "microsoftDefenderForCloud", "microsoftSentinel", "microsoftInsiderRiskManagement",
        "microsoftThreatIntelligence",
    }),
    "detectionSource": frozenset({
        "microsoftDefenderForCloud", "nrtAlerts", "scheduledAlerts", "microsoftDefenderThreatIntelligenceAnalytics",
        "builtInMl", "microsoftSentinel",
    }),
}

#: Determinations the Defender portal offers per classification. The API's own enforcement is unverified; we
#: only ever send pairs from this table.
DETERMINATIONS_BY_CLASSIFICATION: Final[Mapping[GraphClassification, frozenset[GraphDetermination]]] = {
    GraphClassification.UNKNOWN: frozenset({GraphDetermination.UNKNOWN}),
    GraphClassification.TRUE_POSITIVE: frozenset({
        GraphDetermination.MULTI_STAGED_ATTACK, GraphDetermination.MALICIOUS_USER_ACTIVITY,
        GraphDetermination.COMPROMISED_ACCOUNT, GraphDetermination.MALWARE, GraphDetermination.PHISHING,
        GraphDetermination.UNWANTED_SOFTWARE, GraphDetermination.APT, GraphDetermination.OTHER,
    }),
    GraphClassification.INFORMATIONAL_EXPECTED_ACTIVITY: frozenset({
        GraphDetermination.SECURITY_TESTING, GraphDetermination.LINE_OF_BUSINESS_APPLICATION,
        GraphDetermination.CONFIRMED_ACTIVITY, GraphDetermination.SECURITY_PERSONNEL, GraphDetermination.OTHER,
    }),
    GraphClassification.FALSE_POSITIVE: frozenset({
        GraphDetermination.NOT_MALICIOUS, GraphDetermination.NOT_ENOUGH_DATA_TO_VALIDATE, GraphDetermination.OTHER,
    }),
}

# Older names the docs' prose still lists and older tenants may still send (specs/graph/README.md, caveats).
_DETERMINATION_ALIASES: Final[Mapping[str, GraphDetermination]] = {
    "compromiseduser": GraphDetermination.COMPROMISED_ACCOUNT,
    "clean": GraphDetermination.NOT_MALICIOUS,
    "insufficientdata": GraphDetermination.NOT_ENOUGH_DATA_TO_VALIDATE,
    "confirmeduseractivity": GraphDetermination.CONFIRMED_ACTIVITY,
}

_INCIDENT_STATUSES: Final[Mapping[IncidentStatus, tuple[GraphIncidentStatus, ...]]] = {
    IncidentStatus.NEW: (GraphIncidentStatus.ACTIVE,),
    IncidentStatus.ACTIVE: (GraphIncidentStatus.IN_PROGRESS, GraphIncidentStatus.AWAITING_ACTION),
    IncidentStatus.CLOSED: (GraphIncidentStatus.RESOLVED,),
}
_ALERT_STATUSES: Final[Mapping[IncidentStatus, GraphAlertStatus]] = {
    IncidentStatus.NEW: GraphAlertStatus.NEW,
    IncidentStatus.ACTIVE: GraphAlertStatus.IN_PROGRESS,
    IncidentStatus.CLOSED: GraphAlertStatus.RESOLVED,
}
_SEVERITIES: Final[Mapping[Severity, GraphSeverity]] = {
    Severity.HIGH: GraphSeverity.HIGH,
    Severity.MEDIUM: GraphSeverity.MEDIUM,
    Severity.LOW: GraphSeverity.LOW,
    Severity.INFORMATIONAL: GraphSeverity.INFORMATIONAL,
}
_STATUS_ORDER: Final = (IncidentStatus.NEW, IncidentStatus.ACTIVE, IncidentStatus.CLOSED)
_SEVERITY_ORDER: Final = (Severity.HIGH, Severity.MEDIUM, Severity.LOW, Severity.INFORMATIONAL)

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


@dataclass(frozen=True, slots=True)
class GraphVerdict:
    """A Graph ``classification`` + ``determination`` pair, as PATCHed when resolving."""

    classification: GraphClassification
    determination: GraphDetermination

    def to_json(self) -> dict[str, str]:
        return {"classification": self.classification.value, "determination": self.determination.value}


def incident_statuses_for(statuses: Iterable[IncidentStatus]) -> tuple[GraphIncidentStatus, ...]:
    """The Graph incident statuses that stand for ``statuses``, in a stable order (for ``$filter``)."""
    chosen = set(statuses)
    return tuple(g for s in _STATUS_ORDER if s in chosen for g in _INCIDENT_STATUSES[s])


def alert_statuses_for(statuses: Iterable[IncidentStatus]) -> tuple[GraphAlertStatus, ...]:
    """The alerts_v2 statuses that stand for ``statuses``, in a stable order (for ``$filter``)."""
    chosen = set(statuses)
    return tuple(_ALERT_STATUSES[s] for s in _STATUS_ORDER if s in chosen)


def graph_severity(severity: Severity) -> GraphSeverity:
    return _SEVERITIES[severity]


def graph_severities_for(severities: Iterable[Severity]) -> tuple[GraphSeverity, ...]:
    """The Graph severities of ``severities``, highest first (for ``$filter``)."""
    chosen = set(severities)
    return tuple(_SEVERITIES[s] for s in _SEVERITY_ORDER if s in chosen)


def severity_from_graph(value: object) -> Severity:
    """Our severity for a Graph one; ``unknown``, evolvable and unexpected values read as High (module doc)."""
    for ours, theirs in _SEVERITIES.items():
        if isinstance(value, str) and value.casefold() == theirs.value.casefold():
            return ours
    return Severity.HIGH


def status_from_graph_incident(value: object) -> IncidentStatus:
    """Our status for a Graph incident status; ``redirected`` and unknown values read as Active (module doc)."""
    text = value.casefold() if isinstance(value, str) else ""
    if text == GraphIncidentStatus.ACTIVE.casefold():
        return IncidentStatus.NEW
    if text == GraphIncidentStatus.RESOLVED.casefold():
        return IncidentStatus.CLOSED
    return IncidentStatus.ACTIVE


def status_from_graph_alert(value: object) -> IncidentStatus:
    """Our status for an alerts_v2 status; ``unknown`` and unexpected values read as Active."""
    text = value.casefold() if isinstance(value, str) else ""
    if text == GraphAlertStatus.NEW.casefold():
        return IncidentStatus.NEW
    if text == GraphAlertStatus.RESOLVED.casefold():
        return IncidentStatus.CLOSED
    return IncidentStatus.ACTIVE


def normalize_determination(value: object) -> GraphDetermination | None:
    """The determination named by ``value``, accepting the older names (``clean`` → ``notMalicious`` …)."""
    if not isinstance(value, str) or not value:
        return None
    for member in GraphDetermination:
        if member.value.casefold() == value.casefold():
            return member
    return _DETERMINATION_ALIASES.get(value.casefold())


_DEFAULT_VERDICTS: Final[Mapping[tuple[Classification, ClassificationReason | None], GraphVerdict]] = {
    (Classification.UNDETERMINED, None): GraphVerdict(GraphClassification.UNKNOWN, GraphDetermination.UNKNOWN),
    (Classification.TRUE_POSITIVE, ClassificationReason.SUSPICIOUS_ACTIVITY): GraphVerdict(
        GraphClassification.TRUE_POSITIVE, GraphDetermination.OTHER),
    (Classification.BENIGN_POSITIVE, ClassificationReason.SUSPICIOUS_BUT_EXPECTED): GraphVerdict(
        GraphClassification.INFORMATIONAL_EXPECTED_ACTIVITY, GraphDetermination.CONFIRMED_ACTIVITY),
    (Classification.FALSE_POSITIVE, ClassificationReason.INCORRECT_ALERT_LOGIC): GraphVerdict(
        GraphClassification.FALSE_POSITIVE, GraphDetermination.NOT_MALICIOUS),
    (Classification.FALSE_POSITIVE, ClassificationReason.INACCURATE_DATA): GraphVerdict(
        GraphClassification.FALSE_POSITIVE, GraphDetermination.OTHER),
}


def verdict_for(
    classification: Classification,
    reason: ClassificationReason | None,
    *,
    determination: GraphDetermination | None = None,
) -> GraphVerdict:
    """The Graph verdict for a Sentinel classification and reason (table in the module doc).

    ``reason`` may be omitted for TruePositive and BenignPositive (each has only one); FalsePositive needs one.
    ``determination`` overrides the default and must belong to the classification. Raises :class:`ValueError`
    for a pair Sentinel itself would reject (the config validates pairs at load, so this is a programming error).
    """
    if reason is None and classification in (Classification.TRUE_POSITIVE, Classification.BENIGN_POSITIVE):
        reason = (ClassificationReason.SUSPICIOUS_ACTIVITY if classification is Classification.TRUE_POSITIVE
                  else ClassificationReason.SUSPICIOUS_BUT_EXPECTED)
    verdict = _DEFAULT_VERDICTS.get((classification, reason))
    if verdict is None:
        raise ValueError(f"no Graph verdict for classification {classification.value} with reason "
                         f"{reason.value if reason else None}")
    if determination is None:
        return verdict
    if determination not in DETERMINATIONS_BY_CLASSIFICATION[verdict.classification]:
        raise ValueError(f"determination {determination.value} does not belong to classification "
                         f"{verdict.classification.value}")
    return GraphVerdict(verdict.classification, determination)


def classification_from_graph(
    classification: object, determination: object, *, resolved: bool
) -> tuple[Classification | None, ClassificationReason | None]:
    """Our classification and reason for a Graph verdict (module doc); ``(None, None)`` when there is none."""
    text = classification.casefold() if isinstance(classification, str) else ""
    if text == GraphClassification.TRUE_POSITIVE.casefold():
        return Classification.TRUE_POSITIVE, ClassificationReason.SUSPICIOUS_ACTIVITY
    if text == GraphClassification.INFORMATIONAL_EXPECTED_ACTIVITY.casefold():
        return Classification.BENIGN_POSITIVE, ClassificationReason.SUSPICIOUS_BUT_EXPECTED
    if text == GraphClassification.FALSE_POSITIVE.casefold():
        if normalize_determination(determination) is GraphDetermination.NOT_MALICIOUS:
            return Classification.FALSE_POSITIVE, ClassificationReason.INCORRECT_ALERT_LOGIC
        return Classification.FALSE_POSITIVE, ClassificationReason.INACCURATE_DATA
    if resolved and text in ("", GraphClassification.UNKNOWN.casefold()):
        return Classification.UNDETERMINED, None
    return None, None


def service_source_display_name(value: object) -> str | None:
    """The product name a ``serviceSource`` value stands for (``None`` for unknown/absent values)."""
    if not isinstance(value, str):
        return None
    return _SERVICE_SOURCE_NAMES.get(value)
