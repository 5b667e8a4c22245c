"""The clients over real HTTPS against ``EmulatorServer``, with the real azure-identity async credential.

This is the production wiring end to end: ``ClientSecretCredential`` (aiohttp) gets a token from the emulated
Entra ID, ``httpx`` verifies the emulator's certificate against its local CA, and faults drop real sockets.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from clients_world import (
    API_KEY,
    CLIENT_ID,
    CLIENT_SECRET,
    RESOURCE_GROUP,
    SUBSCRIPTION,
    TEAM_SECRET,
    TENANT,
    WORKSPACE,
)
from sentinel_signl4.clients.http import build_http_client
from sentinel_signl4.clients.identity import TokenProvider, build_credential
from sentinel_signl4.clients.ratelimit import SlidingWindowLimiter
from sentinel_signl4.clients.retry import RetryPolicy, RetryStats
from sentinel_signl4.clients.sentinel import SentinelClient
from sentinel_signl4.clients.signl4 import Signl4Client
from sentinel_signl4.domain import IncidentFilter, SignlRequest
from sentinel_signl4.errors import AuthError, OutcomeUnknownError, PermanentError, RemoteError
from sentinel_signl4.sources.sentinel_wire import incident_from_arm, put_body, with_label, writable_properties
from sentinel_signl4_emulators.app import EmulatorState
from sentinel_signl4_emulators.common.faults import FaultRule
from sentinel_signl4_emulators.sentinel.model import Role
from sentinel_signl4_emulators.server import EmulatorServer


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorServer]:
    with EmulatorServer(EmulatorState.new(), tmp_path_factory.mktemp("certs")) as running:
        yield running


@pytest.fixture
def state(server: EmulatorServer) -> EmulatorState:
    state = server.state
    state.reset()
    state.entra.register_app(TENANT, client_id=CLIENT_ID, secret=CLIENT_SECRET)
    workspace = state.sentinel.create_workspace(SUBSCRIPTION, RESOURCE_GROUP, WORKSPACE, tenant_id=TENANT)
    state.sentinel.assign_role(CLIENT_ID, workspace.ref, Role.RESPONDER)
    subscription = state.signl4.create_subscription()
    team = state.signl4.create_team(subscription.id, "SOC")
    state.signl4.add_team_secret(team.id, TEAM_SECRET)
    state.signl4.create_api_key(subscription.id, API_KEY)
    state.signl4.create_user(subscription.id, "Alice", "alice@contoso.com", team_ids=[team.id])
    return state


@pytest.fixture
async def http(server: EmulatorServer) -> AsyncIterator[httpx.AsyncClient]:
    async with build_http_client(ca_bundle=str(server.ca_path)) as client:
        yield client


def credential_tokens(server: EmulatorServer, secret: str = CLIENT_SECRET) -> TokenProvider:
    credential = build_credential(kind="client_secret", tenant_id=TENANT, client_id=CLIENT_ID, secret=secret,
                                  authority_host=server.base_url, ca_bundle=str(server.ca_path))
    return TokenProvider(credential, secrets=(secret,))


def signl4_client(server: EmulatorServer, http: httpx.AsyncClient, **kwargs: object) -> Signl4Client:
    return Signl4Client(http, webhook_url=f"{server.base_url}/webhook/{TEAM_SECRET}",
                        api_url=f"{server.base_url}/api", api_key=API_KEY, limiter=SlidingWindowLimiter(),
                        retry=RetryPolicy(), **kwargs)  # type: ignore[arg-type]


async def test_real_credential_lists_and_tags_an_incident_over_tls(
    server: EmulatorServer, state: EmulatorState, http: httpx.AsyncClient
) -> None:
    seeded = state.sentinel.create_incident(f"{SUBSCRIPTION}/{RESOURCE_GROUP}/{WORKSPACE}",
                                            title="over TLS", severity="High")
    async with credential_tokens(server) as tokens:
        sentinel = SentinelClient(http, tokens, arm_endpoint=server.base_url, subscription_id=SUBSCRIPTION,
                                  resource_group=RESOURCE_GROUP, workspace_name=WORKSPACE, retry=RetryPolicy())
        await sentinel.check_access()
        listed = [incident_from_arm(i) async for i in sentinel.list_incidents(IncidentFilter(), state.clock())]
        assert [i.name for i in listed] == [seeded["name"]]
        properties = with_label(writable_properties(listed[0]), "SIGNL4") or {}
        tagged = incident_from_arm(await sentinel.put_incident(listed[0].name, put_body(listed[0], properties)))
        assert "SIGNL4" in tagged.labels


async def test_a_wrong_client_secret_is_an_auth_error_with_the_aadsts_code_only(server: EmulatorServer,
                                                                                 state: EmulatorState) -> None:
    wrong = "Wr0ng~Secret.Value-000"
    async with credential_tokens(server, secret=wrong) as tokens:
        with pytest.raises(AuthError) as caught:
            await tokens.token("https://management.azure.com/.default")
    message = caught.value.message
    assert "AADSTS7000215: Invalid client secret provided." in message
    assert wrong not in message
    assert "Trace ID" not in message
    assert caught.value.code == "AADSTS7000215"


async def test_an_untrusted_certificate_is_a_permanent_error_that_names_the_ca_bundle(
    server: EmulatorServer, state: EmulatorState
) -> None:
    async with build_http_client() as untrusting:  # system CAs only: the emulator's CA is unknown
        client = signl4_client(server, untrusting)
        with pytest.raises(PermanentError, match=r"TLS handshake failed.*CA bundle"):
            await client.send_event(SignlRequest(external_id="s4s:tls:untrusted", title="x"))


async def test_a_dropped_socket_after_sending_is_outcome_unknown_and_the_signl_exists(
    server: EmulatorServer, state: EmulatorState, http: httpx.AsyncClient
) -> None:
    state.faults.add(FaultRule(path="/webhook/", method="POST", kind="reset", phase="after", count=1))
    stats = RetryStats()
    client = signl4_client(server, http, on_retry=stats)
    with pytest.raises(OutcomeUnknownError):
        await client.send_event(SignlRequest(external_id="s4s:tls:reset", title="dropped"))
    assert stats.retries == 0
    assert len(state.signl4.list_alerts(external_id="s4s:tls:reset")) == 1


async def test_a_read_timeout_after_sending_is_outcome_unknown(
    server: EmulatorServer, state: EmulatorState, http: httpx.AsyncClient
) -> None:
    state.faults.add(FaultRule(path="/webhook/", method="POST", kind="delay", phase="after", delay=1.0, count=1))
    client = signl4_client(server, http, timeout=httpx.Timeout(5.0, read=0.2))
    with pytest.raises(OutcomeUnknownError, match="ReadTimeout"):
        await client.send_event(SignlRequest(external_id="s4s:tls:slow", title="slow"))
    assert len(state.signl4.list_alerts(external_id="s4s:tls:slow")) == 1


async def test_no_secret_appears_in_any_error_message_or_repr(
    server: EmulatorServer, state: EmulatorState, http: httpx.AsyncClient
) -> None:
    """Collect every failure a misconfiguration produces, over the real wire, and look for the secrets."""
    secrets = [CLIENT_SECRET, TEAM_SECRET, API_KEY, "Wr0ngTeamSecret42", "Wr0ng-Api-Key-42", "Wr0ng~Client.Secret"]
    texts: list[str] = []

    async def failure(call: object) -> None:
        try:
            await call  # type: ignore[misc]
        except RemoteError as exc:
            texts.extend([exc.message, str(exc), repr(exc)])
            cause = exc.__cause__
            if isinstance(cause, RemoteError):
                texts.append(cause.message)
        else:
            raise AssertionError("expected a failure")

    wrong_secret = Signl4Client(http, webhook_url=f"{server.base_url}/webhook/Wr0ngTeamSecret42",
                                api_url=f"{server.base_url}/api", api_key="Wr0ng-Api-Key-42",
                                limiter=SlidingWindowLimiter(), retry=RetryPolicy())
    await failure(wrong_secret.send_event(SignlRequest(external_id="s4s:leak:1", title="x")))
    await failure(wrong_secret.list_users())
    wrong_via_api = Signl4Client(http, webhook_url=f"{server.base_url}/webhook/Wr0ngTeamSecret42",
                                 api_url=f"{server.base_url}/api", api_key=API_KEY, send_via="events_api",
                                 limiter=SlidingWindowLimiter(), retry=RetryPolicy())
    await failure(wrong_via_api.send_event(SignlRequest(external_id="s4s:leak:2", title="x")))
    state.faults.add(FaultRule(path="/webhook/", status=503, body={"message": f"echo {TEAM_SECRET}"}))
    good = signl4_client(server, http)
    await failure(good.send_event(SignlRequest(external_id="s4s:leak:3", title="x")))
    state.faults.clear()
    async with credential_tokens(server, secret="Wr0ng~Client.Secret") as bad_tokens:
        sentinel = SentinelClient(http, bad_tokens, arm_endpoint=server.base_url, subscription_id=SUBSCRIPTION,
                                  resource_group=RESOURCE_GROUP, workspace_name=WORKSPACE, retry=RetryPolicy())
        await failure(sentinel.check_access())
        texts.extend([repr(sentinel), repr(bad_tokens)])
    texts.extend([repr(good), repr(wrong_secret), repr(wrong_via_api), repr(good.redactor)])

    assert len(texts) > 10
    leaks = [(secret, text) for text in texts for secret in secrets if secret in text]
    assert leaks == []
    assert any("team secret not recognised" in text for text in texts)
