"""How the SQL store runs a transaction: a synchronous body on a SQLAlchemy ``Connection``, run as one unit.

``SqlStateStore`` writes every operation as a plain function of a ``Connection`` (the ``Body``), and hands it to
one of three doors: ``read`` (several statements that must agree), ``read_one`` (one statement) and ``write``.
What happens behind the door depends on the driver:

* ``ThreadedTransactions`` (SQLite): the whole body runs in a worker thread on the ``sqlite3`` module's own
  connection, one hand-off per transaction. Through aiosqlite, every statement was a round trip between the event
  loop and the connection's thread (BEGIN, execute, fetch, close, COMMIT, the pool's reset: nine or more per
  transaction), and those hand-offs were most of the CPU a connector cycle spent on its store, and most of its
  store's latency once the loop was busy. Reads get a few threads with a connection each; writes get one thread
  and one connection, so this process's writers queue first come first served without taking the connections
  reads need (in WAL, reads never wait for the writer), and without waiting in SQLite's busy handler for each
  other. ``busy_timeout`` still applies to another process holding the write lock (replicas on one file).
* ``AsyncTransactions`` (PostgreSQL on asyncpg): the body runs through ``AsyncConnection.run_sync``, on the event
  loop, each statement awaited inside SQLAlchemy's greenlet.

A body that was started runs to its end even if the awaiting task is cancelled (a thread cannot be interrupted):
like a statement already sent to a database server, its commit may land after the caller stopped waiting. Every
caller already treats a store call whose answer it did not see as "maybe done": an outbox row left in flight is
reconciled as in doubt before a re-send.
"""

from __future__ import annotations

import asyncio
import functools
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, TypeVar

from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = ["AsyncTransactions", "Body", "ThreadedTransactions", "Transactions"]

T = TypeVar("T")
Body = Callable[[Connection], T]


class Transactions(ABC):
    """The three doors of the SQL store (see the module docstring).

    ``dialect`` is ``"sqlite"`` or ``"postgresql"``; ``url`` the engine's URL (with the password: never shown,
    ``SqlStateStore`` shows a redacted one).
    """

    def __init__(self, engine: Engine | AsyncEngine) -> None:
        self.dialect: str = engine.dialect.name
        self.url: URL = engine.url

    @abstractmethod
    async def read(self, body: Body[T]) -> T:
        """``body`` in one read transaction: its statements see one snapshot."""

    @abstractmethod
    async def read_one(self, body: Body[T]) -> T:
        """``body`` of a single SELECT (on SQLite without BEGIN/COMMIT: one statement is its own snapshot)."""

    @abstractmethod
    async def write(self, body: Body[T]) -> T:
        """``body`` in one write transaction, committed when it returns, rolled back when it raises."""

    @abstractmethod
    async def migrate(self, body: Body[None]) -> None:
        """``body`` (the schema upgrade) in one write transaction, after what the driver needs first."""

    @abstractmethod
    async def dispose(self) -> None:
        """Close every connection (and thread)."""


def _begin(engine: Engine, body: Body[T]) -> T:
    with engine.begin() as conn:
        return body(conn)


class ThreadedTransactions(Transactions):
    """SQLite: bodies run in worker threads on synchronous ``sqlite3`` connections.

    ``reader``/``single_reader``/``writer`` are engines configured by ``store._sqlite`` (their BEGIN modes);
    ``readers`` threads share ``reader``'s pool (as many connections); one thread runs every write, on ``writer``'s
    single connection. ``before_migrate`` runs in the writer's thread before the schema upgrade (the switch to WAL).
    ``queue_timeout``: a write that waited this long for the writer thread (the writes before it, stuck behind
    another process's lock) fails with the pool's ``TimeoutError`` instead of running late.
    """

    def __init__(self, *, reader: Engine, single_reader: Engine, writer: Engine, readers: int,
                 queue_timeout: float, before_migrate: Callable[[Engine], None] | None = None) -> None:
        super().__init__(reader)
        self._reader = reader
        self._single_reader = single_reader
        self._writer = writer
        self._queue_timeout = queue_timeout
        self._before_migrate = before_migrate
        self._readers = readers
        self._reads: ThreadPoolExecutor | None = None
        self._writes: ThreadPoolExecutor | None = None

    def _read_threads(self) -> ThreadPoolExecutor:
        if self._reads is None:  # made on first use, and again after ``dispose``
            self._reads = ThreadPoolExecutor(max_workers=self._readers, thread_name_prefix="s4s-sqlite-read")
        return self._reads

    def _write_thread(self) -> ThreadPoolExecutor:
        if self._writes is None:
            self._writes = ThreadPoolExecutor(max_workers=1, thread_name_prefix="s4s-sqlite-write")
        return self._writes

    async def read(self, body: Body[T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._read_threads(), _begin, self._reader, body)

    async def read_one(self, body: Body[T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._read_threads(), _begin, self._single_reader,
                                                                    body)

    async def write(self, body: Body[T]) -> T:
        queued = time.monotonic()
        return await asyncio.get_running_loop().run_in_executor(
            self._write_thread(), functools.partial(self._write_now, body, queued))

    def _write_now(self, body: Body[T], queued: float) -> T:
        waited = time.monotonic() - queued
        if waited > self._queue_timeout:
            raise PoolTimeoutError(f"this write waited {waited:.0f} s for this process's SQLite writer (the writes "
                                   "before it wait for the database's write lock); it was not run")
        return _begin(self._writer, body)

    async def migrate(self, body: Body[None]) -> None:
        def run() -> None:
            if self._before_migrate is not None:
                self._before_migrate(self._writer)
            _begin(self._writer, body)
        await asyncio.get_running_loop().run_in_executor(self._write_thread(), run)

    async def dispose(self) -> None:
        executors = [e for e in (self._reads, self._writes) if e is not None]
        self._reads = self._writes = None  # a later call starts new threads (an engine is usable after dispose)

        def close() -> None:
            # Bodies already queued finish first; then the pools' connections are closed.
            for executor in executors:
                executor.shutdown(wait=True)
            self._reader.dispose()
            self._writer.dispose()
        await asyncio.to_thread(close)


class AsyncTransactions(Transactions):
    """PostgreSQL: bodies run through ``AsyncConnection.run_sync`` on the asyncio engine (asyncpg)."""

    def __init__(self, engine: AsyncEngine) -> None:
        super().__init__(engine)
        self._engine = engine

    async def read(self, body: Body[T]) -> T:
        async with self._engine.begin() as conn:
            return await conn.run_sync(body)

    async def read_one(self, body: Body[T]) -> T:
        return await self.read(body)

    async def write(self, body: Body[T]) -> T:
        return await self.read(body)

    async def migrate(self, body: Body[None]) -> None:
        await self.write(body)

    async def dispose(self) -> None:
        await self._engine.dispose()
