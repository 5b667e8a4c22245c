"""The Graph ⇄ Sentinel vocabulary: statuses, severities, classification ⇄ classification + determination."""

from __future__ import annotations

import json
from typing import Any

import pytest

from sentinel_signl4.domain import Classification, ClassificationReason, IncidentStatus, Severity
from sentinel_signl4.domain.graph_vocab import (
    DETERMINATIONS_BY_CLASSIFICATION,
    GraphAlertStatus,
    GraphClassification,
    GraphDetermination,
    GraphIncidentStatus,
    GraphSeverity,
    GraphVerdict,
    alert_statuses_for,
    classification_from_graph,
    graph_severities_for,
    incident_statuses_for,
    normalize_determination,
    service_source_display_name,
    severity_from_graph,
    status_from_graph_alert,
    status_from_graph_incident,
    verdict_for,
)
from spec_validation import SPECS_DIR

ENUMS: dict[str, Any] = json.loads((SPECS_DIR / "graph" / "security-enums.json").read_text())

TC, TR = Classification, ClassificationReason
GC, GD = GraphClassification, GraphDetermination

#: The documented table (module doc of graph_vocab), row by row.
TABLE = [
    (TC.UNDETERMINED, None, GC.UNKNOWN, GD.UNKNOWN),
    (TC.TRUE_POSITIVE, TR.SUSPICIOUS_ACTIVITY, GC.TRUE_POSITIVE, GD.OTHER),
    (TC.BENIGN_POSITIVE, TR.SUSPICIOUS_BUT_EXPECTED, GC.INFORMATIONAL_EXPECTED_ACTIVITY, GD.CONFIRMED_ACTIVITY),
    (TC.FALSE_POSITIVE, TR.INCORRECT_ALERT_LOGIC, GC.FALSE_POSITIVE, GD.NOT_MALICIOUS),
    (TC.FALSE_POSITIVE, TR.INACCURATE_DATA, GC.FALSE_POSITIVE, GD.OTHER),
]


@pytest.mark.parametrize(("enum", "name"), [
    (GraphIncidentStatus, "incidentStatus"), (GraphAlertStatus, "alertStatus"), (GraphSeverity, "alertSeverity"),
    (GraphClassification, "alertClassification"), (GraphDetermination, "alertDetermination"),
])
def test_wire_values_are_exactly_the_specs(enum: type[Any], name: str) -> None:
    assert [member.value for member in enum] == ENUMS[name]["values"]


@pytest.mark.parametrize(("classification", "reason", "graph_classification", "determination"), TABLE)
def test_sentinel_verdicts_map_to_graph_and_back(classification: Classification,
                                                 reason: ClassificationReason | None,
                                                 graph_classification: GraphClassification,
                                                 determination: GraphDetermination) -> None:
    verdict = verdict_for(classification, reason)
    assert verdict == GraphVerdict(graph_classification, determination)
    assert verdict.determination in DETERMINATIONS_BY_CLASSIFICATION[verdict.classification]
    assert verdict.to_json() == {"classification": graph_classification.value, "determination": determination.value}
    back = classification_from_graph(verdict.classification.value, verdict.determination.value, resolved=True)
    assert back == (classification, reason)


def test_reason_may_be_omitted_where_sentinel_has_only_one() -> None:
    assert verdict_for(TC.TRUE_POSITIVE, None) == verdict_for(TC.TRUE_POSITIVE, TR.SUSPICIOUS_ACTIVITY)
    assert verdict_for(TC.BENIGN_POSITIVE, None) == verdict_for(TC.BENIGN_POSITIVE, TR.SUSPICIOUS_BUT_EXPECTED)
    with pytest.raises(ValueError, match="FalsePositive"):
        verdict_for(TC.FALSE_POSITIVE, None)
    with pytest.raises(ValueError, match="TruePositive"):
        verdict_for(TC.TRUE_POSITIVE, TR.INACCURATE_DATA)


