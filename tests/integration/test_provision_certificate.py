"""``provision apply`` with a certificate credential: the key pair is generated locally (PEM, mode 0600), only the
certificate goes to Entra ID (Update application for the first one, addKey with a proof of possession for a renewal),
and the check after apply signs in with it. The emulator enforces addKey's rules."""

from __future__ import annotations

import base64
import os
import re
import stat
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from integration_harness import Harness
from sentinel_signl4.clients.http import build_http_client
from sentinel_signl4.clients.identity import TokenProvider, build_credential
from sentinel_signl4.provision.apply import TenantOutcome, apply_plans
from sentinel_signl4.provision.certificate import (
    key_credential,
    new_certificate,
    proof_of,
    read_certificate,
    write_certificate,
)
from sentinel_signl4.provision.plan import PlanOptions, build_plan
from sentinel_signl4.provision.targets import parse_targets
from sentinel_signl4.provision.verify import check_new_identities

OPERATOR_SECRET = "operator-secret-0123456789"


class Operator:
    def __init__(self, harness: Harness) -> None:
        self.h = harness
        world = harness.world
        self.app = harness.state.entra.register_app(world.tenant_id, display_name="operator", secret=OPERATOR_SECRET)
        harness.state.authorization.grant_owner(self.app.object_id, f"/subscriptions/{world.subscription_id}")
        self.providers: list[TokenProvider] = []

    def tokens_for(self, tenant_id: str) -> TokenProvider:
        provider = TokenProvider(build_credential(
            kind="client_secret", tenant_id=tenant_id, client_id=self.app.client_id, secret=OPERATOR_SECRET,
            authority_host=self.h.server.base_url, ca_bundle=str(self.h.server.ca_path)))
        self.providers.append(provider)
        return provider

    async def apply(self, text: str, options: PlanOptions, lines: list[str]) -> list[TenantOutcome]:
        plans = build_plan(parse_targets(text, env={}), options)
        async with build_http_client(ca_bundle=str(self.h.server.ca_path)) as http:
            return await apply_plans(plans, tokens_for=self.tokens_for, http=http,
                                     arm_endpoint=self.h.server.base_url, graph_endpoint=self.h.server.base_url,
                                     echo=lines.append, attempts=5, wait=0.0, options=options)

    async def graph(self, method: str, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
        token = await self.tokens_for(self.h.world.tenant_id).token("https://graph.microsoft.com/.default")
        async with build_http_client(ca_bundle=str(self.h.server.ca_path)) as http:
            return await http.request(method, f"{self.h.server.base_url}/v1.0/{path}", json=body,
                                      headers={"Authorization": f"Bearer {token}"})


@pytest.fixture
async def operator(harness: Harness) -> AsyncIterator[Operator]:
    op = Operator(harness)
    yield op
    for provider in op.providers:
        await provider.close()


def thumbprint(pem: Path) -> str | None:
    local = read_certificate(pem)
    return None if local is None else local.thumbprint


def certificate_config(harness: Harness) -> str:
    text = harness.config_text(overrides={
        "credential": {"kind": "certificate", "certificate_path": "${CERT_PATH}"},
        "sync": {"owner_map": {u.mail: u.object_id for u in harness.world.users}}})
    text = re.sub(r'client_id = "[^"]*"\n', "", text, count=1)
    return re.sub(r'client_secret = "[^"]*"\n', "", text, count=1)


async def test_apply_generates_the_key_uploads_only_the_certificate_and_checks_with_it(
        harness: Harness, operator: Operator, tmp_path: Path) -> None:
    text = certificate_config(harness)
    options = PlanOptions(out_dir=str(tmp_path), app_name="signl4-connector-cert", secret_days=90)
    lines: list[str] = []
    (outcome,) = await operator.apply(text, options, lines)
    assert outcome.ok, (outcome.error, lines)
    (record,) = outcome.identities
    pem = Path(record["certificate_path"])
    assert stat.S_IMODE(os.stat(pem).st_mode) == 0o600
    local = read_certificate(pem)
    assert local is not None
    # Entra ID holds the certificate, and nothing of the private key.
    apps = (await operator.graph("GET", f"applications?$filter=appId eq '{record['client_id']}'")).json()["value"]
    (app,) = apps
    (key,) = app["keyCredentials"]
    assert key["customKeyIdentifier"] == local.thumbprint and key["key"] is None
    assert any("uploaded (public part only)" in line for line in lines), lines
    assert "PRIVATE KEY" not in "\n".join(lines)
    env_file = tmp_path / f"sentinel-signl4-{harness.world.tenant_id[:8]}-{record['client_id'][:8]}.env"
    with open(env_file, encoding="utf-8") as handle:  # noqa: ASYNC230 - a small local file in a test
        assert f"AZURE_CLIENT_CERTIFICATE_PATH={pem}" in handle.read()

    checked: list[str] = []
    assert await check_new_identities(text, tmp_path / "config.toml", [outcome], echo=checked.append, env={}), \
        checked
    assert f"Check of tenant {harness.world.tenant_id}: OK" in checked

    # A re-run keeps the certificate; one about to expire is renewed through addKey, signed by the current key.
    (again,) = await operator.apply(text, options, lines := [])
    assert again.ok and thumbprint(pem) == local.thumbprint and any("kept" in line for line in lines), lines
    short = PlanOptions(out_dir=str(tmp_path), app_name="signl4-connector-cert", secret_days=10)
    (first_short,) = await operator.apply(text, short, [])  # kept: the 90-day one is still far from expiry
    assert first_short.ok and thumbprint(pem) == local.thumbprint
    # Make the current one due: a 10-day certificate is uploaded by hand through addKey and put in place.
    due = new_certificate("due", 10)
    response = await operator.graph("POST", f"applications/{app['id']}/addKey", {
        "keyCredential": key_credential(due, "due"), "passwordCredential": None, "proof": proof_of(local, app["id"])})
    assert response.status_code == 200, response.text
    write_certificate(pem, due)
    (renewed,) = await operator.apply(text, options, lines := [])
    assert renewed.ok, renewed.error
    assert any("renewed through addKey" in line for line in lines), lines
    fresh = read_certificate(pem)
    assert fresh is not None and fresh.thumbprint not in (local.thumbprint, due.thumbprint)
    app = (await operator.graph("GET", f"applications/{app['id']}")).json()
    assert {k["customKeyIdentifier"] for k in app["keyCredentials"]} == {
        local.thumbprint, due.thumbprint, fresh.thumbprint}
    checked = []
    assert await check_new_identities(text, tmp_path / "config.toml", [renewed], echo=checked.append, env={}), \
        checked


async def test_add_key_enforces_its_proof_of_possession(harness: Harness, operator: Operator) -> None:
    created = (await operator.graph("POST", "applications", {"displayName": "pop-rules"})).json()
    app_id = created["id"]
    first, second, stranger = (new_certificate(n, 30) for n in ("first", "second", "stranger"))
    body = {"keyCredential": key_credential(second, "second"), "passwordCredential": None,
            "proof": proof_of(first, app_id)}
    # No valid certificate yet: addKey is refused; Update application adds the first one.
    refused = await operator.graph("POST", f"applications/{app_id}/addKey", body)
    assert refused.status_code == 400 and "Update application" in refused.json()["error"]["message"]
    patched = await operator.graph("PATCH", f"applications/{app_id}",
                                   {"keyCredentials": [key_credential(first, "first")]})
    assert patched.status_code == 204
    for proof in (proof_of(stranger, app_id),  # signed by a key the app does not have
                  proof_of(first, "another-application"),  # issued for another application
                  proof_of(first, app_id, now=0.0),  # long expired
                  _tampered(proof_of(first, app_id))):
        answer = await operator.graph("POST", f"applications/{app_id}/addKey", {**body, "proof": proof})
        assert answer.status_code == 400, answer.text
    accepted = await operator.graph("POST", f"applications/{app_id}/addKey", body)
    assert accepted.status_code == 200 and accepted.json()["customKeyIdentifier"] == second.thumbprint
    assert accepted.json()["key"] is None


def _tampered(proof: str) -> str:
    header, claims, signature = proof.split(".")
    decoded = base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4)).replace(b'"exp": ', b'"exp": 9')
    return ".".join([header, base64.urlsafe_b64encode(decoded).rstrip(b"=").decode(), signature])
