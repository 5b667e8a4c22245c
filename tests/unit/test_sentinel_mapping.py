"""Pure Sentinel mapping: OData filters, ARM → Incident, and PUT bodies that never drop a field."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from sentinel_signl4.clients.sentinel_mapping import (
    READ_ONLY_PROPERTIES,
    build_incident_filter,
    build_modified_filter,
    format_odata_datetime,
    incident_from_arm,
    with_label,
    writable_properties,
)
from sentinel_signl4.domain import (
    Classification,
    ClassificationReason,
    IncidentFilter,
    IncidentStatus,
    Severity,
)
from spec_validation import SPECS_DIR, assert_valid

NOW = datetime(2026, 11, 26, 10, 0, 0, 123456, tzinfo=UTC)
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


# -- filters -------------------------------------------------------------------------------------------------


def test_default_filter_is_new_in_the_last_24_hours_without_a_severity_clause() -> None:
    assert build_incident_filter(IncidentFilter(), NOW) == (
        "properties/createdTimeUtc ge 2026-11-25T10:00:00Z and properties/status eq 'New'"
    )


def test_selected_severities_and_statuses_are_or_groups_in_a_stable_order() -> None:
    flt = IncidentFilter(statuses=frozenset({IncidentStatus.ACTIVE, IncidentStatus.NEW}),
                         severities=frozenset({Severity.MEDIUM, Severity.HIGH}), max_age=timedelta(hours=2))
    assert build_incident_filter(flt, NOW) == (
        "properties/createdTimeUtc ge 2026-11-26T08:00:00Z"
        " and (properties/status eq 'New' or properties/status eq 'Active')"
        " and (properties/severity eq 'High' or properties/severity eq 'Medium')"
    )


def test_all_statuses_selected_omits_the_status_clause() -> None:
    flt = IncidentFilter(statuses=frozenset(IncidentStatus), severities=frozenset({Severity.LOW}))
    assert build_incident_filter(flt, NOW) == (
        "properties/createdTimeUtc ge 2026-11-25T10:00:00Z and properties/severity eq 'Low'"
    )


def test_times_are_utc_whole_seconds_rounded_down_so_the_window_only_widens() -> None:
    paris = timezone(timedelta(hours=1))
    assert format_odata_datetime(datetime(2026, 1, 1, 1, 0, 0, 999999, tzinfo=paris)) == "2026-01-01T00:00:00Z"


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        build_incident_filter(IncidentFilter(), datetime(2026, 1, 1))


@pytest.mark.parametrize("flt", [IncidentFilter(statuses=frozenset()), IncidentFilter(severities=frozenset())])
def test_a_filter_that_selects_nothing_is_an_error_not_an_empty_poll(flt: IncidentFilter) -> None:
    with pytest.raises(ValueError, match="selects no"):
        build_incident_filter(flt, NOW)


def test_modified_filter_with_and_without_statuses() -> None:
    assert build_modified_filter(NOW) == "properties/lastModifiedTimeUtc ge 2026-11-26T10:00:00Z"
    assert build_modified_filter(NOW, [IncidentStatus.CLOSED]) == (
        "properties/lastModifiedTimeUtc ge 2026-11-26T10:00:00Z and properties/status eq 'Closed'"
    )


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
