"""Sentinel's wire module: ARM → Incident, and PUT bodies that never drop a field."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from sentinel_signl4.domain import (
    Classification,
    ClassificationReason,
    IncidentStatus,
    Severity,
)
from sentinel_signl4.domain.incident_change import OwnerRef, acknowledge_change, close_change
from sentinel_signl4.domain.sync import ClassificationChoice
from sentinel_signl4.sources.sentinel_wire import (
    READ_ONLY_PROPERTIES,
    assignee,
    changed_properties,
    incident_from_arm,
    put_body,
    with_label,
    writable_properties,
)
from spec_validation import SPECS_DIR, assert_valid

EXAMPLE = (SPECS_DIR / "azure-rest-api-specs/specification/securityinsights/resource-manager/"
           "Microsoft.SecurityInsights/stable/2024-09-01/examples/incidents/GetIncidentById.json")


@pytest.fixture
def arm_incident() -> dict[str, Any]:
    """The official GET example, plus labels of both types and a field this code does not know."""
    body: dict[str, Any] = json.loads(EXAMPLE.read_text())["responses"]["200"]["body"]
    body["properties"]["labels"] = [{"labelName": "Phishing", "labelType": "AutoAssigned"},
                                    {"labelName": "vip", "labelType": "User"}]
    body["properties"]["futureWritableField"] = {"kept": True}
    return body


# -- ARM → Incident ------------------------------------------------------------------------------------------


def test_official_example_maps_every_field(arm_incident: dict[str, Any]) -> None:
    incident = incident_from_arm(arm_incident)
    assert incident.name == "73e01a99-5cd7-4139-a149-9f2736ff2ab5"
    assert incident.resource_id == arm_incident["id"]
    assert incident.number == 3177
    assert incident.etag == '"0300bf09-0000-0000-0000-5c37296e0000"'
    assert (incident.severity, incident.status) == (Severity.HIGH, IncidentStatus.CLOSED)
    assert incident.classification is Classification.FALSE_POSITIVE
    assert incident.classification_reason is ClassificationReason.INACCURATE_DATA
    assert incident.created == datetime(2019, 1, 1, 13, 15, 30, tzinfo=UTC)
    assert incident.owner.object_id == "2046feea-040d-4a46-9e2b-91c2941bfa70"
    assert incident.owner.upn == "john@contoso.com"
    assert incident.labels == ("Phishing", "vip")
    assert incident.tactics == ("InitialAccess", "Persistence")
    assert incident.provider_name == "Azure Sentinel"
    assert incident.raw == arm_incident


def test_sparse_resources_are_tolerated() -> None:
    incident = incident_from_arm({"id": "/x/incidents/abc", "properties": {"createdTimeUtc": "2026-01-01T00:00:00Z"}})
    assert incident.name == "abc"
    assert incident.title == ""
    assert incident.last_modified == incident.created
    assert incident.owner.is_set is False
    assert incident.labels == ()


def test_seven_fraction_digits_parse() -> None:
    incident = incident_from_arm({"id": "/i/x", "name": "x",
                                  "properties": {"createdTimeUtc": "2020-07-20T18:21:53.6158361Z"}})
    assert incident.created.microsecond == 615836


def test_unknown_severity_pages_rather_than_hides_and_unknown_status_triggers_nothing() -> None:
    resource = {"id": "/i/x", "name": "x", "properties": {
        "createdTimeUtc": "2026-01-01T00:00:00Z", "severity": "Critical", "status": "Resolved",
        "classification": "Mystery"}}
    incident = incident_from_arm(resource)
    assert incident.severity is Severity.HIGH
    assert incident.status is IncidentStatus.ACTIVE
    assert incident.classification is None
    assert incident.raw["properties"]["severity"] == "Critical"  # kept for the PUT
    assert writable_properties(incident)["severity"] == "Critical"


def test_enum_case_is_forgiven() -> None:
    incident = incident_from_arm({"id": "/i/x", "name": "x", "properties": {
        "createdTimeUtc": "2026-01-01T00:00:00Z", "severity": "medium", "status": "new"}})
    assert (incident.severity, incident.status) == (Severity.MEDIUM, IncidentStatus.NEW)


@pytest.mark.parametrize("resource", [{"properties": {"createdTimeUtc": "2026-01-01T00:00:00Z"}},
                                      {"id": "/i/x", "name": "x", "properties": {}}])
def test_unidentifiable_resources_are_rejected(resource: dict[str, Any]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011
        incident_from_arm(resource)


# -- PUT bodies ----------------------------------------------------------------------------------------------


def test_writable_properties_keep_every_writable_field_and_drop_read_only_ones(arm_incident: dict[str, Any]) -> None:
    props = writable_properties(incident_from_arm(arm_incident))
    original = arm_incident["properties"]
    assert set(props) == set(original) - READ_ONLY_PROPERTIES
    for key in ("owner", "labels", "classification", "classificationReason", "classificationComment",
                "description", "firstActivityTimeUtc", "lastActivityTimeUtc", "futureWritableField"):
        assert props[key] == original[key]
    assert {"labelName": "Phishing", "labelType": "AutoAssigned"} in props["labels"]


def test_writable_properties_are_a_deep_copy(arm_incident: dict[str, Any]) -> None:
    incident = incident_from_arm(arm_incident)
    props = writable_properties(incident)
    props["owner"]["objectId"] = "someone-else"
    props["labels"].append({"labelName": "x"})
    assert incident.raw["properties"]["owner"]["objectId"] == "2046feea-040d-4a46-9e2b-91c2941bfa70"
    assert len(incident.raw["properties"]["labels"]) == 2


def test_with_label_appends_a_user_label_and_keeps_the_others(arm_incident: dict[str, Any]) -> None:
    props = writable_properties(incident_from_arm(arm_incident))
    before = copy.deepcopy(props)
    tagged = with_label(props, "SIGNL4")
    assert tagged is not None
    assert tagged["labels"] == [*before["labels"], {"labelName": "SIGNL4", "labelType": "User"}]
    assert props == before  # the input is not mutated
    assert {k: v for k, v in tagged.items() if k != "labels"} == {k: v for k, v in before.items() if k != "labels"}


def test_with_label_is_none_when_present_in_any_case(arm_incident: dict[str, Any]) -> None:
    assert with_label(writable_properties(incident_from_arm(arm_incident)), "PHISHING") is None


def test_the_put_body_matches_the_incident_schema(arm_incident: dict[str, Any]) -> None:
    incident = incident_from_arm(arm_incident)
    tagged = with_label(writable_properties(incident), "SIGNL4")
    assert_valid({"etag": incident.etag, "properties": tagged}, "Incident")


def test_sparse_incidents_still_produce_the_required_fields() -> None:
    incident = incident_from_arm({"id": "/i/x", "name": "x", "properties": {"createdTimeUtc": "2026-01-01T00:00:00Z"}})
    assert_valid({"properties": writable_properties(incident)}, "Incident")


# -- acknowledge and close as PUT bodies -----------------------------------------------------------------------


def resource(**props: Any) -> dict[str, Any]:
    return {"id": "/i/x", "name": "x", "etag": '"e1"',
            "properties": {"createdTimeUtc": "2026-01-01T00:00:00Z", **props}}


def test_acknowledge_moves_new_to_active_and_sets_owner_keeping_everything_else() -> None:
    incident = incident_from_arm(resource(title="t", severity="High", status="New", labels=[{"labelName": "SIGNL4"}],
                                          description="d", owner={}))
    new = changed_properties(incident, acknowledge_change(incident, assignee(OwnerRef(object_id="oid-1"))))
    assert new is not None
    assert new["status"] == "Active" and new["owner"] == {"objectId": "oid-1"}
    assert new["labels"] == [{"labelName": "SIGNL4"}] and new["description"] == "d"
    assert "createdTimeUtc" not in new  # read-only


def test_late_acknowledgement_never_reopens_a_closed_incident() -> None:
    incident = incident_from_arm(resource(title="t", severity="High", status="Closed", classification="FalsePositive",
                                          classificationReason="InaccurateData", owner={"objectId": "closer"}))
    assert changed_properties(incident, acknowledge_change(incident, assignee(OwnerRef(object_id="late")))) is None


def test_close_sets_classification_and_owner_only_when_unset() -> None:
    incident = incident_from_arm(resource(title="t", severity="High", status="Active", owner={"objectId": "analyst"}))
    choice = ClassificationChoice(Classification.TRUE_POSITIVE, ClassificationReason.SUSPICIOUS_ACTIVITY)
    new = changed_properties(incident, close_change(incident, choice, "c", assignee(OwnerRef(object_id="responder"))))
    assert new is not None
    assert new["status"] == "Closed" and new["classification"] == "TruePositive"
    assert new["classificationReason"] == "SuspiciousActivity" and new["classificationComment"] == "c"
    assert new["owner"] == {"objectId": "analyst"}


def test_close_without_a_reason_drops_the_old_reason_and_clips_the_comment() -> None:
    incident = incident_from_arm(resource(title="t", severity="High", status="Active",
                                          classificationReason="SuspiciousActivity"))
    choice = ClassificationChoice(Classification.UNDETERMINED, None)
    new = changed_properties(incident, close_change(incident, choice, "x" * 5000, None))
    assert new is not None
    assert "classificationReason" not in new and len(new["classificationComment"]) == 1000


def test_close_of_an_already_closed_incident_keeps_the_analysts_classification() -> None:
    incident = incident_from_arm(resource(title="t", severity="High", status="Closed", classification="BenignPositive"))
    choice = ClassificationChoice(Classification.UNDETERMINED, None)
    assert changed_properties(incident, close_change(incident, choice, "c", None, ("SIGNL4",))) is None


def test_sentinel_assigns_by_object_id_else_upn_never_by_email_alone() -> None:
    assert assignee(OwnerRef(object_id="o", upn="u@x", email="e@x")) == OwnerRef(object_id="o")
    assert assignee(OwnerRef(upn="u@x", email="e@x")) == OwnerRef(upn="u@x")
    assert assignee(OwnerRef(email="e@x")) is None
    assert assignee(None) is None
    incident = incident_from_arm(resource(status="New"))
    new = changed_properties(incident, acknowledge_change(incident, assignee(OwnerRef(upn="u@x"))))
    assert new is not None and new["owner"] == {"userPrincipalName": "u@x"}


def test_put_body_carries_the_etag_read_and_none_without_one() -> None:
    incident = incident_from_arm(resource(status="New"))
    assert put_body(incident, {"title": "t"}) == {"properties": {"title": "t"}, "etag": '"e1"'}
    unread = incident_from_arm({k: v for k, v in resource().items() if k != "etag"})
    assert put_body(unread, {"title": "t"}) == {"properties": {"title": "t"}}
