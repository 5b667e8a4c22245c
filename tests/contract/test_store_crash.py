"""Durability: a completed write survives ``kill -9`` of the process that made it (SQLite, WAL + NORMAL).

PostgreSQL's durability is the server's business; the store's part there is that ``complete()`` is one
transaction, which the contract suite checks.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from sentinel_signl4.domain.enums import ActionState
from store_fixtures import open_sql_store, store_url_sqlite

pytestmark = pytest.mark.slow

_WRITER = textwrap.dedent("""
    import asyncio, sys
    from datetime import UTC, datetime
    from sentinel_signl4.domain.enums import ActionKind
    from sentinel_signl4.store.base import Link, OutboxAction
    from sentinel_signl4.store.factory import open_store

    async def write(store, i, now):
        key = f"raise:{i}"
        await store.enqueue(OutboxAction(key=key, connector="c1", kind=ActionKind.RAISE_SIGNL,
                                         incident_id=f"i{i}", payload={"n": i}), now)
        await store.mark_in_flight(key, now)
        await store.complete(key, now, {"eventId": f"e{i}"},
                             link=Link("c1", f"i{i}", f"ext{i}", i, event_id=f"e{i}"))

    async def main(url):
        store = open_store(url)
        await store.migrate()
        now = datetime.now(UTC)
        for i in range(20):
            await write(store, i, now)
        print("ready", flush=True)
        i = 20
        while True:  # keep writing until killed: the kill lands in the middle of some transaction
            await write(store, i, now)
            print(f"done {i}", flush=True)
            i += 1

    asyncio.run(main(sys.argv[1]))
""")


def _run_and_kill(url: str) -> set[int]:
    """Start the writer, kill -9 it a few commits after "ready"; return the writes it reported complete."""
    child = subprocess.Popen([sys.executable, "-c", _WRITER, url], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    assert child.stdout is not None
    try:
        reported: set[int] = set()
        for line in child.stdout:
            if line.strip() == "ready":
                reported.update(range(20))
            elif line.startswith("done "):
                reported.add(int(line.split()[1]))
                if len(reported) >= 25:
                    break
        os.kill(child.pid, signal.SIGKILL)
        _, stderr = child.communicate(timeout=10)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == -signal.SIGKILL, stderr
    assert len(reported) >= 25, stderr
    return reported


async def test_completed_writes_survive_kill_9(tmp_path: Path) -> None:
    url = store_url_sqlite(tmp_path)
    reported = await asyncio.to_thread(_run_and_kill, url)

    store = open_sql_store(url)
    try:
        for i in sorted(reported):
            row = await store.get_action(f"raise:{i}")
            assert row is not None, i
            assert row.state is ActionState.DONE, i
            assert row.result == {"eventId": f"e{i}"}
            link = await store.get_link("c1", f"i{i}")
            assert link is not None, i
            assert link.event_id == f"e{i}"
        # Whatever the kill interrupted is either fully there or not at all: never DONE without its link.
        for row in await store.list_actions("c1", limit=10_000):
            if row.state is ActionState.DONE:
                assert await store.get_link("c1", row.incident_id) is not None, row.key
    finally:
        await store.close()
    db = sqlite3.connect(tmp_path / "state.db")
    try:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    finally:
        db.close()
