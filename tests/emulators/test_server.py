"""The emulators over real HTTPS (uvicorn + local CA): the real azure-identity credentials get tokens, the ARM
API answers with links on the server's origin, and dropped connections look like network failures."""

from __future__ import annotations

import ssl

import httpx
import pytest
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import ClientSecretCredential as SyncClientSecretCredential
from azure.identity.aio import CertificateCredential, ClientSecretCredential

from emulators_world import API_VERSION, ARM_SCOPE, HttpsWorld
from sentinel_signl4_emulators.common.faults import FaultRule, Phase
from sentinel_signl4_emulators.entra.model import TokenInfo


async def test_async_client_secret_credential_gets_a_token_the_arm_emulator_accepts(https_world: HttpsWorld) -> None:
    w = https_world.world
    async with ClientSecretCredential(w.tenant_id, w.client_id, w.client_secret,
                                      authority=https_world.server.base_url, connection_verify=https_world.ca) as cred:
        token = await cred.get_token(ARM_SCOPE)
    info = https_world.state.entra.validate_bearer(f"Bearer {token.token}", "https://management.azure.com")
    assert isinstance(info, TokenInfo) and info.client_id == w.client_id
    async with httpx.AsyncClient(verify=ssl.create_default_context(cafile=https_world.ca)) as http:
        response = await http.get(
            f"{https_world.server.base_url}{w.workspace.resource_id}/providers/Microsoft.SecurityInsights/incidents",
            params={"api-version": API_VERSION, "$top": "2"}, headers={"Authorization": f"Bearer {token.token}"})
    assert response.status_code == 200
    assert response.json()["nextLink"].startswith(f"{https_world.server.base_url}/subscriptions/")


async def test_async_certificate_credential_authenticates_with_a_signed_assertion(https_world: HttpsWorld) -> None:
    w = https_world.world
    async with CertificateCredential(w.tenant_id, w.client_id, certificate_data=w.certificate_pem,
                                     authority=https_world.server.base_url, connection_verify=https_world.ca) as cred:
        token = await cred.get_token(ARM_SCOPE)
    assert isinstance(https_world.state.entra.validate_bearer(f"Bearer {token.token}", ARM_SCOPE[:-9]), TokenInfo)


async def test_wrong_secret_surfaces_aadsts7000215_through_azure_identity(https_world: HttpsWorld) -> None:
    w = https_world.world
    async with ClientSecretCredential(w.tenant_id, w.client_id, "wrong",
                                      authority=https_world.server.base_url, connection_verify=https_world.ca) as cred:
        with pytest.raises(ClientAuthenticationError, match="AADSTS7000215"):
            await cred.get_token(ARM_SCOPE)


def test_sync_msal_credential_reads_oidc_metadata_then_gets_a_token(
    https_world: HttpsWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    # requests lets REQUESTS_CA_BUNDLE override MSAL's own verify= (reference §5.3); this machine presets it.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", https_world.ca)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    w = https_world.world
    options = {"authority": https_world.server.base_url, "disable_instance_discovery": True,
               "connection_verify": https_world.ca}
    with SyncClientSecretCredential(w.tenant_id, w.client_id, w.client_secret, **options) as cred:
        token = cred.get_token(ARM_SCOPE)
    assert isinstance(https_world.state.entra.validate_bearer(f"Bearer {token.token}", ARM_SCOPE[:-9]), TokenInfo)
    with SyncClientSecretCredential(w.tenant_id, w.client_id, "wrong", **options) as bad, pytest.raises(
        ClientAuthenticationError, match="AADSTS7000215"
    ):
        bad.get_token(ARM_SCOPE)


def test_server_certificate_is_only_trusted_through_the_local_ca(https_world: HttpsWorld) -> None:
    with httpx.Client(verify=ssl.create_default_context()) as untrusting, pytest.raises(httpx.ConnectError):
        untrusting.get(f"{https_world.server.base_url}/_control/state")
    with httpx.Client(verify=ssl.create_default_context(cafile=https_world.ca)) as trusting:
        assert trusting.get(f"{https_world.server.base_url}/_control/state").status_code == 200
        localhost = https_world.server.base_url.replace("127.0.0.1", "localhost")
        assert trusting.get(f"{localhost}/_control/state").status_code == 200


@pytest.mark.parametrize("phase", ["before", "after"])
def test_reset_fault_drops_the_connection_without_any_response(https_world: HttpsWorld, phase: Phase) -> None:
    """A reset is a transport error for the client, never a 500; with phase 'after' the write still happened."""
    w, state = https_world.world, https_world.state
    name = w.incident_names[0]
    url = (f"{https_world.server.base_url}{w.workspace.resource_id}/providers/Microsoft.SecurityInsights/incidents/"
           f"{name}/comments/drop-{phase}")
    rule = state.faults.add(FaultRule(path=f"/comments/drop-{phase}$", method="PUT", kind="reset", phase=phase,
                                      count=1))
    token = httpx.post(f"{https_world.server.base_url}/{w.tenant_id}/oauth2/v2.0/token", data={
        "client_id": w.client_id, "client_secret": w.client_secret, "grant_type": "client_credentials",
        "scope": ARM_SCOPE}, verify=ssl.create_default_context(cafile=https_world.ca)).json()["access_token"]
    with httpx.Client(verify=ssl.create_default_context(cafile=https_world.ca)) as http:
        with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
            http.put(url, params={"api-version": API_VERSION}, json={"properties": {"message": "hello"}},
                     headers={"Authorization": f"Bearer {token}"})
        assert rule.fired == 1
        stored = [c["name"] for c in state.sentinel.comments(w.workspace, name)]
        assert (f"drop-{phase}" in stored) is (phase == "after")
        # The server is healthy afterwards: the retry answers normally.
        retry = http.put(url, params={"api-version": API_VERSION}, json={"properties": {"message": "hello"}},
                         headers={"Authorization": f"Bearer {token}"})
        assert retry.status_code == (200 if phase == "after" else 201)