def test_a_determination_may_be_chosen_within_its_classification() -> None:
    assert verdict_for(TC.TRUE_POSITIVE, None, determination=GD.PHISHING) == GraphVerdict(GC.TRUE_POSITIVE,
                                                                                         GD.PHISHING)
    assert verdict_for(TC.BENIGN_POSITIVE, None, determination=GD.SECURITY_TESTING).determination is (
        GD.SECURITY_TESTING)
    with pytest.raises(ValueError, match="does not belong"):
        verdict_for(TC.FALSE_POSITIVE, TR.INACCURATE_DATA, determination=GD.MALWARE)


def test_graph_verdicts_that_sentinel_cannot_say_map_to_the_nearest() -> None:
    assert classification_from_graph("truePositive", "malware", resolved=True) == (TC.TRUE_POSITIVE,
                                                                                    TR.SUSPICIOUS_ACTIVITY)
    assert classification_from_graph("falsePositive", "notEnoughDataToValidate", resolved=True) == (
        TC.FALSE_POSITIVE, TR.INACCURATE_DATA)
    assert classification_from_graph("falsePositive", "clean", resolved=True) == (  # the older name
        TC.FALSE_POSITIVE, TR.INCORRECT_ALERT_LOGIC)
    assert classification_from_graph("unknown", "unknown", resolved=False) == (None, None)
    assert classification_from_graph(None, None, resolved=True) == (TC.UNDETERMINED, None)
    assert classification_from_graph("unknownFutureValue", "unknown", resolved=True) == (None, None)


def test_older_determination_names_are_understood() -> None:
    assert normalize_determination("compromisedUser") is GD.COMPROMISED_ACCOUNT
    assert normalize_determination("insufficientData") is GD.NOT_ENOUGH_DATA_TO_VALIDATE
    assert normalize_determination("confirmedUserActivity") is GD.CONFIRMED_ACTIVITY
    assert normalize_determination("MultiStagedAttack") is GD.MULTI_STAGED_ATTACK  # the docs' PascalCase example
    assert normalize_determination("nonsense") is None and normalize_determination(None) is None


def test_statuses_map_both_ways() -> None:
    assert incident_statuses_for([IncidentStatus.NEW]) == (GraphIncidentStatus.ACTIVE,)
    assert incident_statuses_for([IncidentStatus.CLOSED, IncidentStatus.ACTIVE]) == (
        GraphIncidentStatus.IN_PROGRESS, GraphIncidentStatus.AWAITING_ACTION, GraphIncidentStatus.RESOLVED)
    assert alert_statuses_for(IncidentStatus) == (GraphAlertStatus.NEW, GraphAlertStatus.IN_PROGRESS,
                                                  GraphAlertStatus.RESOLVED)
    assert [status_from_graph_incident(s) for s in ("active", "inProgress", "awaitingAction", "resolved")] == [
        IncidentStatus.NEW, IncidentStatus.ACTIVE, IncidentStatus.ACTIVE, IncidentStatus.CLOSED]
    assert [status_from_graph_alert(s) for s in ("new", "inProgress", "resolved")] == [
        IncidentStatus.NEW, IncidentStatus.ACTIVE, IncidentStatus.CLOSED]


@pytest.mark.parametrize("value", ["redirected", "unknownFutureValue", "somethingNew", None, 3])
def test_merged_and_unknown_incident_statuses_read_as_active(value: object) -> None:
    # Active neither raises a Signl (New) nor resolves one (Closed).
    assert status_from_graph_incident(value) is IncidentStatus.ACTIVE
    assert status_from_graph_alert(value) is IncidentStatus.ACTIVE


def test_severities_map_both_ways_and_unknown_reads_high() -> None:
    assert graph_severities_for(Severity) == (GraphSeverity.HIGH, GraphSeverity.MEDIUM, GraphSeverity.LOW,
                                              GraphSeverity.INFORMATIONAL)
    for severity in Severity:
        assert severity_from_graph(graph_severities_for([severity])[0].value) is severity
    assert severity_from_graph("High") is Severity.HIGH
    for odd in ("unknown", "unknownFutureValue", "critical", None):
        assert severity_from_graph(odd) is Severity.HIGH


def test_every_named_service_source_has_a_product_name() -> None:
    named = [v for v in ENUMS["serviceSource"]["values"] if v not in ("unknown", "unknownFutureValue")]
    assert all(service_source_display_name(v) for v in named)
    assert service_source_display_name("unknown") is None and service_source_display_name(None) is None
