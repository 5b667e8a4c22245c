"""Entra ID emulator in-process: a user's device-code sign-in (RFC 8628) and refresh tokens, at the public
authority and at a national cloud's (the host a request names decides the cloud: ``entra.clouds``)."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx

from fake_clock import FakeClock
from sentinel_signl4_emulators.app import EmulatorState
from sentinel_signl4_emulators.entra.model import TokenInfo
from sentinel_signl4_emulators.entra.sign_in import AZURE_CLI_CLIENT_ID, DEVICE_CODE_GRANT
from sentinel_signl4_emulators.seed import DemoWorld

GOV_LOGIN = "https://login.microsoftonline.us"
GOV_ARM = "https://management.usgovcloudapi.net"
GOV_GRAPH = "https://graph.microsoft.us"


def claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return decoded


async def start(http: httpx.AsyncClient, world: DemoWorld, scope: str, login: str = GOV_LOGIN) -> httpx.Response:
    return await http.post(f"{login}/{world.tenant_id}/oauth2/v2.0/devicecode",
                           data={"client_id": AZURE_CLI_CLIENT_ID, "scope": f"{scope} openid profile offline_access"})


async def poll(http: httpx.AsyncClient, world: DemoWorld, device_code: str,
               login: str = GOV_LOGIN) -> httpx.Response:
    return await http.post(f"{login}/{world.tenant_id}/oauth2/v2.0/token",
                           data={"grant_type": DEVICE_CODE_GRANT, "client_id": AZURE_CLI_CLIENT_ID,
                                 "device_code": device_code})


async def signed_in(http: httpx.AsyncClient, world: DemoWorld, state: EmulatorState, user_id: str,
                    scope: str) -> dict[str, Any]:
    """The token answer of a device-code sign-in of ``user_id`` at the US Government authority for ``scope``."""
    flow = (await start(http, world, scope)).json()
    state.entra.device_sign_in.complete(flow["user_code"], user_id)
    answer: dict[str, Any] = (await poll(http, world, flow["device_code"])).json()
    return answer


async def test_pending_until_the_user_signs_in_then_a_token_of_that_cloud_for_the_user(
        http: httpx.AsyncClient, world: DemoWorld, state: EmulatorState) -> None:
    user = state.entra.users(world.tenant_id)[0]
    started = await start(http, world, f"{GOV_ARM}/.default")
    assert started.status_code == 200, started.text
    flow = started.json()
    assert flow["verification_uri"] == "https://microsoft.com/deviceloginus"
    assert flow["user_code"] in flow["message"] and flow["expires_in"] == 900 and flow["interval"] == 5

    pending = await poll(http, world, flow["device_code"])
    assert pending.status_code == 400 and pending.json()["error"] == "authorization_pending"
    state.entra.device_sign_in.complete(flow["user_code"].lower(), user.user_principal_name)
    granted = await poll(http, world, flow["device_code"])
    assert granted.status_code == 200, granted.text
    body = granted.json()
    (seen,) = state.entra.device_sign_in.flows()
    assert (seen.authority, seen.user) == (GOV_LOGIN, user)
    assert f"{GOV_ARM}/.default" in seen.scopes
    info = state.entra.validate_bearer(f"Bearer {body['access_token']}", GOV_ARM)
    assert isinstance(info, TokenInfo)
    assert (info.authority, info.user_object_id, info.app_object_id) == (GOV_LOGIN, user.object_id, user.object_id)
    id_claims = claims(body["id_token"])
    assert id_claims["iss"] == f"{GOV_LOGIN}/{world.tenant_id}/v2.0" and id_claims["aud"] == AZURE_CLI_CLIENT_ID
    assert id_claims["preferred_username"] == user.user_principal_name
    # A device code is good for one token.
    again = await poll(http, world, flow["device_code"])
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"


async def test_a_refresh_token_gets_another_resource_of_the_same_cloud_without_a_new_sign_in(
        http: httpx.AsyncClient, world: DemoWorld, state: EmulatorState) -> None:
    user = state.entra.users(world.tenant_id)[0]
    refresh = (await signed_in(http, world, state, user.object_id, f"{GOV_GRAPH}/.default"))["refresh_token"]

    def refresh_form(token: str, scope: str) -> dict[str, str]:
        return {"grant_type": "refresh_token", "client_id": AZURE_CLI_CLIENT_ID, "refresh_token": token,
                "scope": f"{scope} openid offline_access"}

    url = f"{GOV_LOGIN}/{world.tenant_id}/oauth2/v2.0/token"
    refused = await http.post(url, data=refresh_form(refresh, "https://management.azure.com/.default"))
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_resource"
    # Another authority does not honour it.
    elsewhere = await http.post(f"https://login.microsoftonline.com/{world.tenant_id}/oauth2/v2.0/token",
                                data=refresh_form(refresh, "https://management.azure.com/.default"))
    assert elsewhere.status_code == 400 and elsewhere.json()["error"] == "invalid_grant"
    refresh = (await signed_in(http, world, state, user.object_id, f"{GOV_GRAPH}/.default"))["refresh_token"]
    granted = await http.post(url, data=refresh_form(refresh, f"{GOV_ARM}/.default"))
    assert granted.status_code == 200, granted.text
    info = state.entra.validate_bearer(f"Bearer {granted.json()['access_token']}", GOV_ARM)
    assert isinstance(info, TokenInfo) and info.user_object_id == user.object_id
    assert len(state.entra.device_sign_in.flows()) == 2  # no new flow for the second resource


async def test_an_expired_device_code_is_refused(http: httpx.AsyncClient, world: DemoWorld, state: EmulatorState,
                                                 clock: FakeClock) -> None:
    flow = (await start(http, world, "https://management.azure.com/.default",
                        login="https://login.microsoftonline.com")).json()
    assert flow["verification_uri"] == "https://microsoft.com/devicelogin"
    clock.advance(901)
    expired = await poll(http, world, flow["device_code"], login="https://login.microsoftonline.com")
    assert expired.status_code == 400 and expired.json()["error"] == "expired_token"


async def test_national_cloud_hosts_accept_their_own_audience_only(
        http: httpx.AsyncClient, world: DemoWorld, state: EmulatorState) -> None:
    user = state.entra.users(world.tenant_id)[0]
    token = (await signed_in(http, world, state, user.object_id, f"{GOV_GRAPH}/.default"))["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    assert (await http.get(f"{GOV_GRAPH}/v1.0/applications", headers=headers)).status_code == 200
    assert (await http.get("https://graph.microsoft.com/v1.0/applications", headers=headers)).status_code == 401
