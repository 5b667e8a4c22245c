"""Graph emulator, ``/v1.0/security/incidents``: $filter, paging, $expand, PATCH, comments, response shapes."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from fake_clock import FakeClock
from graph_world import (
    TENANT,
    GraphCaller,
    alert,
    assert_graph_error,
    assert_graph_valid,
)
from sentinel_signl4_emulators.app import EmulatorState


def seed(state: EmulatorState, clock: FakeClock, title: str, **kwargs: Any) -> str:
    clock.advance(minutes=1)
    incident: dict[str, Any] = state.graph.create_incident(TENANT, display_name=title, **kwargs)
    return str(incident["id"])


async def listed_ids(graph: GraphCaller, **params: str) -> list[str]:
    response = await graph.get("security/incidents", **params)
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["value"]]


async def test_filter_combines_status_severity_and_times_with_and_or_and_parentheses(
    state: EmulatorState, clock: FakeClock, graph: GraphCaller
) -> None:
    old_high = seed(state, clock, "old", severity="high", created=clock.now - timedelta(days=3))
    new_high = seed(state, clock, "new high", severity="high")
    new_low = seed(state, clock, "new low", severity="low")
    progress_medium = seed(state, clock, "in progress", severity="medium", status="inProgress")
    resolved_high = seed(state, clock, "resolved", severity="high", status="resolved")
    since = "2026-11-25T10:00:00Z"

    ids = await listed_ids(graph, **{"$filter": f"createdDateTime ge {since} and (status eq 'active' or "
                                                "status eq 'inProgress') and (severity eq 'high' or severity eq "
                                                "'medium')"})
    assert set(ids) == {new_high, progress_medium}

    ids = await listed_ids(graph, **{"$filter": "status eq 'resolved' or severity eq 'low'"})
    assert set(ids) == {new_low, resolved_high}

    clock.advance(minutes=5)
    state.graph.update_incident(TENANT, old_high, {"assignedTo": "AdeleV@contoso.com"}, actor="analyst",
                                include_unknown=True)
    recently = f"{clock.now - timedelta(minutes=1):%Y-%m-%dT%H:%M:%SZ}"
    ids = await listed_ids(graph, **{"$filter": f"lastUpdateDateTime gt {recently}"})
    assert ids == [old_high]


@pytest.mark.parametrize(("flt", "fragment"), [
    ("displayName eq 'x'", "not supported"),
    ("status eq 'Active'", "Invalid value 'Active'"),
    ("severity eq 'critical'", "Invalid value 'critical'"),
    ("createdDateTime ge 'yesterday'", "not a valid datetime"),
    ("status eq 'active' and", "Syntax error"),
])
async def test_invalid_filters_are_refused_with_400(graph: GraphCaller, flt: str, fragment: str) -> None:
    error = assert_graph_error(await graph.get("security/incidents", **{"$filter": flt}), 400, "BadRequest")
    assert fragment in error["message"]


async def test_paging_follows_next_link_over_three_pages_newest_first(
    state: EmulatorState, clock: FakeClock, graph: GraphCaller
) -> None:
    created = [seed(state, clock, f"incident {n}") for n in range(7)]
    seen: list[str] = []
    response = await graph.get("security/incidents", **{"$top": "3", "$count": "true", "$filter": "status eq 'active'"})
    pages = 0
    while True:
        assert response.status_code == 200, response.text
        body = response.json()
        assert_graph_valid(body, "microsoft.graph.security.incidentCollectionResponse")
        assert body["@odata.count"] == 7
        seen += [item["id"] for item in body["value"]]
        pages += 1
        link = body.get("@odata.nextLink")
        if link is None:
            break
        assert link.startswith("https://graph.microsoft.com/v1.0/security/incidents?")
        assert "$filter=status%20eq%20'active'" in link and f"$skip={len(seen)}" in link
        response = await graph.http.get(link, headers=graph.headers())
    assert pages == 3
    assert seen == list(reversed(created))  # the most recent incidents come first (docs)


async def test_a_large_top_is_capped_and_the_rest_follows_by_next_link(
    state: EmulatorState, clock: FakeClock, graph: GraphCaller
) -> None:
    for n in range(53):
        seed(state, clock, f"incident {n}")
    body = (await graph.get("security/incidents", **{"$top": "500"})).json()
    assert len(body["value"]) == 50
    assert "$skip=50" in body["@odata.nextLink"]


async def test_expand_alerts_embeds_the_alerts_and_is_otherwise_absent(
    state: EmulatorState, clock: FakeClock, graph: GraphCaller
) -> None:
    incident_id = seed(state, clock, "Multi-stage", alerts=[
        alert("Hidden file executed", severity="low", category="DefenseEvasion", mitre_techniques=("T1564.001",)),
        alert("Credential dumping", severity="high", category="CredentialAccess"),
    ])
    plain = (await graph.get(f"security/incidents/{incident_id}")).json()
    assert "alerts" not in plain
    assert plain["severity"] == "high"  # the incident takes its highest alert's severity
    expanded = (await graph.get(f"security/incidents/{incident_id}", **{"$expand": "alerts"})).json()
    assert_graph_valid(expanded, "microsoft.graph.security.incident")
    assert [a["title"] for a in expanded["alerts"]] == ["Hidden file executed", "Credential dumping"]
    assert {a["incidentId"] for a in expanded["alerts"]} == {incident_id}
    assert expanded["alerts"][0]["productName"] == "Microsoft Defender for Endpoint"
    assert expanded["incidentWebUrl"] == f"https://security.microsoft.com/incidents/{incident_id}?tid={TENANT}"
    listed = (await graph.get("security/incidents", **{"$expand": "alerts"})).json()["value"]
    assert len(listed[0]["alerts"]) == 2
    assert_graph_error(await graph.get("security/incidents", **{"$expand": "comments"}), 400, "BadRequest")
    assert_graph_error(await graph.get("security/incidents", **{"$orderby": "createdDateTime"}), 400, "BadRequest")


async def test_unknown_incident_is_404_and_unknown_segment_400(graph: GraphCaller) -> None:
    assert_graph_error(await graph.get("security/incidents/999999"), 404, "NotFound")
    error = assert_graph_error(await graph.get("security/incidentz"), 400, "BadRequest")
    assert "security" in error["message"] or "incidentz" in error["message"]


async def test_patch_changes_only_what_is_sent_and_answers_the_updated_incident(
    state: EmulatorState, clock: FakeClock, graph: GraphCaller
) -> None:
    incident_id = seed(state, clock, "Phishing", severity="medium", custom_tags=["Finance"],
                       assigned_to="AdeleV@contoso.com")
    before = (await graph.get(f"security/incidents/{incident_id}")).json()
    clock.advance(minutes=2)
    response = await graph.patch(f"security/incidents/{incident_id}", {
        "status": "resolved", "classification": "truePositive", "determination": "phishing",
        "customTags": ["Finance", "SIGNL4"],
    })
    assert response.status_code == 200, response.text
    updated = response.json()
    assert_graph_valid(updated, "microsoft.graph.security.incident")
    assert (updated["status"], updated["classification"], updated["determination"]) == (
        "resolved", "truePositive", "phishing")
    assert updated["customTags"] == ["Finance", "SIGNL4"]
    assert updated["assignedTo"] == "AdeleV@contoso.com"  # not sent, not touched
    assert updated["severity"] == "medium"
    assert updated["lastUpdateDateTime"] > before["lastUpdateDateTime"]
    assert updated["lastModifiedBy"] == "sentinel-signl4"
    assert (await graph.get(f"security/incidents/{incident_id}")).json()["status"] == "resolved"

    unassigned = (await graph.patch(f"security/incidents/{incident_id}", {"assignedTo": None})).json()
    assert unassigned["assignedTo"] is None


@pytest.mark.parametrize("body", [
    {"status": "closed"},
    {"status": "resolved", "severity": "low"},  # severity is not writable: nothing at all is applied
    {"customTags": "SIGNL4"},
    {"assignedTo": 42},
    {"status": "redirected"},
    {},
])
async def test_invalid_patches_are_refused_and_change_nothing(
    state: EmulatorState, clock: FakeClock, graph: GraphCaller, body: dict[str, Any]
) -> None:
    incident_id = seed(state, clock, "Untouched", severity="high")
    before = state.graph.get_incident(TENANT, incident_id, expand_alerts=False, include_unknown=True)
    assert_graph_error(await graph.patch(f"security/incidents/{incident_id}", body), 400, "BadRequest")
    assert state.graph.get_incident(TENANT, incident_id, expand_alerts=False, include_unknown=True) == before


async def test_patch_with_a_body_that_is_not_json_is_400(state: EmulatorState, clock: FakeClock,
                                                         graph: GraphCaller) -> None:
    incident_id = seed(state, clock, "x")
    response = await graph.http.patch(f"https://graph.microsoft.com/v1.0/security/incidents/{incident_id}",
                                      content=b"{not json", headers=graph.headers())
    assert_graph_error(response, 400, "BadRequest")


async def test_comments_post_answers_the_full_list_and_shows_on_the_incident(
    state: EmulatorState, clock: FakeClock, graph: GraphCaller
) -> None:
    incident_id = seed(state, clock, "Ransomware")
    state.graph.add_incident_comment(TENANT, incident_id, "Isolating FILESRV01", author="AdeleV@contoso.com")
    body = {"@odata.type": "microsoft.graph.security.alertComment", "comment": "Acknowledged in SIGNL4 by Megan"}
    response = await graph.post(f"security/incidents/{incident_id}/comments", body)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert_graph_valid(answer, "microsoft.graph.security.alertCommentCollectionResponse")
    assert [(c["comment"], c["createdByDisplayName"]) for c in answer["value"]] == [
        ("Isolating FILESRV01", "AdeleV@contoso.com"), ("Acknowledged in SIGNL4 by Megan", "sentinel-signl4")]
    incident = (await graph.get(f"security/incidents/{incident_id}")).json()
    assert [c["comment"] for c in incident["comments"]] == [c["comment"] for c in answer["value"]]
    assert_graph_error(await graph.post(f"security/incidents/{incident_id}/comments", {"comment": " "}), 400,
                       "BadRequest")
    assert_graph_error(await graph.post("security/incidents/424242/comments", body), 404, "NotFound")

