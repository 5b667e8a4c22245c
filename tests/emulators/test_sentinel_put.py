"""PUT incident semantics (reference §1.6): optimistic concurrency on the body etag, required fields, closing
rules, owner resolution, replace-the-writable-set, read-only fields, labels, create with 201."""

from __future__ import annotations

import copy
import uuid
from typing import Any

import httpx
import pytest

from emulators_world import Arm
from fake_clock import FakeClock
from sentinel_signl4_emulators.app import EmulatorState
from sentinel_signl4_emulators.sentinel.model import SentinelError
from spec_validation import assert_valid


def writable(incident: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """What a careful client PUTs: GET's etag and every writable property, with ``changes`` applied."""
    properties = incident["properties"]
    keep = ("title", "description", "severity", "status", "classification", "classificationReason",
            "classificationComment", "owner", "labels", "firstActivityTimeUtc", "lastActivityTimeUtc")
    body = {"etag": incident["etag"], "properties": {k: copy.deepcopy(properties[k]) for k in keep if k in properties}}
    body["properties"].update(changes)
    return body


async def fetch(arm: Arm, name: str) -> dict[str, Any]:
    response = await arm.get(arm.incident_url(name))
    assert response.status_code == 200
    incident: dict[str, Any] = response.json()
    return incident


def new_incident_name(arm: Arm, state: EmulatorState) -> str:
    """The seeded New, unowned, unlabelled incident with the most recent number."""
    incidents = state.sentinel.list_incidents(arm.world.workspace)
    candidates = [i for i in incidents if i["properties"]["status"] == "New" and not i["properties"]["labels"]
                  and "objectId" not in i["properties"]["owner"]]
    name: str = candidates[-1]["name"]
    return name


def assert_bad_request(response: httpx.Response, fragment: str) -> None:
    assert response.status_code == 400, response.text
    assert_valid(response.json(), "CloudError")
    assert response.json()["error"]["code"] == "BadRequest"
    assert fragment in response.json()["error"]["message"]


async def test_update_with_current_etag_is_200_with_new_etag_and_later_last_modified(
    arm: Arm, state: EmulatorState, clock: FakeClock
) -> None:
    name = new_incident_name(arm, state)
    before = await fetch(arm, name)
    clock.advance(minutes=1)
    labels = [*before["properties"]["labels"], {"labelName": "SIGNL4", "labelType": "User"}]
    response = await arm.put(arm.incident_url(name), writable(before, labels=labels))
    assert response.status_code == 200
    after = response.json()
    assert_valid(after, "Incident")
    assert after["etag"] != before["etag"] and after["etag"].startswith('"')
    assert after["properties"]["lastModifiedTimeUtc"] > before["properties"]["lastModifiedTimeUtc"]
    assert after["properties"]["labels"] == [{"labelName": "SIGNL4", "labelType": "User"}]
    assert after == await fetch(arm, name)


async def test_stale_etag_after_an_analyst_edit_is_409_and_nothing_is_saved(arm: Arm, state: EmulatorState) -> None:
    name = new_incident_name(arm, state)
    seen = await fetch(arm, name)
    state.sentinel.update_incident_as_analyst(arm.world.workspace, name, owner=arm.world.users[0].user_principal_name)
    edited = await fetch(arm, name)
    response = await arm.put(arm.incident_url(name), writable(seen, severity="Low"))
    assert response.status_code == 409
    assert response.json() == {"error": {"code": "Conflict",
                                         "message": f"Newer version of resource '{name}' exists. Data was not saved"}}
    assert await fetch(arm, name) == edited


async def test_second_update_with_the_etag_from_before_the_first_conflicts(arm: Arm, state: EmulatorState) -> None:
    name = new_incident_name(arm, state)
    seen = await fetch(arm, name)
    assert (await arm.put(arm.incident_url(name), writable(seen, status="Active"))).status_code == 200
    assert (await arm.put(arm.incident_url(name), writable(seen, severity="Low"))).status_code == 409


async def test_missing_etag_means_last_writer_wins(arm: Arm, state: EmulatorState) -> None:
    name = new_incident_name(arm, state)
    seen = await fetch(arm, name)
    state.sentinel.update_incident_as_analyst(arm.world.workspace, name, severity="Low")
    body = writable(seen, severity="High")
    del body["etag"]
    response = await arm.put(arm.incident_url(name), body)
    assert response.status_code == 200 and response.json()["properties"]["severity"] == "High"


@pytest.mark.parametrize("missing", ["title", "severity", "status"])
async def test_required_properties_are_400(arm: Arm, state: EmulatorState, missing: str) -> None:
    name = new_incident_name(arm, state)
    body = writable(await fetch(arm, name))
    del body["properties"][missing]
    assert_bad_request(await arm.put(arm.incident_url(name), body), f"'{missing}' is required")


@pytest.mark.parametrize(("prop", "value"), [("severity", "Critical"), ("status", "Resolved"),
                                             ("classification", "Malicious")])
async def test_values_outside_the_enums_are_400(arm: Arm, state: EmulatorState, prop: str, value: str) -> None:
    name = new_incident_name(arm, state)
    body = writable(await fetch(arm, name), **{prop: value, "status": "Closed" if prop != "status" else value})
    if prop != "classification":
        body["properties"].update(classification="Undetermined")
    assert_bad_request(await arm.put(arm.incident_url(name), body), f"'{value}' is not valid")


async def test_closing_without_classification_is_400(arm: Arm, state: EmulatorState) -> None:
    name = new_incident_name(arm, state)
    response = await arm.put(arm.incident_url(name), writable(await fetch(arm, name), status="Closed"))
    assert_bad_request(response, "Classification is required")


@pytest.mark.parametrize("classification", ["TruePositive", "BenignPositive", "FalsePositive"])
async def test_determined_classification_without_reason_is_400(
    arm: Arm, state: EmulatorState, classification: str
) -> None:
    name = new_incident_name(arm, state)
    body = writable(await fetch(arm, name), status="Closed", classification=classification)
    assert_bad_request(await arm.put(arm.incident_url(name), body),
                       f"classification '{classification}' must have classificationReason.")


@pytest.mark.parametrize(
    ("classification", "reason", "valid"),
    [
        ("TruePositive", "SuspiciousActivity", True),
        ("BenignPositive", "SuspiciousButExpected", True),
        ("FalsePositive", "IncorrectAlertLogic", True),
        ("FalsePositive", "InaccurateData", True),
        ("Undetermined", None, True),
        ("TruePositive", "InaccurateData", False),
        ("BenignPositive", "SuspiciousActivity", False),
        ("Undetermined", "SuspiciousActivity", False),
    ],
)
async def test_only_the_portal_classification_pairs_close_an_incident(
    arm: Arm, state: EmulatorState, classification: str, reason: str | None, valid: bool
) -> None:
    name = new_incident_name(arm, state)
    changes: dict[str, Any] = {"status": "Closed", "classification": classification,
                               "classificationComment": "Closed from SIGNL4"}
    if reason:
        changes["classificationReason"] = reason
    response = await arm.put(arm.incident_url(name), writable(await fetch(arm, name), **changes))
    if valid:
        assert response.status_code == 200, response.text
        properties = response.json()["properties"]
        assert (properties["status"], properties["classification"], properties.get("classificationReason")) == (
            "Closed", classification, reason)
    else:
        assert_bad_request(response, "is not valid for classification")


@pytest.mark.parametrize("key", ["objectId", "userPrincipalName", "email"])
async def test_owner_given_by_any_identifier_is_resolved_from_the_directory(
    arm: Arm, state: EmulatorState, key: str
) -> None:
    name = new_incident_name(arm, state)
    user = arm.world.users[1]
    ref = {"objectId": user.object_id, "userPrincipalName": user.user_principal_name.upper(), "email": user.mail}[key]
    response = await arm.put(arm.incident_url(name), writable(await fetch(arm, name), owner={key: ref}))
    assert response.status_code == 200, response.text
    assert response.json()["properties"]["owner"] == {
        "objectId": user.object_id, "userPrincipalName": user.user_principal_name, "email": user.mail,
        "assignedTo": user.display_name, "ownerType": "User",
    }


async def test_unknown_owner_is_400(arm: Arm, state: EmulatorState) -> None:
    name = new_incident_name(arm, state)
    response = await arm.put(arm.incident_url(name), writable(await fetch(arm, name),
                                                              owner={"objectId": str(uuid.uuid4())}))
    assert_bad_request(response, "was not found in the directory")


async def test_put_replaces_the_writable_set_so_omitting_owner_and_description_clears_them(
    arm: Arm, state: EmulatorState
) -> None:
    name = new_incident_name(arm, state)
    state.sentinel.update_incident_as_analyst(arm.world.workspace, name, owner=arm.world.users[0].object_id,
                                              labels=["VIP"])
    incident = await fetch(arm, name)
    assert incident["properties"]["owner"]["objectId"] == arm.world.users[0].object_id
    careless = {"etag": incident["etag"], "properties": {
        "title": incident["properties"]["title"], "severity": "High", "status": "Active"}}
    after = (await arm.put(arm.incident_url(name), careless)).json()["properties"]
    assert after["owner"] == {"ownerType": "Unknown"}
    assert after["labels"] == [] and "description" not in after


async def test_empty_owner_unassigns(arm: Arm, state: EmulatorState) -> None:
    name = new_incident_name(arm, state)
    state.sentinel.update_incident_as_analyst(arm.world.workspace, name, owner=arm.world.users[0].object_id)
    response = await arm.put(arm.incident_url(name), writable(await fetch(arm, name), owner={}))
    assert response.json()["properties"]["owner"] == {"ownerType": "Unknown"}


async def test_read_only_properties_sent_by_the_client_are_ignored(arm: Arm, state: EmulatorState) -> None:
    name = new_incident_name(arm, state)
    before = await fetch(arm, name)
    body = writable(before)
    body["properties"].update(
        incidentNumber=1, createdTimeUtc="2000-01-01T00:00:00Z", providerName="Me", incidentUrl="https://x",
        additionalData={"alertsCount": 99, "commentsCount": 99}, relatedAnalyticRuleIds=[],
    )
    body["id"], body["name"] = "/forged", "forged"
    after = (await arm.put(arm.incident_url(name), body)).json()
    for key in ("incidentNumber", "createdTimeUtc", "providerName", "incidentUrl", "additionalData",
                "relatedAnalyticRuleIds", "providerIncidentId"):
        assert after["properties"][key] == before["properties"][key], key
    assert (after["id"], after["name"]) == (before["id"], before["name"])


async def test_labels_are_replaced_as_sent_and_auto_assigned_ones_keep_their_type(
    arm: Arm, state: EmulatorState
) -> None:
    incident = state.sentinel.create_incident(arm.world.workspace, title="Labelled", severity="Medium",
                                              labels=["Triage"], auto_labels=["ML-Fusion"])
    labels = [*incident["properties"]["labels"], {"labelName": "SIGNL4", "labelType": "User"}]
    # A client may also drop labelType or send AutoAssigned for a new label: the server decides.
    labels[1] = {"labelName": "ML-Fusion"}
    response = await arm.put(arm.incident_url(incident["name"]), writable(incident, labels=labels))
    assert response.json()["properties"]["labels"] == [
        {"labelName": "Triage", "labelType": "User"},
        {"labelName": "ML-Fusion", "labelType": "AutoAssigned"},
        {"labelName": "SIGNL4", "labelType": "User"},
    ]
    dropped = writable(response.json(), labels=[{"labelName": "SIGNL4"}])
    assert (await arm.put(arm.incident_url(incident["name"]), dropped)).json()["properties"]["labels"] == [
        {"labelName": "SIGNL4", "labelType": "User"}]


async def test_put_to_a_new_name_creates_with_201_and_the_next_incident_number(arm: Arm, state: EmulatorState) -> None:
    numbers = [i["properties"]["incidentNumber"] for i in state.sentinel.list_incidents(arm.world.workspace)]
    name = str(uuid.uuid4())
    body = {"properties": {"title": "Created by API", "severity": "Low", "status": "New",
                           "owner": {"userPrincipalName": arm.world.users[2].user_principal_name}}}
    response = await arm.put(arm.incident_url(name), body)
    assert response.status_code == 201
    created = response.json()
    assert_valid(created, "Incident")
    assert created["name"] == name
    assert created["properties"]["incidentNumber"] == max(numbers) + 1
    assert created["properties"]["createdTimeUtc"] == created["properties"]["lastModifiedTimeUtc"]
    assert created["properties"]["providerName"] == "Azure Sentinel"
    again = await arm.put(arm.incident_url(name), writable(created, title="Renamed"))
    assert again.status_code == 200 and again.json()["properties"]["incidentNumber"] == created["properties"][
        "incidentNumber"]


@pytest.mark.parametrize(
    "body",
    [
        {"properties": "x"},
        {"etag": 5, "properties": {"title": "t", "severity": "High", "status": "New"}},
        {"properties": {"title": 5, "severity": "High", "status": "New"}},
        {"properties": {"title": "t", "severity": "High", "status": "New", "labels": [{"labelType": "User"}]}},
        {"properties": {"title": "t", "severity": "High", "status": "New", "owner": "someone"}},
        {"properties": {"title": "t", "severity": "High", "status": "New", "firstActivityTimeUtc": "yesterday"}},
    ],
)
async def test_malformed_bodies_are_400(arm: Arm, state: EmulatorState, body: dict[str, Any]) -> None:
    response = await arm.put(arm.incident_url(new_incident_name(arm, state)), body)
    assert response.status_code == 400
    assert_valid(response.json(), "CloudError")


async def test_body_that_is_not_json_is_400_invalid_request_content(arm: Arm, state: EmulatorState) -> None:
    response = await arm.http.put(arm.incident_url(new_incident_name(arm, state)), params={"api-version": "2025-09-01"},
                                  content=b"{not json", headers=arm.auth)
    assert response.status_code == 400 and response.json()["error"]["code"] == "InvalidRequestContent"


def test_analyst_close_follows_the_same_rules(state: EmulatorState, world: Any) -> None:
    name = world.incident_names[-1]
    with pytest.raises(SentinelError, match="must have classificationReason"):
        state.sentinel.close_incident_as_analyst(world.workspace, name, classification="TruePositive")
    closed = state.sentinel.close_incident_as_analyst(
        world.workspace, name, classification="FalsePositive", classification_reason="InaccurateData")
    assert closed["properties"]["status"] == "Closed"
