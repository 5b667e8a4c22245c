"""The SQLite file deleted or replaced under a running ``sentinel-signl4 run``: the connector reports
``StoreReplacedError`` with the path instead of carrying on in a new, empty database, and the webhook receiver
answers 503 to every SIGNL4 event it can no longer write (so SIGNL4 delivers it again later) instead of accepting it
into a file that is gone. Nothing is written into a file that replaced the store.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from crash_support import Scenario, free_port
from integration_harness import Harness
from sentinel_signl4.store.factory import open_store

pytestmark = pytest.mark.slow

TOKEN = "store-replaced-webhook-token-0123456789"
ONLY_SEEDED = {"severities": ["High"], "max_age": "15m"}
MESSAGE = "was deleted or replaced while running"


@pytest.fixture
async def running(harness: Harness) -> AsyncIterator[tuple[Scenario, int]]:
    now = datetime.now(UTC)
    names = [harness.state.sentinel.create_incident(
        harness.world.workspace, title="Store replaced", severity="High",
        created=now - timedelta(minutes=3))["name"]]
    port = free_port()
    config = harness.tmp / "config.toml"
    config.write_text(harness.config_text(
        server={"host": "127.0.0.1", "port": port},
        overrides={"filter": ONLY_SEEDED, "connector": {"poll_interval": "0.5s"},
                   "sync": {"mode": "webhook", "webhook_token": TOKEN}},
        extra_tables="[connectors.enrichment]\nenabled = false\n"), encoding="utf-8")
    store = open_store(f"sqlite:///{harness.tmp / 'state.db'}")
    scenario = Scenario(harness, store, config, names)
    try:
        yield scenario, port
    finally:
        await scenario.close()


async def _post(port: int, body: dict[str, Any]) -> int:
    async with httpx.AsyncClient(timeout=30) as client:
        response = await client.post(f"http://127.0.0.1:{port}/webhooks/signl4/contoso/{TOKEN}", json=body)
    return response.status_code


def _delete(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def _tables(path: Path) -> list[str]:
    """The tables in the file at ``path``, read with plain sqlite3 (without the store's hooks)."""
    if not path.exists():
        return []
    with sqlite3.connect(path) as conn:
        return [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]


@pytest.mark.parametrize("how", ["deleted", "replaced"])
async def test_a_store_file_deleted_or_replaced_under_run_is_reported_and_never_written(
        running: tuple[Scenario, int], how: str) -> None:
    s, port = running
    h = s.harness
    path = h.tmp / "state.db"
    proc = s.start()
    await s.wait_until("the incident paged and the outbox quiet",
                       lambda: _paged_and_quiet(s), proc=proc)
    alert = h.alerts()[0]
    h.state.signl4.acknowledge(alert.id, h.world.users[0].mail)
    first, *_ = [n for n in h.state.signl4.notifications() if n.get("eventType") == 201]
    assert await _post(port, first) == 202  # written: the receiver works
    await s.store.close()  # the test's own reader lets go of the file

    await asyncio.to_thread(_delete, path)
    if how == "replaced":
        other = open_store(f"sqlite:///{path}")
        await other.migrate()  # a new, valid, empty store at the same path
        await other.close()
    later = {**first, "id": f"{first['id']}-later"}

    # Refused, not accepted into a file that is gone or is another store: SIGNL4 will deliver it again.
    assert await _post(port, later) == 503
    await s.wait_until("the connector to report the replaced store", lambda: MESSAGE in s.log_tail(200), proc=proc)
    assert str(path) in s.log_tail(200)
    assert await _post(port, later) == 503  # and it stays refused

    if how == "replaced":
        replacement = open_store(f"sqlite:///{path}")
        try:
            assert await replacement.pending_inbox("contoso", 10) == []
            assert await replacement.list_actions("contoso") == []
            assert await replacement.open_links("contoso") == []
        finally:
            await replacement.close()
    else:
        assert _tables(path) == [], "the running process created a new database where the store was"


async def _paged_and_quiet(s: Scenario) -> bool:
    return len(s.harness.alerts()) == 1 and await s.quiescent()
