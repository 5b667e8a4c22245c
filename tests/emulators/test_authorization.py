"""The emulated Microsoft.Authorization provider: custom roles and assignments with ARM's rules and errors, and the
Sentinel and Log Analytics emulators enforcing what a custom role grants."""

from __future__ import annotations

from typing import Any

import httpx

from emulators_world import ARM, Arm, get_token
from sentinel_signl4_emulators.app import EmulatorState
from sentinel_signl4_emulators.seed import DemoWorld

AUTHZ = "providers/Microsoft.Authorization"
V = {"api-version": "2022-04-01"}


def role_body(name: str, actions: list[str], scope: str) -> dict[str, Any]:
    return {"properties": {"roleName": name, "type": "CustomRole", "permissions": [{"actions": actions}],
                           "assignableScopes": [scope]}}


class Operator:
    def __init__(self, http: httpx.AsyncClient, world: DemoWorld, token: str) -> None:
        self.http, self.world, self.token = http, world, token
        self.sub = f"/subscriptions/{world.subscription_id}"
        self.group = f"{self.sub}/resourceGroups/{world.resource_group}"

    async def put(self, path: str, body: dict[str, Any]) -> httpx.Response:
        return await self.http.put(f"{ARM}{path}", params=V, json=body,
                                   headers={"Authorization": f"Bearer {self.token}"})

    async def get(self, path: str, **params: str) -> httpx.Response:
        return await self.http.get(f"{ARM}{path}", params={**V, **params},
                                   headers={"Authorization": f"Bearer {self.token}"})


async def operator(state: EmulatorState, http: httpx.AsyncClient, world: DemoWorld, *, owner: bool = True) -> Operator:
    app = state.entra.register_app(world.tenant_id, display_name="operator", secret="operator-secret-1")
    if owner:
        state.authorization.grant_owner(app.object_id, f"/subscriptions/{world.subscription_id}")
    return Operator(http, world, await get_token(http, world, client_id=app.client_id, secret="operator-secret-1"))


async def test_custom_role_create_list_by_name_and_same_name_conflict(state: EmulatorState, http: httpx.AsyncClient,
                                                                      world: DemoWorld) -> None:
    op = await operator(state, http, world)
    body = role_body("soc reader", ["Microsoft.SecurityInsights/incidents/read"], op.group)
    created = await op.put(f"{op.sub}/{AUTHZ}/roleDefinitions/11111111-0000-0000-0000-000000000001", body)
    assert created.status_code == 201, created.text
    assert created.json()["properties"]["type"] == "CustomRole"
    listed = await op.get(f"{op.sub}/{AUTHZ}/roleDefinitions", **{"$filter": "roleName eq 'soc reader'"})
    assert [r["name"] for r in listed.json()["value"]] == ["11111111-0000-0000-0000-000000000001"]
    clash = await op.put(f"{op.sub}/{AUTHZ}/roleDefinitions/11111111-0000-0000-0000-000000000002", body)
    assert (clash.status_code, clash.json()["error"]["code"]) == (409, "RoleDefinitionWithSameNameExists")
    resource = await op.put(f"{op.sub}/{AUTHZ}/roleDefinitions/11111111-0000-0000-0000-000000000003",
                            role_body("x", ["a/b/read"], world.workspace.resource_id))
    assert resource.json()["error"]["code"] == "InvalidAssignableScope"


async def test_only_an_owner_may_write_roles(state: EmulatorState, http: httpx.AsyncClient, world: DemoWorld) -> None:
    op = await operator(state, http, world, owner=False)
    denied = await op.put(f"{op.sub}/{AUTHZ}/roleDefinitions/11111111-0000-0000-0000-000000000001",
                          role_body("r", ["Microsoft.SecurityInsights/incidents/read"], op.group))
    assert denied.status_code == 403
    assert "'Microsoft.Authorization/roleDefinitions/write'" in denied.json()["error"]["message"]


async def test_a_custom_role_grants_its_actions_only_and_duplicates_are_409(
        state: EmulatorState, http: httpx.AsyncClient, world: DemoWorld) -> None:
    op = await operator(state, http, world)
    reader = state.entra.register_app(world.tenant_id, display_name="custom", secret="custom-secret-1")
    role_id = "11111111-0000-0000-0000-000000000001"
    await op.put(f"{op.sub}/{AUTHZ}/roleDefinitions/{role_id}",
                 role_body("incident reader", ["Microsoft.SecurityInsights/incidents/read"], op.group))
    assignment = {"properties": {"roleDefinitionId": f"{op.sub}/{AUTHZ}/roleDefinitions/{role_id}",
                                 "principalId": reader.object_id, "principalType": "ServicePrincipal"}}
    scope = world.workspace.resource_id
    created = await op.put(f"{scope}/{AUTHZ}/roleAssignments/22222222-0000-0000-0000-000000000001", assignment)
    assert created.status_code == 201, created.text
    again = await op.put(f"{scope}/{AUTHZ}/roleAssignments/22222222-0000-0000-0000-000000000002", assignment)
    assert (again.status_code, again.json()["error"]["code"]) == (409, "RoleAssignmentExists")
    nobody = dict(assignment, properties={**assignment["properties"], "principalId": "no-such-principal"})
    missing = await op.put(f"{scope}/{AUTHZ}/roleAssignments/22222222-0000-0000-0000-000000000003", nobody)
    assert (missing.status_code, missing.json()["error"]["code"]) == (400, "PrincipalNotFound")

    caller = Arm(http, world, await get_token(http, world, client_id=reader.client_id, secret="custom-secret-1"))
    assert (await caller.get(caller.incidents_url)).status_code == 200
    name = world.incident_names[0]
    incident = (await caller.get(caller.incident_url(name))).json()
    denied = await caller.put(caller.incident_url(name), {"etag": incident["etag"],
                                                          "properties": incident["properties"]})
    assert denied.status_code == 403
    assert "'Microsoft.SecurityInsights/incidents/write'" in denied.json()["error"]["message"]


async def test_log_analytics_reads_only_the_tables_a_custom_role_grants(
        state: EmulatorState, http: httpx.AsyncClient, world: DemoWorld) -> None:
    op = await operator(state, http, world)
    app = state.entra.register_app(world.tenant_id, display_name="la", secret="la-secret-1")
    role_id = "11111111-0000-0000-0000-000000000009"
    await op.put(f"{op.sub}/{AUTHZ}/roleDefinitions/{role_id}", role_body("alerts only", [
        "Microsoft.OperationalInsights/workspaces/read", "Microsoft.OperationalInsights/workspaces/query/read",
        "Microsoft.OperationalInsights/workspaces/query/SecurityAlert/read"], op.group))
    await op.put(f"{world.workspace.resource_id}/{AUTHZ}/roleAssignments/22222222-0000-0000-0000-000000000009", {
        "properties": {"roleDefinitionId": f"{op.sub}/{AUTHZ}/roleDefinitions/{role_id}",
                       "principalId": app.object_id}})
    token = await get_token(http, world, client_id=app.client_id, secret="la-secret-1",
                            scope="https://api.loganalytics.io/.default")

    async def query(kql: str) -> httpx.Response:
        return await http.post(f"https://api.loganalytics.io/v1/workspaces/{world.workspace_id}/query",
                               json={"query": kql, "timespan": "P7D"}, headers={"Authorization": f"Bearer {token}"})

    assert (await query("SecurityAlert | take 1")).status_code == 200
    refused = await query("SecurityIncident | take 1")
    assert refused.status_code == 400 and "SecurityIncident" in refused.text
