"""The demo seed's Graph side: the demo app may use Graph, and the incidents include a merge."""

from __future__ import annotations

import httpx

from graph_world import GRAPH, LOGIN, GraphCaller
from sentinel_signl4_emulators.app import EmulatorState
from sentinel_signl4_emulators.seed import DemoWorld


async def demo_token(http: httpx.AsyncClient, tenant: str, client_id: str, secret: str) -> str:
    response = await http.post(f"{LOGIN}/{tenant}/oauth2/v2.0/token", data={
        "client_id": client_id, "client_secret": secret, "grant_type": "client_credentials",
        "scope": f"{GRAPH}/.default"})
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


async def test_the_demo_app_reads_defender_incidents_and_the_merge_is_visible(
    state: EmulatorState, world: DemoWorld, http: httpx.AsyncClient
) -> None:
    graph = GraphCaller(http, await demo_token(http, world.tenant_id, world.client_id, world.client_secret))
    listed = (await graph.get("security/incidents", **{"$expand": "alerts"})).json()["value"]
    statuses = [i["status"] for i in listed]
    assert sorted(set(statuses)) == ["active", "awaitingAction", "inProgress", "redirected", "resolved"]
    (merged,) = [i for i in listed if i["status"] == "redirected"]
    survivor = next(i for i in listed if i["id"] == merged["redirectIncidentId"])
    assert merged["alerts"] == [] and len(survivor["alerts"]) == 2
    new = (await graph.get("security/incidents", **{"$filter": "status eq 'active'"})).json()["value"]
    assert len(new) == 3
    owner = (await graph.get(f"users/{world.users[0].user_principal_name}")).json()
    assert owner["id"] == world.users[0].object_id

    reader = GraphCaller(http, await demo_token(http, world.tenant_id, world.reader_client_id,
                                                world.reader_client_secret))
    assert (await reader.get("security/incidents")).status_code == 200
    assert (await reader.patch(f"security/incidents/{survivor['id']}", {"status": "inProgress"})).status_code == 403
