"""Graph emulator: Defender incident merges (``redirected`` + ``redirectIncidentId``) and ``/_control/graph``."""

from __future__ import annotations

import httpx
import pytest

from fake_clock import FakeClock
from graph_world import (
    GRAPH,
    NOBODY_ID,
    TENANT,
    GraphCaller,
    alert,
    assert_graph_error,
    assert_graph_valid,
    graph_token,
    seed_graph_world,
)
from sentinel_signl4_emulators.app import EmulatorState
from sentinel_signl4_emulators.graph.model import GraphError

CONTROL = f"{GRAPH}/_control/graph"


def two_incidents(state: EmulatorState, clock: FakeClock) -> tuple[str, str]:
    source = state.graph.create_incident(TENANT, display_name="Suspicious sign-in", alerts=[
        alert("Impossible travel", severity="high", service_source="azureAdIdentityProtection")])
    clock.advance(minutes=5)
    target = state.graph.create_incident(TENANT, display_name="Multi-stage attack", alerts=[
        alert("Hidden file", severity="medium")])
    return str(source["id"]), str(target["id"])


async def test_a_merged_incident_is_redirected_and_its_alerts_move_to_the_survivor(
    state: EmulatorState, clock: FakeClock, graph: GraphCaller
) -> None:
    source_id, target_id = two_incidents(state, clock)
    clock.advance(minutes=1)
    state.graph.merge_incidents(TENANT, source_id, target_id)

    source = (await graph.get(f"security/incidents/{source_id}", **{"$expand": "alerts"})).json()
    assert_graph_valid(source, "microsoft.graph.security.incident")
    assert (source["status"], source["redirectIncidentId"], source["alerts"]) == ("redirected", target_id, [])
    target = (await graph.get(f"security/incidents/{target_id}", **{"$expand": "alerts"})).json()
    assert [a["title"] for a in target["alerts"]] == ["Hidden file", "Impossible travel"]
    assert {a["incidentId"] for a in target["alerts"]} == {target_id}
    assert target["severity"] == "high"  # the survivor takes the higher severity
    assert target["lastUpdateDateTime"] > target["createdDateTime"]

    active = (await graph.get("security/incidents", **{"$filter": "status eq 'active'"})).json()["value"]
    assert [i["id"] for i in active] == [target_id]
    redirected = (await graph.get("security/incidents", **{"$filter": "status eq 'redirected'"})).json()["value"]
    assert [i["id"] for i in redirected] == [source_id]


async def test_a_merged_incidents_tags_move_to_the_survivor(
    state: EmulatorState, clock: FakeClock, graph: GraphCaller
) -> None:
    source_id, target_id = two_incidents(state, clock)
    state.graph.update_incident(TENANT, source_id, {"customTags": ["SIGNL4", "VIP"]}, actor="a@contoso.com",
                                include_unknown=True)
    state.graph.update_incident(TENANT, target_id, {"customTags": ["vip"]}, actor="a@contoso.com",
                                include_unknown=True)
    state.graph.merge_incidents(TENANT, source_id, target_id)
    source = (await graph.get(f"security/incidents/{source_id}")).json()
    target = (await graph.get(f"security/incidents/{target_id}")).json()
    assert (source["customTags"], target["customTags"]) == ([], ["vip", "SIGNL4"])


async def test_writes_to_a_merged_incident_are_refused(state: EmulatorState, clock: FakeClock,
                                                       graph: GraphCaller) -> None:
    source_id, target_id = two_incidents(state, clock)
    state.graph.merge_incidents(TENANT, source_id, target_id)
    error = assert_graph_error(await graph.patch(f"security/incidents/{source_id}", {"customTags": ["SIGNL4"]}),
                               400, "BadRequest")
    assert target_id in error["message"]


def test_merges_that_make_no_sense_are_refused(state: EmulatorState, clock: FakeClock) -> None:
    seed_graph_world(state)
    source_id, target_id = two_incidents(state, clock)
    with pytest.raises(GraphError, match="itself"):
        state.graph.merge_incidents(TENANT, source_id, source_id)
    state.graph.merge_incidents(TENANT, source_id, target_id)
    with pytest.raises(GraphError, match="already redirected"):
        state.graph.merge_incidents(TENANT, target_id, source_id)
    with pytest.raises(GraphError, match="not found"):
        state.graph.merge_incidents(TENANT, "77", target_id)


