"""Control plane routes, the demo seed, the one-origin routing and the local CA."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from cryptography import x509

from emulators_world import ARM, ARM_SCOPE, LOGIN, Arm
from fake_clock import FakeClock
from sentinel_signl4_emulators.app import EmulatorState, EmulatorTransport, ServiceMount, build_app
from sentinel_signl4_emulators.common.ca import ensure_certificates
from sentinel_signl4_emulators.seed import DemoWorld
from spec_validation import assert_valid


async def test_workspace_route_sets_up_tenant_app_role_and_users_usable_over_the_api(
    http: httpx.AsyncClient,
) -> None:
    response = await http.post("/_control/sentinel/workspaces", json={
        "resourceGroup": "rg-soc", "workspaceName": "ws-soc",
        "apps": [{"clientSecret": "pa55", "role": "reader"}],
        "users": [{"userPrincipalName": "ann@contoso.com", "displayName": "Ann", "mail": "ann@contoso.com"}],
    })
    assert response.status_code == 201, response.text
    setup = response.json()
    app = setup["apps"][0]
    token = (await http.post(f"{LOGIN}/{setup['tenantId']}/oauth2/v2.0/token", data={
        "client_id": app["clientId"], "client_secret": "pa55", "grant_type": "client_credentials",
        "scope": ARM_SCOPE})).json()["access_token"]
    seeded = await http.post("/_control/sentinel/incidents", json={
        "workspace": "ws-soc", "title": "Seeded", "severity": "High", "owner": "ann@contoso.com",
        "labels": ["VIP"], "alerts": [{"displayName": "Seeded alert", "severity": "High", "tactics": ["Execution"]}],
        "entities": [{"kind": "Ip", "properties": {"address": "10.0.0.1"}}]})
    assert seeded.status_code == 201, seeded.text
    listing = await http.get(f"{ARM}{setup['resourceId']}/providers/Microsoft.SecurityInsights/incidents",
                             params={"api-version": "2025-09-01"}, headers={"Authorization": f"Bearer {token}"})
    assert listing.status_code == 200
    [incident] = listing.json()["value"]
    assert_valid(incident, "Incident")
    assert incident["properties"]["owner"]["assignedTo"] == "Ann"
    assert incident["properties"]["additionalData"]["tactics"] == ["Execution"]
    via_control = (await http.get("/_control/sentinel/incidents", params={"workspace": setup["resourceId"]})).json()
    assert via_control["value"] == [incident]


async def test_analyst_edit_changes_what_is_given_and_makes_the_clients_etag_stale(arm: Arm) -> None:
    name = arm.world.incident_names[-1]
    seen = (await arm.get(arm.incident_url(name))).json()
    user = arm.world.users[3]
    edited = await arm.http.post(f"/_control/sentinel/incidents/{name}/analyst-edit", json={
        "owner": user.user_principal_name, "addLabels": ["Escalated"], "status": "Active"})
    assert edited.status_code == 200, edited.text
    properties = edited.json()["properties"]
    assert properties["owner"]["objectId"] == user.object_id and properties["status"] == "Active"
    assert [label["labelName"] for label in properties["labels"]][-1] == "Escalated"
    assert properties["title"] == seen["properties"]["title"]  # untouched
    stale = await arm.put(arm.incident_url(name), {"etag": seen["etag"], "properties": {
        "title": "x", "severity": "Low", "status": "New"}})
    assert stale.status_code == 409
    unassigned = await arm.http.post(f"/_control/sentinel/incidents/{name}/analyst-edit", json={"owner": None})
    assert unassigned.json()["properties"]["owner"] == {"ownerType": "Unknown"}
    invalid = await arm.http.post(f"/_control/sentinel/incidents/{name}/analyst-edit", json={"status": "Closed"})
    assert invalid.status_code == 400 and invalid.json()["error"]["code"] == "BadRequest"


async def test_analyst_comment_is_authored_by_the_user(arm: Arm) -> None:
    name = arm.world.incident_names[0]
    user = arm.world.users[0]
    response = await arm.http.post(f"/_control/sentinel/incidents/{name}/comments", json={
        "message": "Looking into it", "analyst": user.mail})
    assert response.status_code == 201
    assert response.json()["properties"]["author"] == {
        "objectId": user.object_id, "name": user.display_name, "email": user.mail,
        "userPrincipalName": user.user_principal_name}


async def test_control_errors_are_400_or_404(http: httpx.AsyncClient, world: DemoWorld) -> None:
    assert (await http.post("/_control/sentinel/incidents", content=b"[1]")).status_code == 400
    assert (await http.post("/_control/sentinel/incidents", json={"workspace": "nope", "title": "t",
                                                                   "severity": "High"})).status_code == 404
    bad_severity = await http.post("/_control/sentinel/incidents", json={
        "workspace": world.workspace_name, "title": "t", "severity": "Critical"})
    assert bad_severity.status_code == 400
    assert (await http.post("/_control/sentinel/incidents/unknown/analyst-edit", json={})).status_code == 404
    assert (await http.post("/_control/sentinel/workspaces", json={"workspaceName": "x"})).status_code == 400


async def test_throttle_route_configures_the_buckets(http: httpx.AsyncClient, state: EmulatorState) -> None:
    response = await http.put("/_control/sentinel/throttle", json={"writes": {"capacity": 5, "refillPerSecond": 1}})
    assert response.json()["writes"] == {"capacity": 5.0, "refillPerSecond": 1.0}
    assert state.sentinel.throttle.policies()["writes"].capacity == 5
    assert (await http.put("/_control/sentinel/throttle", json={"gets": {}})).status_code == 400


async def test_reset_forgets_everything_and_seed_rebuilds_the_demo(
    http: httpx.AsyncClient, world: DemoWorld, state: EmulatorState
) -> None:
    summary = (await http.get("/_control/state")).json()
    assert summary["sentinel"]["workspaces"][0]["incidents"] == len(world.incident_names)
    assert (await http.post("/_control/reset")).status_code == 204
    empty = (await http.get("/_control/state")).json()
    assert empty["entra"]["tenants"] == [] and empty["sentinel"]["workspaces"] == []
    assert state.signl4.teams == {}
    seeded = await http.post("/_control/seed", json={"scenario": "demo"})
    assert seeded.status_code == 201
    assert seeded.json()["workspaceId"] == world.workspace_id  # stable ids across seeds
    assert seeded.json()["clientSecret"] != world.client_secret  # fresh secrets


async def test_revoked_tokens_stop_working(arm: Arm) -> None:
    assert (await arm.http.post("/_control/entra/revoke-tokens", json={})).json()["revoked"] >= 1
    assert (await arm.get(arm.incidents_url)).status_code == 401


def test_demo_world_has_a_realistic_mix(state: EmulatorState, world: DemoWorld, clock: FakeClock) -> None:
    incidents = state.sentinel.list_incidents(world.workspace)
    props = [i["properties"] for i in incidents]
    assert {p["status"] for p in props} == {"New", "Active", "Closed"}
    assert {p["severity"] for p in props} == {"High", "Medium", "Low", "Informational"}
    assert {p["providerName"] for p in props} == {"Azure Sentinel", "Microsoft 365 Defender"}
    recent = clock() - timedelta(hours=24)
    created = [i["properties"]["createdTimeUtc"] for i in incidents]
    boundary = recent.strftime("%Y-%m-%dT%H:%M:%S")
    assert any(c < boundary for c in created) and any(c > boundary for c in created)
    assert any({"labelName": "SIGNL4", "labelType": "User"} in p["labels"] for p in props)
    assert [p["incidentNumber"] for p in props] == list(range(1041, 1041 + len(incidents)))
    defender = [p for p in props if p["providerName"] == "Microsoft 365 Defender"]
    assert all(p["additionalData"]["providerIncidentUrl"].startswith("https://security.microsoft.com/incidents/")
               for p in defender)
    for incident in incidents:
        assert_valid(incident, "Incident")
        assert incident["properties"]["additionalData"]["alertsCount"] >= 1
    assert world.to_json()["workspaceResourceId"] == world.workspace.resource_id


async def test_services_share_one_origin_and_tenant_paths_do_not_shadow_them(state: EmulatorState) -> None:
    async def probe(scope: dict[str, object], receive: object, send: object) -> None:
        from starlette.responses import PlainTextResponse

        await PlainTextResponse("probe")(scope, receive, send)  # type: ignore[arg-type]

    app = build_app(state, extra_mounts=[ServiceMount("probe", ("/probe",), probe)])  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=EmulatorTransport(app), base_url="https://127.0.0.1:8443") as http:
        assert (await http.get("/probe/x")).text == "probe"
        assert (await http.get("/probex")).status_code == 404  # prefixes match whole segments only
        assert (await http.get("/_control/state")).status_code == 200
        assert (await http.get("/subscriptions/x/resourceGroups/y")).json()["error"]["code"] == "NotFound"  # ARM
        signl4 = await http.post("/webhook/unknown-secret", json={"Title": "x"})
        assert signl4.json()["code"] == 3004  # the SIGNL4 emulator's "unknown event source"
        entra = await http.post("/unknown-tenant/oauth2/v2.0/token", data={"grant_type": "client_credentials"})
        assert entra.json()["error_codes"] == [90002]


def test_certificates_are_reused_while_valid_and_regenerated_when_broken(tmp_path: Path) -> None:
    first = ensure_certificates(tmp_path)
    ca_bytes = first.ca.read_bytes()
    assert ensure_certificates(tmp_path).ca.read_bytes() == ca_bytes
    leaf = x509.load_pem_x509_certificate(first.cert.read_bytes())
    names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in names.get_values_for_type(x509.DNSName)
    assert oct(os.stat(first.key).st_mode & 0o777) == oct(0o600)
    first.key.write_bytes(b"not a key")
    assert ensure_certificates(tmp_path).ca.read_bytes() != ca_bytes
    other = ensure_certificates(tmp_path / "other")
    first.ca.write_bytes(other.ca.read_bytes())  # a server cert not issued by this CA is not reused
    assert ensure_certificates(tmp_path).ca.read_bytes() != other.ca.read_bytes()


@pytest.mark.parametrize("reference", ["sub/rg/name", "/subscriptions/sub/resourceGroups/rg/providers/"
                                       "Microsoft.OperationalInsights/workspaces/name"])
def test_workspace_references_parse(reference: str) -> None:
    from sentinel_signl4_emulators.sentinel.model import WorkspaceRef

    assert WorkspaceRef.parse(reference).key == ("sub", "rg", "name")
    with pytest.raises(ValueError, match="not a workspace"):
        WorkspaceRef.parse("just/two")
