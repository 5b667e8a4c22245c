"""``${keyvault:…}`` references, read with the real azure-keyvault-secrets client from the emulated Key Vault over
HTTPS; the emulator's wire format is checked on its own first."""

from __future__ import annotations

import ssl

import httpx
import pytest
from azure.core.exceptions import ResourceNotFoundError
from azure.keyvault.secrets.aio import SecretClient

from integration_harness import Harness
from sentinel_signl4.clients.identity import build_credential
from sentinel_signl4.config import ConfigError, parse_config

API_KEY = "kv-rotated-api-key-0123456789"


def vault_config(harness: Harness, reference: str, *, keyvault: str = "verify_challenge_resource = false") -> str:
    return harness.config_text(overrides={"signl4": {"api_key": "${keyvault:" + reference + "}"}},
                               extra_tables=f"[keyvault]\n{keyvault}\n")


@pytest.fixture
def vault(harness: Harness) -> str:
    harness.state.keyvault.tenant_id = harness.world.tenant_id
    return harness.server.base_url


async def test_emulator_answers_with_key_vaults_shapes_and_challenge(harness: Harness, vault: str) -> None:
    version = harness.state.keyvault.set_secret("signl4-api-key", API_KEY)
    async with httpx.AsyncClient(verify=ssl.create_default_context(cafile=str(harness.server.ca_path))) as http:
        anonymous = await http.get(f"{vault}/secrets/signl4-api-key", params={"api-version": "7.4"})
        assert anonymous.status_code == 401
        assert anonymous.json()["error"]["code"] == "Unauthorized"
        challenge = anonymous.headers["www-authenticate"]
        assert f'authorization="https://login.microsoftonline.com/{harness.world.tenant_id}"' in challenge
        assert 'resource="https://vault.azure.net"' in challenge
        no_version = await http.get(f"{vault}/secrets/signl4-api-key")
        assert no_version.status_code == 400 and no_version.json()["error"]["code"] == "BadParameter"
        token = (await http.post(f"{vault}/{harness.world.tenant_id}/oauth2/v2.0/token", data={
            "grant_type": "client_credentials", "client_id": harness.world.client_id,
            "client_secret": harness.world.client_secret, "scope": "https://vault.azure.net/.default"})).json()
        auth = {"Authorization": f"Bearer {token['access_token']}"}
        found = await http.get(f"{vault}/secrets/signl4-api-key/{version}", params={"api-version": "7.4"},
                               headers=auth)
        assert found.status_code == 200
        body = found.json()
        assert body["value"] == API_KEY and body["id"] == f"{vault}/secrets/signl4-api-key/{version}"
        assert body["attributes"]["enabled"] is True and isinstance(body["attributes"]["created"], int)
        missing = await http.get(f"{vault}/secrets/nope", params={"api-version": "7.4"}, headers=auth)
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "SecretNotFound"


async def test_the_real_secret_client_reads_versions_and_sees_not_found(harness: Harness, vault: str) -> None:
    first = harness.state.keyvault.set_secret("team-secret", "first-value")
    harness.state.keyvault.set_secret("team-secret", "second-value")
    world = harness.world
    credential = build_credential(kind="client_secret", tenant_id=world.tenant_id, client_id=world.client_id,
                                  secret=world.client_secret, authority_host=vault,
                                  ca_bundle=str(harness.server.ca_path))
    async with credential, SecretClient(vault, credential, verify_challenge_resource=False,
                                        connection_verify=str(harness.server.ca_path)) as client:
        latest = await client.get_secret("team-secret")
        assert latest.value == "second-value" and latest.name == "team-secret"
        assert (await client.get_secret("team-secret", first)).value == "first-value"
        with pytest.raises(ResourceNotFoundError):
            await client.get_secret("absent")


def test_a_config_reference_is_read_with_the_connectors_credential(harness: Harness, vault: str) -> None:
    harness.state.keyvault.set_secret("signl4-api-key", API_KEY)
    config = parse_config(vault_config(harness, f"{vault}/secrets/signl4-api-key"), source="kv.toml")
    api_key = config.connectors[0].signl4.api_key
    assert api_key is not None and api_key.get_secret_value() == API_KEY
    assert API_KEY in config.secrets()  # redacted like any other secret
    assert harness.state.keyvault.reads()[-1] == ("signl4-api-key", "")


def test_a_missing_secret_or_refused_identity_is_a_config_error_naming_the_key(harness: Harness, vault: str) -> None:
    with pytest.raises(ConfigError) as missing:
        parse_config(vault_config(harness, f"{vault}/secrets/absent"), source="kv.toml")
    assert f"kv.toml: connectors[0].signl4.api_key: Key Vault secret {vault}/secrets/absent was not found" in str(
        missing.value)
    harness.state.keyvault.set_secret("signl4-api-key", API_KEY)
    wrong = harness.config_text(overrides={"signl4": {"api_key": "${keyvault:" + vault + "/secrets/signl4-api-key}"},
                                           "credential": {"client_secret": "wrong-secret-value"}},
                                extra_tables="[keyvault]\nverify_challenge_resource = false\n")
    with pytest.raises(ConfigError) as refused:
        parse_config(wrong, source="kv.toml")
    assert "AADSTS7000215" in str(refused.value) and "wrong-secret-value" not in str(refused.value)


def test_the_challenge_resource_is_verified_by_default(harness: Harness, vault: str) -> None:
    harness.state.keyvault.set_secret("signl4-api-key", API_KEY)
    text = vault_config(harness, f"{vault}/secrets/signl4-api-key", keyvault="")
    with pytest.raises(ConfigError) as refused:
        parse_config(text, source="kv.toml")
    assert "kv.toml: connectors[0].signl4.api_key: cannot read Key Vault secret" in str(refused.value)
    assert "does not match the requested domain" in str(refused.value)


def test_a_malformed_reference_is_refused_before_anything_is_read(harness: Harness, vault: str) -> None:
    with pytest.raises(ConfigError) as bad:
        parse_config(vault_config(harness, "http://vault.example/keys/x"), source="kv.toml")
    assert "must look like https://<vault>.vault.azure.net/secrets/<name>" in str(bad.value)
    assert harness.state.keyvault.reads() == []