async def test_control_plane_seeds_grants_merges_and_scripts_analysts(
    state: EmulatorState, http: httpx.AsyncClient, graph: GraphCaller
) -> None:
    response = await http.post(f"{CONTROL}/incidents", json={"tenantId": TENANT,
        "displayName": "Ransomware on FILESRV01", "createdDateTime": "2026-11-26T09:00:00Z",
        "alerts": [{"title": "Shadow copies deleted", "severity": "high", "category": "Impact",
                    "mitreTechniques": ["T1490"], "serviceSource": "microsoftDefenderForEndpoint"}],
    })
    assert response.status_code == 201, response.text
    first = response.json()
    assert (first["severity"], first["alerts"][0]["mitreTechniques"]) == ("high", ["T1490"])
    second = (await http.post(f"{CONTROL}/alerts", json={"tenantId": TENANT, "title": "Lateral movement",
                                                           "severity": "low"})).json()
    assert second["incidentId"] != first["id"]  # no incidentId: Defender opens a new incident for it

    merged = await http.post(f"{CONTROL}/merge", json={"tenantId": TENANT, "sourceId": second["incidentId"],
                                                       "targetId": first["id"]})
    assert merged.status_code == 200, merged.text
    assert len(merged.json()["alerts"]) == 2

    edit = await http.post(f"{CONTROL}/incidents/{first['id']}/analyst-edit", json={"tenantId": TENANT,
        "analyst": "AdeleV@contoso.com", "assignedTo": "AdeleV@contoso.com", "customTags": ["Escalated"]})
    assert edit.status_code == 200, edit.text
    assert edit.json()["lastModifiedBy"] == "AdeleV@contoso.com"
    comment = await http.post(f"{CONTROL}/incidents/{first['id']}/comments",
                              json={"tenantId": TENANT, "analyst": "AdeleV@contoso.com", "comment": "On it"})
    assert comment.status_code == 201

    bad = await http.post(f"{CONTROL}/incidents/{first['id']}/analyst-edit",
                          json={"tenantId": TENANT, "analyst": "a", "status": "sleeping"})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "BadRequest"

    grant = await http.post(f"{CONTROL}/permissions", json={"tenantId": TENANT, "clientId": NOBODY_ID,
                                                             "permissions": ["SecurityIncident.Read.All"]})
    assert grant.json()["permissions"] == ["SecurityIncident.Read.All"]
    nobody = GraphCaller(http, await graph_token(http, client_id=NOBODY_ID))
    assert (await nobody.get("security/incidents")).status_code == 200
    await http.post(f"{CONTROL}/permissions/revoke", json={"tenantId": TENANT, "clientId": NOBODY_ID})
    assert (await nobody.get("security/incidents")).status_code == 403
    assert (await http.post(f"{CONTROL}/permissions", json={"tenantId": TENANT, "clientId": NOBODY_ID,
                                                             "permissions": ["Mail.Send"]})).status_code == 400

    user = await http.post(f"{CONTROL}/users", json={"tenantId": TENANT, "userPrincipalName": "new.hire@contoso.com",
                                                     "displayName": "New Hire"})
    assert (await graph.get(f"users/{user.json()['id']}")).json()["displayName"] == "New Hire"

    snapshot = (await http.get(f"{CONTROL}/state")).json()
    incidents = snapshot["tenants"][TENANT]["incidents"]
    assert {i["status"] for i in incidents} == {"active", "redirected"}
    by_id = {i["id"]: i for i in incidents}
    assert [c["comment"] for c in by_id[first["id"]]["comments"]] == ["On it"]
    assert snapshot["throttle"] == {"limit": 150, "windowSeconds": 60.0}
    throttle = await http.put(f"{CONTROL}/throttle", json={"limit": 2, "windowSeconds": 10})
    assert throttle.json() == {"limit": 2, "windowSeconds": 10.0}

    assert (await http.post(f"{CONTROL}/reset")).status_code == 204
    assert (await http.get(f"{CONTROL}/state")).json()["tenants"][TENANT]["incidents"] == []


async def test_control_plane_needs_a_tenant_when_the_directory_has_several(
    state: EmulatorState, http: httpx.AsyncClient
) -> None:
    seed_graph_world(state)  # two tenants
    response = await http.post(f"{CONTROL}/incidents", json={"displayName": "x"})
    assert response.status_code == 400 and "tenantId" in response.json()["error"]
    ok = await http.post(f"{CONTROL}/incidents", json={"displayName": "x", "tenantId": TENANT})
    assert ok.status_code == 201
