"""ARM Sentinel emulator over the wire (in-process): every response body matches the 2025-09-01 spec bundle,
and the ARM front door answers auth, api-version, RBAC, routing and lookup failures like ARM."""

from __future__ import annotations

import uuid

import httpx
import pytest

from emulators_world import API_VERSION, ARM, Arm, get_token
from fake_clock import FakeClock
from sentinel_signl4_emulators.app import EmulatorState
from sentinel_signl4_emulators.seed import DemoWorld
from sentinel_signl4_emulators.sentinel.model import Role
from spec_validation import assert_valid


def assert_arm_error(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert_valid(body, "CloudError")
    assert body["error"]["code"] == code
    message: str = body["error"]["message"]
    return message


# --- happy paths validate against the spec ---------------------------------------------------------------------


async def test_list_returns_an_incident_list_of_valid_incidents(arm: Arm) -> None:
    response = await arm.get(arm.incidents_url)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert int(response.headers["x-ms-ratelimit-remaining-subscription-reads"]) > 0
    body = response.json()
    assert_valid(body, "IncidentList")
    assert len(body["value"]) == len(arm.world.incident_names) and "nextLink" not in body
    for incident in body["value"]:
        assert_valid(incident, "Incident")


async def test_get_returns_the_incident_with_portal_url_and_quoted_etag(arm: Arm, state: EmulatorState) -> None:
    name = arm.world.incident_names[0]
    response = await arm.get(arm.incident_url(name))
    assert response.status_code == 200
    incident = response.json()
    assert_valid(incident, "Incident")
    resource_id = f"{arm.world.workspace.resource_id}/providers/Microsoft.SecurityInsights/incidents/{name}"
    assert incident["id"] == resource_id and incident["name"] == name
    assert incident["type"] == "Microsoft.SecurityInsights/incidents"
    assert incident["etag"].startswith('"') and incident["etag"].endswith('"')
    properties = incident["properties"]
    assert properties["incidentUrl"] == (
        f"https://portal.azure.com/#asset/Microsoft_Azure_Security_Insights/Incident{resource_id}"
    )
    assert set(properties["additionalData"]) >= {"alertsCount", "bookmarksCount", "commentsCount",
                                                 "alertProductNames", "tactics"}
    assert incident == state.sentinel.get_incident(arm.world.workspace, name)


async def test_path_segments_are_case_insensitive_like_arm(arm: Arm) -> None:
    url = arm.incident_url(arm.world.incident_names[0]).replace("resourceGroups", "resourcegroups").replace(
        "Microsoft.SecurityInsights", "microsoft.securityinsights")
    assert (await arm.get(url)).status_code == 200


async def test_alerts_and_entities_post_return_spec_shapes_from_seeded_data(arm: Arm) -> None:
    name = arm.world.incident_names[0]
    alerts = await arm.post(f"{arm.incident_url(name)}/alerts")
    assert alerts.status_code == 200
    assert_valid(alerts.json(), "IncidentAlertList")
    alert = alerts.json()["value"][0]
    assert alert["kind"] == "SecurityAlert"
    assert alert["properties"]["resourceIdentifiers"][0]["workspaceId"] == arm.world.workspace_id
    entities = await arm.post(f"{arm.incident_url(name)}/entities")
    assert entities.status_code == 200
    body = entities.json()
    assert_valid(body, "IncidentEntitiesResponse")
    assert sum(m["count"] for m in body["metaData"]) == len(body["entities"]) > 0


async def test_every_seeded_incident_alert_and_entity_matches_the_spec(arm: Arm) -> None:
    for name in arm.world.incident_names:
        assert_valid((await arm.post(f"{arm.incident_url(name)}/alerts")).json(), "IncidentAlertList")
        assert_valid((await arm.post(f"{arm.incident_url(name)}/entities")).json(), "IncidentEntitiesResponse")


async def test_comment_put_creates_then_updates_and_is_listed(arm: Arm, state: EmulatorState) -> None:
    name = arm.world.incident_names[0]
    before = (await arm.get(arm.incident_url(name))).json()
    comment_url = f"{arm.incident_url(name)}/comments/{uuid.uuid4()}"
    created = await arm.put(comment_url, {"properties": {"message": "Acknowledged in SIGNL4 by Adele Vance"}})
    assert created.status_code == 201
    assert_valid(created.json(), "IncidentComment")
    author = created.json()["properties"]["author"]
    app = state.entra.find_app(arm.world.client_id)
    assert app is not None and author == {"objectId": app.object_id, "name": app.display_name}
    updated = await arm.put(comment_url, {"properties": {"message": "edited"}})
    assert updated.status_code == 200 and updated.json()["properties"]["message"] == "edited"
    listing = await arm.get(f"{arm.incident_url(name)}/comments")
    assert listing.status_code == 200
    assert_valid(listing.json(), "IncidentCommentList")
    assert [c["properties"]["message"] for c in listing.json()["value"]] == ["edited"]
    single = await arm.get(comment_url)
    assert single.status_code == 200 and single.json() == listing.json()["value"][0]
    after = (await arm.get(arm.incident_url(name))).json()
    assert after["properties"]["additionalData"]["commentsCount"] == 1
    # Documented assumption: a new comment bumps the incident's etag and lastModifiedTimeUtc.
    assert after["etag"] != before["etag"]
    assert after["properties"]["lastModifiedTimeUtc"] > before["properties"]["lastModifiedTimeUtc"]


async def test_comment_list_pages_with_next_link(arm: Arm, clock: FakeClock) -> None:
    name = arm.world.incident_names[0]
    for n in range(5):
        clock.advance(seconds=1)
        assert (await arm.put(f"{arm.incident_url(name)}/comments/c{n}", {"properties": {"message": f"m{n}"}})
                ).status_code == 201
    seen: list[str] = []
    url: str | None = f"{arm.incident_url(name)}/comments?api-version={API_VERSION}&$top=2"
    while url:
        body = (await arm.http.get(url, headers=arm.auth)).json()
        assert_valid(body, "IncidentCommentList")
        seen += [c["properties"]["message"] for c in body["value"]]
        url = body.get("nextLink")
    assert seen == ["m0", "m1", "m2", "m3", "m4"]


async def test_comment_message_limits_are_enforced(arm: Arm) -> None:
    url = f"{arm.incident_url(arm.world.incident_names[0])}/comments/{uuid.uuid4()}"
    assert (await arm.put(url, {"properties": {"message": "x" * 30_000}})).status_code == 201
    too_long = await arm.put(f"{url}0", {"properties": {"message": "x" * 30_001}})
    assert "30000" in assert_arm_error(too_long, 400, "BadRequest")
    assert_arm_error(await arm.put(f"{url}1", {"properties": {}}), 400, "BadRequest")
    assert_arm_error(await arm.put(f"{url}2", {"properties": {"message": "  "}}), 400, "BadRequest")


# --- the ARM front door ----------------------------------------------------------------------------------------


async def test_missing_api_version_is_400(arm: Arm) -> None:
    response = await arm.http.get(arm.incidents_url, headers=arm.auth)
    assert_arm_error(response, 400, "MissingApiVersionParameter")


async def test_unsupported_api_version_is_400(arm: Arm) -> None:
    response = await arm.http.get(arm.incidents_url, params={"api-version": "2019-01-01-preview"}, headers=arm.auth)
    assert "2025-09-01" in assert_arm_error(response, 400, "NoRegisteredProviderFound")


@pytest.mark.parametrize("version", ["2023-02-01", "2024-03-01", "2025-09-01"])
async def test_stable_api_versions_with_the_same_shape_are_accepted(arm: Arm, version: str) -> None:
    response = await arm.http.get(arm.incidents_url, params={"api-version": version}, headers=arm.auth)
    assert response.status_code == 200


async def test_missing_token_is_401_with_www_authenticate(arm: Arm) -> None:
    response = await arm.http.get(arm.incidents_url, params={"api-version": API_VERSION})
    assert "'Authorization' header is missing" in assert_arm_error(response, 401, "AuthenticationFailed")
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith("Bearer ") and f"login.windows.net/{arm.world.tenant_id}" in challenge


async def test_unknown_token_is_401_invalid_authentication_token(arm: Arm) -> None:
    response = await arm.http.get(arm.incidents_url, params={"api-version": API_VERSION},
                                  headers={"Authorization": "Bearer forged"})
    assert_arm_error(response, 401, "InvalidAuthenticationToken")
    assert "www-authenticate" in response.headers


async def test_expired_token_is_401_expired_authentication_token(arm: Arm, clock: FakeClock) -> None:
    clock.advance(hours=2)
    assert_arm_error(await arm.get(arm.incidents_url), 401, "ExpiredAuthenticationToken")


async def test_token_for_another_audience_is_401_invalid_audience(arm: Arm) -> None:
    token = await get_token(arm.http, arm.world, scope="https://graph.microsoft.com/.default")
    response = await arm.http.get(arm.incidents_url, params={"api-version": API_VERSION},
                                  headers={"Authorization": f"Bearer {token}"})
    message = assert_arm_error(response, 401, "InvalidAuthenticationTokenAudience")
    assert "https://graph.microsoft.com" in message


async def test_legacy_management_core_audience_is_accepted(arm: Arm) -> None:
    token = await get_token(arm.http, arm.world, scope="https://management.core.windows.net//.default")
    response = await arm.http.get(arm.incidents_url, params={"api-version": API_VERSION},
                                  headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200


async def test_token_from_another_tenant_is_401(arm: Arm, state: EmulatorState) -> None:
    other = state.entra.register_app("11111111-2222-3333-4444-555555555555", secret="s")
    state.sentinel.assign_role(other.client_id, arm.world.workspace, Role.RESPONDER)
    response = await arm.http.post(
        "https://login.microsoftonline.com/11111111-2222-3333-4444-555555555555/oauth2/v2.0/token",
        data={"client_id": other.client_id, "client_secret": "s", "grant_type": "client_credentials",
              "scope": "https://management.azure.com/.default"})
    token = response.json()["access_token"]
    denied = await arm.http.get(arm.incidents_url, params={"api-version": API_VERSION},
                                headers={"Authorization": f"Bearer {token}"})
    assert_arm_error(denied, 401, "InvalidAuthenticationTokenTenant")


async def test_reader_may_read_but_not_write(arm: Arm, world: DemoWorld) -> None:
    token = await get_token(arm.http, world, client_id=world.reader_client_id, secret=world.reader_client_secret)
    reader = Arm(arm.http, world, token)
    name = world.incident_names[0]
    incident = (await reader.get(reader.incident_url(name))).json()
    assert (await reader.post(f"{reader.incident_url(name)}/alerts")).status_code == 200
    denied = await reader.put(reader.incident_url(name), incident)
    message = assert_arm_error(denied, 403, "AuthorizationFailed")
    assert message.startswith(f"The client '{world.reader_client_id}' with object id '")
    assert "does not have authorization to perform action 'Microsoft.SecurityInsights/incidents/write' over " \
           f"scope '{world.workspace.resource_id}/providers/Microsoft.SecurityInsights/incidents/{name}'" in message
    comment = await reader.put(f"{reader.incident_url(name)}/comments/x", {"properties": {"message": "hi"}})
    assert "incidents/comments/write" in assert_arm_error(comment, 403, "AuthorizationFailed")


async def test_app_without_role_is_403_even_for_reads(arm: Arm, state: EmulatorState, world: DemoWorld) -> None:
    lonely = state.entra.register_app(world.tenant_id, secret="s3cret")
    token = await get_token(arm.http, world, client_id=lonely.client_id, secret="s3cret")
    assert_arm_error(await Arm(arm.http, world, token).get(arm.incidents_url), 403, "AuthorizationFailed")


async def test_unknown_workspace_is_404_when_the_caller_has_rights_on_the_resource_group(
    arm: Arm, state: EmulatorState, world: DemoWorld
) -> None:
    url = arm.incidents_url.replace(world.workspace_name, "law-missing")
    assert_arm_error(await arm.get(url), 403, "AuthorizationFailed")  # no role on that scope
    state.sentinel.assign_role(world.client_id, f"/subscriptions/{world.subscription_id}/resourceGroups/"
                               f"{world.resource_group}", Role.READER)
    message = assert_arm_error(await arm.get(url), 404, "ResourceNotFound")
    assert "law-missing" in message


async def test_unknown_incident_is_404_not_found(arm: Arm) -> None:
    assert_arm_error(await arm.get(arm.incident_url(str(uuid.uuid4()))), 404, "NotFound")
    assert_arm_error(await arm.post(f"{arm.incident_url(str(uuid.uuid4()))}/alerts"), 404, "NotFound")
    assert_arm_error(await arm.get(f"{arm.incident_url(arm.world.incident_names[0])}/comments/nope"), 404, "NotFound")


async def test_unknown_subscription_is_404(arm: Arm) -> None:
    url = arm.incidents_url.replace(arm.world.subscription_id, str(uuid.uuid4()))
    assert_arm_error(await arm.get(url), 404, "SubscriptionNotFound")


async def test_put_on_the_collection_is_405_like_arm(arm: Arm) -> None:
    response = await arm.put(arm.incidents_url, {"properties": {}})
    assert "does not support HTTP method 'PUT'" in assert_arm_error(response, 405, "UnsupportedApiVersion")


async def test_unknown_arm_path_is_404(arm: Arm) -> None:
    response = await arm.http.get(f"{ARM}/subscriptions/{arm.world.subscription_id}/resourceGroups/x/providers/"
                                  "Microsoft.Compute/virtualMachines", params={"api-version": API_VERSION},
                                  headers=arm.auth)
    assert_arm_error(response, 404, "NotFound")


@pytest.mark.parametrize(
    "params",
    [
        {"$filter": "properties/status eq New"},
        {"$filter": "properties/classification eq 'Undetermined'"},
        {"$filter": "(properties/status eq 'New'"},
        {"$orderby": "properties/owner asc"},
        {"$top": "1001"},
        {"$top": "0"},
        {"$top": "ten"},
        {"$skipToken": "garbage!"},
    ],
)
async def test_bad_list_parameters_are_400_bad_request(arm: Arm, params: dict[str, str]) -> None:
    assert_arm_error(await arm.get(arm.incidents_url, **params), 400, "BadRequest")


async def test_skip_token_from_another_ordering_is_rejected(arm: Arm) -> None:
    first = (await arm.get(arm.incidents_url, **{"$top": "2"})).json()
    token = httpx.URL(first["nextLink"]).params["$skipToken"]
    response = await arm.get(arm.incidents_url, **{"$orderby": "properties/incidentNumber asc", "$skipToken": token})
    assert_arm_error(response, 400, "BadRequest")
