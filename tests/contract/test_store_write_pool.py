"""SQLite: writes wait for the file lock on a connection and thread of their own (``store.transactions``), so reads
still answer while the writer is blocked, and the writes go through once the lock is free.

Another process holds the write lock (an outside ``sqlite3`` connection in ``BEGIN IMMEDIATE``); this store gets
more writes than its read threads and its writer together have connections: one waits in SQLite's busy handler on
the write connection, the others queue for the writer thread. The reads are answered while all of them are still
blocked (proved by their state, not by a clock), and every write lands after the lock is released. Writers that
waited on the read connections held every one of them and reads timed out; this test fails on that design.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.pool import QueuePool

from sentinel_signl4.domain.enums import ActionState
from sentinel_signl4.store import _sqlite
from sentinel_signl4.store.sql import SqlStateStore
from store_fixtures import make_action, make_link, open_sql_store, store_url_sqlite

DEADLINE = 60.0  # a guard against a hang, never reached when things work (a read of the old design fails at 30 s)
NOW = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
#: More writes than the read connections and the write connection together.
WRITES = _sqlite.READERS + 1 + 5
#: The write connections: one, used by the writer thread.
WRITERS = 1


def write_pool(store: SqlStateStore) -> QueuePool:
    """The pool behind the store's write transactions (SQLite: its own, one connection)."""
    pool = store._tx._writer.pool  # type: ignore[attr-defined]  # white-box: SQLite's ThreadedTransactions
    assert isinstance(pool, QueuePool)
    return pool


@pytest.fixture
def db_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    # Writers wait for the lock as long as the test holds it, instead of failing after the usual 5 s.
    monkeypatch.setattr(_sqlite, "BUSY_TIMEOUT_MS", 600_000)
    return tmp_path / "state.db"


@pytest.fixture
async def store(db_path: Path) -> AsyncIterator[SqlStateStore]:
    opened = open_sql_store(store_url_sqlite(db_path.parent, db_path.name))
    await opened.migrate()  # WAL: readers never wait for the writer
    yield opened
    await opened.close()


@pytest.fixture
def other_process_writing(db_path: Path) -> Iterator[sqlite3.Connection]:
    """A connection of another process's kind, holding SQLite's write lock until the test commits it."""
    conn = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)
    yield conn
    if conn.in_transaction:
        conn.execute("ROLLBACK")
    conn.close()


async def test_reads_answer_while_every_writer_waits_for_the_lock_and_the_writes_land_after_it(
        store: SqlStateStore, other_process_writing: sqlite3.Connection) -> None:
    await store.put_link(make_link("inc-1", external_id="ext-1"), NOW)
    await store.enqueue(make_action("raise:1", incident_id="inc-1"), NOW)
    await store.set_cursor("c1", "changes_since", "before")
    other_process_writing.execute("BEGIN IMMEDIATE")
    other_process_writing.execute(
        "INSERT INTO cursors (connector, name, value) VALUES ('c1', 'other_process', 'held the lock')")

    async with asyncio.timeout(DEADLINE):
        writes = [asyncio.create_task(store.set_cursor("c1", f"w{n}", f"written {n}")) for n in range(WRITES)]
        while write_pool(store).checkedout() < WRITERS:
            assert not any(w.done() for w in writes), "a write went through while another process held the lock"
            await asyncio.sleep(0.01)
        assert write_pool(store).checkedout() == WRITERS

        # Every write connection is taken and waiting for the lock, more writes queue behind them: reads answer.
        assert await store.get_cursor("c1", "changes_since") == "before"
        link = await store.get_link("c1", "inc-1")
        assert link is not None and link.external_id == "ext-1"
        assert set(await store.links_for("c1", ["inc-1", "inc-2"])) == {"inc-1"}
        health = await store.outbox_health("c1")
        assert health.open_raises == 1 and health.oldest_pending_at == NOW
        assert [a.key for a in await store.due_actions("c1", NOW, 10)] == ["raise:1"]
        assert (await store.count_actions("c1"))[ActionState.PENDING] == 1
        await store.ping()
        assert not any(w.done() for w in writes), "a write went through while another process held the lock"
        assert write_pool(store).checkedout() == WRITERS

        other_process_writing.execute("COMMIT")
        await asyncio.gather(*writes)

    for n in range(WRITES):
        assert await store.get_cursor("c1", f"w{n}") == f"written {n}"
    assert await store.get_cursor("c1", "other_process") == "held the lock"
    assert write_pool(store).checkedout() == 0


async def test_a_write_that_waited_past_the_queue_timeout_fails_without_running(
        store: SqlStateStore, monkeypatch: pytest.MonkeyPatch) -> None:
    from sqlalchemy.exc import TimeoutError as PoolTimeoutError

    tx = store._tx
    monkeypatch.setattr(tx, "_queue_timeout", 0.05)  # white-box: the writer's queue limit (120 s in production)
    busy, release = threading.Event(), threading.Event()
    ran: list[str] = []

    def hold(_conn: object) -> None:
        busy.set()
        release.wait(DEADLINE)
        ran.append("first")

    def second(_conn: object) -> None:
        ran.append("second")

    first = asyncio.create_task(tx.write(hold))
    await asyncio.to_thread(busy.wait, DEADLINE)
    late = asyncio.create_task(tx.write(second))
    await asyncio.sleep(0.2)  # the second write waits behind the first for longer than the limit
    release.set()
    await first
    with pytest.raises(PoolTimeoutError, match=r"waited .* for this process.s SQLite writer"):
        await late
    assert ran == ["first"]
    await store.set_cursor("c1", "after", "the writer goes on")  # the next write runs (it did not wait)
    assert await store.get_cursor("c1", "after") == "the writer goes on"


async def test_a_write_whose_caller_stopped_waiting_still_commits_as_a_whole(
        store: SqlStateStore, other_process_writing: sqlite3.Connection) -> None:
    # store.transactions: a body that started runs to its end (like a statement already sent to a server); the
    # caller that was cancelled sees nothing, the next reader sees all of it or, had it failed, none of it.
    await store.enqueue(make_action("raise:1", incident_id="inc-1"), NOW)
    other_process_writing.execute("BEGIN IMMEDIATE")
    write = asyncio.create_task(store.complete("raise:1", NOW, {"event_id": "ev-1"},
                                               link=make_link("inc-1", external_id="ext-1")))
    while write_pool(store).checkedout() < WRITERS:  # the write started: it waits for the lock in the writer thread
        assert not write.done()
        await asyncio.sleep(0.01)
    write.cancel()
    with pytest.raises(asyncio.CancelledError):
        await write
    assert await store.get_link("c1", "inc-1") is None  # not committed yet: the lock is still held
    other_process_writing.execute("COMMIT")
    async with asyncio.timeout(DEADLINE):
        while write_pool(store).checkedout():  # until the writer thread has finished the cancelled caller's body
            assert not other_process_writing.in_transaction
            await asyncio.sleep(0.01)
    assert await store.get_link("c1", "inc-1") is not None
    done = await store.get_action("raise:1")
    assert done is not None and done.state is ActionState.DONE  # the row and its link, in one transaction
