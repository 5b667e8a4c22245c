"""``provision apply --device-code`` for a tenant whose connectors are in AzureUSGovernment, end to end: the real
``run_apply`` (azure-identity's ``DeviceCodeCredential``, MSAL, the apply's HTTP client) talks to the cloud's real
host names, which an HTTPS proxy tunnels to the emulators (``tunnel_proxy``). The emulated Entra sees the
device-code sign-in at ``login.microsoftonline.us`` for the US Government resources, one sign-in serves ARM and
Graph (a refresh token), and the role is written through ``management.usgovcloudapi.net``."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator

import httpx
import pytest

from integration_harness import Harness
from sentinel_signl4.config.schema import CLOUDS
from sentinel_signl4.provision.apply_cli import run_apply
from sentinel_signl4.provision.plan import PlanOptions, build_plan
from sentinel_signl4.provision.targets import parse_targets
from sentinel_signl4_emulators.entra.model import User
from sentinel_signl4_emulators.entra.sign_in import AZURE_CLI_CLIENT_ID
from tunnel_proxy import TunnelProxy, tunnel_proxy

GOV = CLOUDS["AzureUSGovernment"]
CONNECTOR_SECRET = "gov-connector-secret-0123456789"


def host(url: str) -> str:
    return url.removeprefix("https://").rstrip("/")


@pytest.fixture
async def proxied(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[TunnelProxy]:
    """Every HTTPS request of this process goes through the tunnel to the emulators, trusting their CA."""
    async with tunnel_proxy(harness.server.port) as proxy:
        for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy"):
            monkeypatch.delenv(name, raising=False)
        for name in ("HTTPS_PROXY", "https_proxy"):
            monkeypatch.setenv(name, f"http://127.0.0.1:{proxy.port}")
        for name in ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"):
            monkeypatch.setenv(name, str(harness.server.ca_path))
        monkeypatch.delenv("SSL_CERT_DIR", raising=False)
        yield proxy


async def sign_in_when_asked(harness: Harness, user: User, stop: asyncio.Event) -> None:
    """The operator at the browser: enters every device code the emulated Entra hands out, and signs in."""
    done: set[str] = set()
    while not stop.is_set():
        for flow in harness.state.entra.device_sign_in.flows():
            if flow.user_code not in done:
                harness.state.entra.device_sign_in.complete(flow.user_code, user.user_principal_name)
                done.add(flow.user_code)
        await asyncio.sleep(0.05)


async def test_device_code_sign_in_of_a_us_government_tenant_uses_its_authority_and_scopes(
        harness: Harness, proxied: TunnelProxy) -> None:
    state, world = harness.state, harness.world
    state.entra.device_sign_in.interval = 1  # Entra says 5; the flow is the same
    operator = state.entra.add_user(world.tenant_id, user_principal_name="operator@contoso.example",
                                    display_name="Operator")
    state.authorization.grant_owner(operator.object_id, f"/subscriptions/{world.subscription_id}")
    connector = state.entra.register_app(world.tenant_id, display_name="gov-connector", secret=CONNECTOR_SECRET)
    state.authorization.principal_created(connector.object_id)
    text = harness.config_text(overrides={
        "azure": {"cloud": "AzureUSGovernment"},
        "credential": {"client_id": connector.client_id, "client_secret": CONNECTOR_SECRET},
    })
    options = PlanOptions(out_dir=str(harness.tmp))
    plans = build_plan(parse_targets(text, env={}), options)
    assert [p.cloud for p in plans] == ["AzureUSGovernment"]

    lines: list[str] = []
    stop = asyncio.Event()
    user = asyncio.create_task(sign_in_when_asked(harness, operator, stop))
    try:
        async with asyncio.timeout(120):
            status = await run_apply(plans, options, device_code=True, echo=lines.append)
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await user
    assert status == 0, "\n".join(lines)

    # One device-code sign-in, at the US Government authority, by the Azure CLI's public client, for a US
    # Government resource.
    (flow,) = state.entra.device_sign_in.flows()
    assert flow.authority == GOV.authority_host
    assert (flow.tenant_id, flow.client_id) == (world.tenant_id, AZURE_CLI_CLIENT_ID)
    resources = [s for s in flow.scopes if s.endswith("/.default")]
    assert resources and set(resources) <= {GOV.scope("graph"), GOV.scope("resource_manager")}, flow.scopes
    # Every token the operator got came from that authority, for the cloud's Graph and ARM, and nothing else.
    tokens = [t for t in state.entra.tokens() if t.user_object_id == operator.object_id]
    assert {t.authority for t in tokens} == {GOV.authority_host}
    assert {t.audience + "/.default" for t in tokens} == {GOV.scope("graph"), GOV.scope("resource_manager")}
    # The calls went to the cloud's own hosts only.
    assert {h.rsplit(":", 1)[0] for h in proxied.hosts} == {host(GOV.authority_host), host(GOV.graph),
                                                            host(GOV.resource_manager)}
    # And apply did its work there as the signed-in operator.
    (assignment,) = state.authorization.assignments(f"/subscriptions/{world.subscription_id}", connector.object_id)
    assert assignment.scope.endswith(f"/workspaces/{world.workspace_name}")


async def test_the_us_government_authority_refuses_a_public_cloud_resource(
        harness: Harness, proxied: TunnelProxy) -> None:
    """A national cloud's authority issues tokens for its own resources only: asking it for the public cloud's ARM
    is refused at the start of the flow, so a sign-in that mixed up the clouds could not pass the test above."""


    context = ssl.create_default_context(cafile=str(harness.server.ca_path))
    async with httpx.AsyncClient(verify=context, proxy=f"http://127.0.0.1:{proxied.port}") as http:
        url = f"{GOV.authority_host}/{harness.world.tenant_id}/oauth2/v2.0/devicecode"
        public_arm = CLOUDS["AzurePublic"].scope("resource_manager")
        refused = await http.post(url, data={"client_id": AZURE_CLI_CLIENT_ID, "scope": f"{public_arm} openid"})
        accepted = await http.post(url, data={"client_id": AZURE_CLI_CLIENT_ID,
                                              "scope": f"{GOV.scope('resource_manager')} openid"})
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_resource", refused.text
    assert accepted.status_code == 200 and "microsoft.com/deviceloginus" in accepted.json()["message"]
