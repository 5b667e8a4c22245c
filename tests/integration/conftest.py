"""Whole-connector tests: the real connector (config → bootstrap → engine → clients → azure-identity) against the
emulators over real HTTPS with a generated CA."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from sentinel_signl4.bootstrap import Runtime, build_runtime
from sentinel_signl4.clients.ratelimit import reset_limiters
from sentinel_signl4.clients.retry import set_testing
from sentinel_signl4.config import Config, parse_config
from sentinel_signl4.emulators.app import EmulatorState
from sentinel_signl4.emulators.connector_config import emulator_config
from sentinel_signl4.emulators.seed import DemoWorld, seed_demo
from sentinel_signl4.emulators.server import EmulatorServer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


@pytest.fixture(scope="session")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorServer]:
    state = EmulatorState.new()
    with EmulatorServer(state, tmp_path_factory.mktemp("emulator-certs")) as server:
        yield server


@pytest.fixture(autouse=True)
def _instant_retries() -> Iterator[None]:
    set_testing(True)
    reset_limiters()
    yield
    set_testing(False)
    reset_limiters()


@dataclass
class Harness:
    server: EmulatorServer
    world: DemoWorld
    tmp: Path
    runtimes: list[Runtime] = field(default_factory=list)

    @property
    def state(self) -> EmulatorState:
        return self.server.state

    def config_text(self, **kwargs: Any) -> str:
        kwargs.setdefault("store_url", f"sqlite:///{self.tmp / 'state.db'}")
        return emulator_config(self.world, self.server.base_url, ca_path=self.server.ca_path, **kwargs)

    def config(self, **kwargs: Any) -> Config:
        return parse_config(self.config_text(**kwargs), source="test.toml")

    async def runtime(self, **kwargs: Any) -> Runtime:
        runtime = await build_runtime(self.config(**kwargs))
        self.runtimes.append(runtime)
        return runtime

    def alerts(self, external_id: str | None = None) -> list[Any]:
        return self.state.signl4.list_alerts(external_id=external_id)

    def incidents(self) -> list[dict[str, Any]]:
        return self.state.sentinel.list_incidents(self.world.workspace)

    def incident(self, name: str) -> dict[str, Any]:
        return self.state.sentinel.get_incident(self.world.workspace, name)


@pytest.fixture
async def harness(emulator: EmulatorServer, tmp_path: Path) -> AsyncIterator[Harness]:
    emulator.state.reset()
    world = seed_demo(emulator.state, datetime.now(UTC))
    h = Harness(emulator, world, tmp_path)
    yield h
    for runtime in h.runtimes:
        await runtime.aclose()
    emulator.state.faults.clear()
