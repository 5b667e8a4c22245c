"""Engine tests: the engine's logic on in-memory fakes of its ports and a SQLite store in the test's directory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from engine_world import EngineWorld

from sentinel_signl4.store import StateStore
from sentinel_signl4.store.factory import open_store


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[StateStore]:
    opened = open_store(f"sqlite:///{tmp_path / 'state.db'}")
    await opened.migrate()
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
def world(store: StateStore) -> EngineWorld:
    return EngineWorld(store)
