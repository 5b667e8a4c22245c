"""LogAnalyticsClient: azure-monitor-query's real async LogsQueryClient (its own aiohttp transport, unchanged)
against the emulator over HTTPS, with the real azure-identity credential — the production wiring."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta

import pytest

from sentinel_signl4.clients.identity import TokenProvider, build_credential
from sentinel_signl4.clients.loganalytics import LogAnalyticsClient, QueryGate
from sentinel_signl4.clients.retry import NO_RETRY
from sentinel_signl4.config.signl_content import DEFAULT_COLUMNS, DEFAULT_QUERY
from sentinel_signl4.engine.enrich import build_query
from sentinel_signl4.errors import AuthError, NotFoundError, PermanentError, RateLimitedError, RemoteError
from sentinel_signl4_emulators.app import EmulatorState
from sentinel_signl4_emulators.loganalytics.model import Fault, FaultKind
from sentinel_signl4_emulators.seed import DemoWorld, seed_demo
from sentinel_signl4_emulators.server import EmulatorServer
from spec_validation import schema_errors

LA = "loganalytics-query-v1.schema.json"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorServer]:
    with EmulatorServer(EmulatorState.new(), tmp_path_factory.mktemp("certs")) as running:
        yield running


@pytest.fixture
def world(server: EmulatorServer) -> DemoWorld:
    server.state.reset()
    return seed_demo(server.state, datetime.now(UTC))


@pytest.fixture
async def tokens(server: EmulatorServer, world: DemoWorld) -> AsyncIterator[TokenProvider]:
    credential = build_credential(kind="client_secret", tenant_id=world.tenant_id, client_id=world.client_id,
                                  secret=world.client_secret, authority_host=server.base_url,
                                  ca_bundle=str(server.ca_path))
    async with TokenProvider(credential, secrets=(world.client_secret,)) as provider:
        yield provider


def client(server: EmulatorServer, tokens: TokenProvider, world: DemoWorld, **kwargs: object) -> LogAnalyticsClient:
    kwargs.setdefault("retry", NO_RETRY)
    return LogAnalyticsClient(tokens, workspace_id=str(kwargs.pop("workspace_id", world.workspace_id)),
                              endpoint=server.base_url, ca_bundle=str(server.ca_path), **kwargs)  # type: ignore[arg-type]


def default_query(server: EmulatorServer, world: DemoWorld) -> str:
    ids = [a.system_alert_id for name in world.incident_names
           for a in server.state.sentinel.alerts(world.workspace, name)]
    return build_query(DEFAULT_QUERY, system_alert_ids=ids, columns=DEFAULT_COLUMNS, max_rows=500)


async def test_default_query_returns_typed_rows_and_the_request_matches_the_spec(
        server: EmulatorServer, tokens: TokenProvider, world: DemoWorld) -> None:
    logs = client(server, tokens, world)
    end = datetime.now(UTC)
    try:
        result = await logs.query(default_query(server, world), start=end - timedelta(days=3), end=end,
                                  server_timeout=7)
    finally:
        await logs.close()
    assert result.partial_error is None
    assert result.columns == ("SystemAlertId", *DEFAULT_COLUMNS)
    seeded = {a.system_alert_id: a for name in world.incident_names
              for a in server.state.sentinel.alerts(world.workspace, name)}
    assert {row["SystemAlertId"] for row in result.rows} == set(seeded)
    first = result.rows[0]
    assert isinstance(first["TimeGenerated"], datetime)  # the SDK types datetime cells
    assert first["AlertName"] == seeded[first["SystemAlertId"]].display_name
    times = [row["TimeGenerated"] for row in result.rows]
    assert times == sorted(times, reverse=True)
    (record,) = server.state.loganalytics.records()
    assert record.prefer == "wait=7"
    assert record.timespan is not None and record.timespan.count("/") == 1  # start/end, from our (start, end)
    body = dict(record.body or {})
    # The SDK sends "workspaces": null, which the spec's QueryBody (an array) does not allow; the service accepts
    # it. Everything else validates.
    assert body.pop("workspaces") is None
    assert schema_errors(body, "QueryBody", bundle=LA) == []


async def test_a_partial_result_keeps_its_rows_and_says_so(server: EmulatorServer, tokens: TokenProvider,
                                                           world: DemoWorld) -> None:
    server.state.loganalytics.inject(Fault(FaultKind.PARTIAL))
    logs = client(server, tokens, world)
    end = datetime.now(UTC)
    try:
        result = await logs.query(default_query(server, world), start=end - timedelta(days=3), end=end)
    finally:
        await logs.close()
    assert result.rows and result.partial_error is not None
    assert result.partial_error.startswith("PartialError")


@pytest.mark.parametrize(("fault", "error", "status", "code"), [
    (Fault(FaultKind.BAD_QUERY), PermanentError, 400, "BadArgumentError"),
    (Fault(FaultKind.THROTTLE, retry_after=7), RateLimitedError, 429, "ThrottledError"),
])
async def test_failures_become_typed_errors(server: EmulatorServer, tokens: TokenProvider, world: DemoWorld,
                                            fault: Fault, error: type[RemoteError], status: int, code: str) -> None:
    server.state.loganalytics.inject(fault)
    logs = client(server, tokens, world)
    end = datetime.now(UTC)
    try:
        with pytest.raises(error) as caught:
            await logs.query("SecurityAlert | take 1", start=end - timedelta(hours=1), end=end)
    finally:
        await logs.close()
    assert (caught.value.status, caught.value.code) == (status, code)
    if isinstance(caught.value, RateLimitedError):
        assert caught.value.retry_after == 7
    assert world.client_secret not in str(caught.value)


async def test_a_rejected_query_names_the_engine_error(server: EmulatorServer, tokens: TokenProvider,
                                                       world: DemoWorld) -> None:
    logs = client(server, tokens, world)
    end = datetime.now(UTC)
    try:
        with pytest.raises(PermanentError, match="Failed to resolve scalar expression named 'Nope'"):
            await logs.query("SecurityAlert | where Nope == 1", start=end - timedelta(hours=1), end=end)
    finally:
        await logs.close()


async def test_access_problems_are_auth_and_not_found_errors(server: EmulatorServer, tokens: TokenProvider,
                                                             world: DemoWorld) -> None:
    outsider = server.state.entra.register_app(world.tenant_id, display_name="no-role", secret="outsider-secret-1")
    credential = build_credential(kind="client_secret", tenant_id=world.tenant_id, client_id=outsider.client_id,
                                  secret="outsider-secret-1", authority_host=server.base_url,
                                  ca_bundle=str(server.ca_path))
    async with TokenProvider(credential) as outsider_tokens:
        denied = client(server, outsider_tokens, world)
        try:
            with pytest.raises(AuthError) as caught:
                await denied.check_access()
            message = str(caught.value)
            assert "InsufficientAccessError" in message
            # The query API does not name the action: every action the check's query needs is.
            for action in ("Microsoft.OperationalInsights/workspaces/query/read",
                           "Microsoft.OperationalInsights/workspaces/query/SecurityAlert/read"):
                assert action in message
            assert "sentinel-signl4 provision apply" in message and "Log Analytics Reader" not in message
        finally:
            await denied.close()
    missing = client(server, tokens, world, workspace_id="00000000-0000-0000-0000-000000000000")
    try:
        with pytest.raises(NotFoundError):
            await missing.check_access()
    finally:
        await missing.close()
    allowed = client(server, tokens, world)
    try:
        await allowed.check_access()
    finally:
        await allowed.close()


async def test_the_gate_keeps_a_principal_within_five_concurrent_queries(server: EmulatorServer,
                                                                         tokens: TokenProvider,
                                                                         world: DemoWorld) -> None:
    server.state.loganalytics.latency = 0.05
    gate = QueryGate()
    logs = client(server, tokens, world, gate=gate)
    end = datetime.now(UTC)
    try:
        results = await asyncio.gather(*(logs.query("SecurityAlert | take 1", start=end - timedelta(days=1),
                                                    end=end) for _ in range(12)))
    finally:
        await logs.close()
    assert all(len(r.rows) == 1 for r in results)
    assert gate.max_in_flight == 5
    assert server.state.loganalytics.max_concurrent_seen <= 5
    assert len(server.state.loganalytics.records()) == 12
