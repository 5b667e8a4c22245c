"""Whole-connector tests: the real connector (config → bootstrap → engine → clients → azure-identity) against the
emulators over real HTTPS with a generated CA."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from integration_harness import Harness
from sentinel_signl4.clients.ratelimit import reset_limiters
from sentinel_signl4.clients.retry import set_testing
from sentinel_signl4.clients.sentinel_budget import reset_sentinel_budgets
from sentinel_signl4_emulators.app import EmulatorState
from sentinel_signl4_emulators.seed import seed_demo
from sentinel_signl4_emulators.server import EmulatorServer


@pytest.fixture(scope="session")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorServer]:
    state = EmulatorState.new()
    with EmulatorServer(state, tmp_path_factory.mktemp("emulator-certs")) as server:
        yield server


@pytest.fixture(autouse=True)
def _instant_retries() -> Iterator[None]:
    set_testing(True)
    reset_limiters()
    reset_sentinel_budgets()
    yield
    set_testing(False)
    reset_limiters()
    reset_sentinel_budgets()


@pytest.fixture
async def harness(emulator: EmulatorServer, tmp_path: Path) -> AsyncIterator[Harness]:
    emulator.state.reset()
    world = seed_demo(emulator.state, datetime.now(UTC))
    h = Harness(emulator, world, tmp_path)
    yield h
    for runtime in h.runtimes:
        await runtime.aclose()
    emulator.state.faults.clear()
