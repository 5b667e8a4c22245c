"""Clients against the emulators, in-process: ``httpx`` → ``EmulatorTransport`` → ``build_app(state)``.

Every test gets a fresh emulator world (one Entra app, one Sentinel workspace with the Responder role, one SIGNL4
subscription with a team, a webhook secret, an API key and two users), the real clients wired to it, and instant
retry sleeps whose planned delays are recorded in ``stats``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from fake_clock import FakeClock
from sentinel_signl4.clients.http import build_http_client
from sentinel_signl4.clients.identity import TokenProvider
from sentinel_signl4.clients.ratelimit import SlidingWindowLimiter
from sentinel_signl4.clients.retry import RetryPolicy, RetryStats, set_testing
from sentinel_signl4.clients.sentinel import SentinelClient
from sentinel_signl4.clients.signl4 import Signl4Client
from sentinel_signl4.errors import AuthError
from sentinel_signl4_emulators.app import EmulatorState, EmulatorTransport, build_app
from sentinel_signl4_emulators.sentinel.model import Role, Workspace

ORIGIN = "https://emulator.test"
TENANT = "7a2c1c5e-0f0b-4d3e-9a51-3c1c2f7b9e10"
CLIENT_ID = "5b1e9a40-2d6f-4a8e-b7c3-0e9d8f7a6b5c"
CLIENT_SECRET = "cl1ent~Secret.Value-0123456789"
SUBSCRIPTION = "d0cfe6b2-9ac0-4464-9919-dccaee2e48c0"
RESOURCE_GROUP = "rg-soc"
WORKSPACE = "ws-soc"
TEAM_SECRET = "tEamS3cretXyZ"
API_KEY = "ApiKey-7f3e9b1c2d4a"
ARM_SCOPE = "https://management.azure.com/.default"


class EmulatorTokenProvider(TokenProvider):
    """Client-credentials tokens from the emulator's Entra token endpoint, over the same transport.

    The wire flow is the real one (form POST to ``/{tenant}/oauth2/v2.0/token``); only azure-identity's aiohttp
    pipeline is bypassed, because it cannot use an in-process ASGI transport. The TLS test uses the real
    credential.
    """

    def __init__(self, http: httpx.AsyncClient, *, client_id: str = CLIENT_ID,
                 secret: str = CLIENT_SECRET) -> None:
        self._http = http
        self._client_id = client_id
        self._secret = secret
        self._cache: dict[str, str] = {}

    async def token(self, scope: str) -> str:
        if scope not in self._cache:
            response = await self._http.post(f"{ORIGIN}/{TENANT}/oauth2/v2.0/token", data={
                "client_id": self._client_id, "client_secret": self._secret,
                "grant_type": "client_credentials", "scope": scope})
            if response.status_code != 200:
                raise AuthError(f"entra: HTTP {response.status_code}", status=response.status_code)
            self._cache[scope] = response.json()["access_token"]
        return self._cache[scope]

    async def close(self) -> None:
        return None


@dataclass
class World:
    state: EmulatorState
    clock: FakeClock
    workspace: Workspace
    signl4_subscription: str
    team_id: str
    alice_id: str
    bob_id: str

    def incident(self, **kwargs: Any) -> dict[str, Any]:
        """Seed one incident in the workspace (severity High, status New, created now unless given)."""
        kwargs.setdefault("title", "Suspicious sign-in")
        kwargs.setdefault("severity", "High")
        return self.state.sentinel.create_incident(self.workspace.ref, **kwargs)


@pytest.fixture(autouse=True)
def instant_retries() -> Iterator[None]:
    set_testing(True)
    yield
    set_testing(False)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def state(clock: FakeClock) -> EmulatorState:
    return EmulatorState.new(clock=clock, fault_seed=1)


@pytest.fixture
def world(state: EmulatorState, clock: FakeClock) -> World:
    state.entra.register_app(TENANT, client_id=CLIENT_ID, secret=CLIENT_SECRET)
    workspace = state.sentinel.create_workspace(SUBSCRIPTION, RESOURCE_GROUP, WORKSPACE, tenant_id=TENANT)
    state.sentinel.assign_role(CLIENT_ID, workspace.ref, Role.RESPONDER)
    subscription = state.signl4.create_subscription()
    team = state.signl4.create_team(subscription.id, "SOC")
    state.signl4.add_team_secret(team.id, TEAM_SECRET)
    state.signl4.create_api_key(subscription.id, API_KEY)
    alice = state.signl4.create_user(subscription.id, "Alice", "alice@contoso.com", team_ids=[team.id])
    bob = state.signl4.create_user(subscription.id, "Bob", "bob@contoso.com", team_ids=[team.id])
    return World(state, clock, workspace, subscription.id, team.id, alice.id, bob.id)


@pytest.fixture
async def http(state: EmulatorState) -> AsyncIterator[httpx.AsyncClient]:
    client = build_http_client(transport=EmulatorTransport(build_app(state)))
    yield client
    await client.aclose()


@pytest.fixture
def sent(http: httpx.AsyncClient) -> list[httpx.Request]:
    """Every request the clients send (bodies included), in order."""
    requests: list[httpx.Request] = []

    async def record(request: httpx.Request) -> None:
        requests.append(request)

    http.event_hooks["request"].append(record)
    return requests


@pytest.fixture
def stats() -> RetryStats:
    return RetryStats()


@pytest.fixture
def tokens(http: httpx.AsyncClient, world: World) -> EmulatorTokenProvider:
    return EmulatorTokenProvider(http)


@pytest.fixture
def sentinel(http: httpx.AsyncClient, tokens: TokenProvider, stats: RetryStats) -> SentinelClient:
    return SentinelClient(
        http, tokens, arm_endpoint=ORIGIN, arm_scope=ARM_SCOPE, subscription_id=SUBSCRIPTION,
        resource_group=RESOURCE_GROUP, workspace_name=WORKSPACE, retry=RetryPolicy(), on_retry=stats,
    )


def fake_time_limiter(clock: FakeClock, limit: int = 140, window: float = 15.0) -> SlidingWindowLimiter:
    """A limiter living on the emulators' clock: its waits pass emulator time, not real time."""
    return SlidingWindowLimiter(limit, window, clock=clock.epoch, wall_clock=clock.epoch, sleep=clock.sleep)


def make_signl4(http: httpx.AsyncClient, clock: FakeClock, stats: RetryStats, **kwargs: Any) -> Signl4Client:
    kwargs.setdefault("webhook_url", f"{ORIGIN}/webhook/{TEAM_SECRET}")
    kwargs.setdefault("api_url", f"{ORIGIN}/api")
    kwargs.setdefault("api_key", API_KEY)
    kwargs.setdefault("limiter", fake_time_limiter(clock))
    kwargs.setdefault("retry", RetryPolicy())
    return Signl4Client(http, on_retry=stats, wall_clock=clock.epoch, **kwargs)


@pytest.fixture
def signl4(http: httpx.AsyncClient, world: World, clock: FakeClock, stats: RetryStats) -> Signl4Client:
    return make_signl4(http, clock, stats)
