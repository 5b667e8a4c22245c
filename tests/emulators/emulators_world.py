"""Fixtures for the emulator tests: a seeded world in-process (``client``) and over HTTPS (``https_world``).

In-process tests talk to ``build_app(state)`` through :class:`EmulatorTransport` at ``https://management.azure.com``
(the origin the app sees is whatever the request names). TLS, uvicorn and azure-identity tests share one HTTPS
server per module.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from fake_clock import START, FakeClock
from graph_world import GraphCaller, graph_token, seed_graph_world
from sentinel_signl4_emulators.app import EmulatorState, EmulatorTransport, build_app
from sentinel_signl4_emulators.seed import DemoWorld, make_certificate, seed_demo
from sentinel_signl4_emulators.server import EmulatorServer

ARM = "https://management.azure.com"
LOGIN = "https://login.microsoftonline.com"
ARM_SCOPE = "https://management.azure.com/.default"
API_VERSION = "2025-09-01"


@dataclass
class Arm:
    """A signed-in ARM caller for the seeded workspace."""

    http: httpx.AsyncClient
    world: DemoWorld
    token: str

    @property
    def incidents_url(self) -> str:
        return f"{ARM}{self.world.workspace.resource_id}/providers/Microsoft.SecurityInsights/incidents"

    def incident_url(self, name: str) -> str:
        return f"{self.incidents_url}/{name}"

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    async def get(self, url: str, **params: str) -> httpx.Response:
        return await self.http.get(url, params={"api-version": API_VERSION, **params}, headers=self.auth)

    async def put(self, url: str, body: dict[str, Any]) -> httpx.Response:
        return await self.http.put(url, params={"api-version": API_VERSION}, json=body, headers=self.auth)

    async def post(self, url: str) -> httpx.Response:
        return await self.http.post(url, params={"api-version": API_VERSION}, headers=self.auth)


async def get_token(http: httpx.AsyncClient, world: DemoWorld, *, client_id: str | None = None,
                    secret: str | None = None, scope: str = ARM_SCOPE) -> str:
    """A client-credentials token from the emulated Entra ID (the wire flow azure-identity uses)."""
    response = await http.post(f"{LOGIN}/{world.tenant_id}/oauth2/v2.0/token", data={
        "client_id": client_id or world.client_id, "client_secret": secret or world.client_secret,
        "grant_type": "client_credentials", "scope": scope})
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


@pytest.fixture
async def graph(state: EmulatorState, http: httpx.AsyncClient) -> GraphCaller:
    """A Graph caller (the writer app's token) for the seeded Graph world."""
    seed_graph_world(state)
    return GraphCaller(http, await graph_token(http))


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def state(clock: FakeClock) -> EmulatorState:
    return EmulatorState.new(clock=clock)


@pytest.fixture(scope="session")
def demo_certificate() -> tuple[bytes, str]:
    """One RSA certificate credential for every seeded world (key generation dominates seeding time)."""
    return make_certificate("sentinel-signl4-test", START)


@pytest.fixture
def world(state: EmulatorState, clock: FakeClock, demo_certificate: tuple[bytes, str]) -> DemoWorld:
    return seed_demo(state, clock(), certificate=demo_certificate)


@pytest.fixture
async def http(state: EmulatorState) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=EmulatorTransport(build_app(state)), base_url=ARM) as client:
        yield client


@pytest.fixture
async def arm(http: httpx.AsyncClient, world: DemoWorld) -> Arm:
    return Arm(http, world, await get_token(http, world))


@dataclass
class HttpsWorld:
    server: EmulatorServer
    state: EmulatorState
    world: DemoWorld

    @property
    def ca(self) -> str:
        return str(self.server.ca_path)


@pytest.fixture(scope="module")
def https_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HttpsWorld]:
    state = EmulatorState.new()
    world = seed_demo(state, datetime.now(UTC))
    with EmulatorServer(state, tmp_path_factory.mktemp("certs")) as server:
        yield HttpsWorld(server, state, world)
