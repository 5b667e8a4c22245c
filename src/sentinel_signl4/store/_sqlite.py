"""Everything SQLite-specific about the SQL store: connection pragmas, our own BEGIN, and the switch to WAL.

* Per connection (``connect`` hook): ``busy_timeout``, ``synchronous=NORMAL``, ``foreign_keys=ON``, and
  transaction control taken away from the ``sqlite3`` module.
* Per transaction (``begin`` hook): ``BEGIN DEFERRED`` for reads, ``BEGIN IMMEDIATE`` on the write engine, none on
  the single-statement read engine (``single_read_engine``: one SELECT is its own snapshot in SQLite's autocommit
  mode, so the BEGIN/COMMIT round trips are saved), after
  ``FileGuard.check``: the path must still name the file the store first opened (one ``stat`` per transaction).
  Deleted or replaced under a running process, the store raises ``StoreReplacedError`` instead of carrying on
  in a new, empty database (pooled connections would keep writing into the unlinked file, new ones into the
  empty one, and a restart would find neither the links nor the webhook events accepted meanwhile).
* Per process: ``READERS`` read connections and one write connection, each used by a worker thread of its own
  (``store.transactions.ThreadedTransactions``): this process's writes queue for the one writer thread and never
  take the connections reads need; reads, in WAL, never wait for a writer.
* Per database file (``ensure_wal``, run by ``migrate()``): ``journal_mode=WAL``, which SQLite stores in the
  file, so it is done once, with retries, rather than on every connection.

Durability: WAL + ``synchronous=NORMAL`` means a transaction whose commit returned survives a *process* crash
(kill -9, OOM kill): its pages are in the WAL file in the OS page cache and are replayed on the next open. An OS
crash or power loss can lose the last transactions (the WAL is fsynced at checkpoints, not at every commit),
but never corrupts the database. ``synchronous=FULL`` would close that window at the cost of an fsync per commit.
"""

from __future__ import annotations

import os
import sqlite3
import time
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from sentinel_signl4.store.base import StoreReplacedError

__all__ = ["BUSY_TIMEOUT_MS", "READERS", "WRITER_QUEUE_TIMEOUT_S", "FileGuard", "configure", "ensure_wal",
           "single_read_engine", "write_engine"]

# How long a writer waits for the write lock (held by another process: this process has one write connection)
# before failing with "database is locked". Transactions last milliseconds; a few seconds absorbs a checkpoint or a
# slow disk. This process's own writes queue for its one writer thread, not here.
BUSY_TIMEOUT_MS = 5000
# How long a write waits for this process's writer thread (the writes queued before it) before it fails without
# running; the step is retried at the next cycle. Generous: a queue of a thousand millisecond writes is a second long.
WRITER_QUEUE_TIMEOUT_S = 120.0
# Read threads (and connections) per process. Each connection keeps its own page cache; a whole transaction runs in
# one hand-off, so a few threads serve a thousand connectors.
READERS = 3

# Execution option read by the "begin" hook: which BEGIN to emit (or none).
_BEGIN_MODE = "sentinel_signl4_sqlite_begin"
_NO_BEGIN = "NONE"


class FileGuard:
    """Remembers which file (``st_dev``, ``st_ino``) the database path named when first used, and refuses to go on
    once the path names another file or none."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.identity: tuple[int, int] | None = None

    def check(self) -> None:
        """Raise ``StoreReplacedError`` if the file was deleted or replaced since the first transaction."""
        try:
            found = os.stat(self.path)
        except FileNotFoundError:
            if self.identity is None:
                return  # not created yet: the first connection creates it, the next check remembers it
            raise StoreReplacedError(self.path, "the path names no file now") from None
        identity = (found.st_dev, found.st_ino)
        if self.identity is None:
            self.identity = identity
        elif identity != self.identity:
            raise StoreReplacedError(self.path, "the path names another file now")


def configure(engine: Engine, guard: FileGuard | None = None) -> None:
    """Install the connection and transaction hooks on a new SQLite engine (``guard``: see ``FileGuard``)."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from the sqlite3 module (it does not BEGIN before SELECT or DDL); the
        # "begin" hook below emits our own BEGIN, so every transaction, migrations included, is real.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA synchronous = NORMAL")  # see the module docstring
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        if guard is not None:
            guard.check()
        mode = conn.get_execution_options().get(_BEGIN_MODE, "DEFERRED")
        if mode != _NO_BEGIN:
            conn.exec_driver_sql(f"BEGIN {mode}")


def write_engine(engine: Engine) -> Engine:
    """The same pool, beginning with ``BEGIN IMMEDIATE``.

    A writer takes the write lock up front (waiting up to ``busy_timeout``) instead of upgrading a read snapshot
    later, which fails at once with SQLITE_BUSY if another connection committed in between.
    """
    return engine.execution_options(**{_BEGIN_MODE: "IMMEDIATE"})


def single_read_engine(engine: Engine) -> Engine:
    """The same pool, for transactions of one SELECT: no ``BEGIN`` (the statement is atomic on its own).

    Only for reads made of a single statement; a read that needs two statements to agree uses the plain engine.
    """
    return engine.execution_options(**{_BEGIN_MODE: _NO_BEGIN})


def ensure_wal(engine: Engine, *, give_up_after: float = BUSY_TIMEOUT_MS / 1000) -> None:
    """Switch the database file to WAL (readers and the writer stop blocking each other).

    The switch needs the file to itself, and SQLite answers "database is locked" at once instead of waiting
    for ``busy_timeout`` when another connection is busy (replicas starting together), so retry for up to
    ``give_up_after`` seconds. Once in WAL, the call is a cheap no-op. Runs in the writer's thread (it blocks).
    """
    deadline = time.monotonic() + give_up_after
    delay = 0.01
    with engine.connect() as conn:
        # The driver's own connection: PRAGMA journal_mode cannot run inside the transaction SQLAlchemy opens.
        driver: Any = conn.connection.driver_connection
        while True:
            try:
                cursor = driver.execute("PRAGMA journal_mode = WAL")
                row = cursor.fetchone()
                cursor.close()
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() >= deadline:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 0.25)
                continue
            mode = str(row[0]).lower() if row else None
            if mode != "wal":
                raise RuntimeError(f"SQLite kept journal_mode={mode!r} instead of WAL (a network filesystem?)")
            return
