"""Bring a store's schema to the newest Alembic revision, safely from several replicas at once.

Everything happens in one transaction on one connection:

* PostgreSQL: ``pg_advisory_xact_lock`` first, so replicas starting together queue up instead of racing on
  ``CREATE TABLE``; the commit releases the lock. The next replica then finds ``alembic_version`` at head and
  does nothing. DDL is transactional on PostgreSQL, so a failed upgrade leaves no half-built schema.
* SQLite: the file is switched to WAL first (``_sqlite.ensure_wal``, run by the store's ``Transactions``), then
  the transaction starts with ``BEGIN IMMEDIATE`` (the store's write engine), which takes the database's write
  lock up front; other processes wait for it through ``busy_timeout``. SQLite DDL is transactional too.

No ``alembic.ini`` is needed: the configuration is built here and points at the packaged ``migrations``.
"""

from __future__ import annotations

import functools
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection

from sentinel_signl4.store.transactions import Transactions

__all__ = ["MIGRATION_LOCK_KEY", "SCRIPT_LOCATION", "head_revision", "upgrade_to_head"]

SCRIPT_LOCATION = Path(__file__).resolve().parent / "migrations"

# Any fixed 63-bit number works; this one is "s4migrat" in ASCII, recognisable in pg_locks. It is the same for
# every schema of a database, which merely serialises migrations of unrelated schemas (they are short).
MIGRATION_LOCK_KEY = int.from_bytes(b"s4migrat", "big") & 0x7FFF_FFFF_FFFF_FFFF


def _alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    config.set_main_option("path_separator", "os")
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def _upgrade(connection: Connection, *, schema: str | None) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        if schema is not None:
            # The factory only lets plain lower-case identifiers through; quoting is belt and braces.
            connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
    command.upgrade(_alembic_config(connection), "head")


async def upgrade_to_head(transactions: Transactions, *, schema: str | None = None) -> None:
    """Run every pending revision in one write transaction (on SQLite: ``BEGIN IMMEDIATE``, after the switch to
    WAL). ``schema`` (PostgreSQL only) is created if missing; the connection's ``search_path`` must already point
    at it (see ``store.factory``).
    """
    await transactions.migrate(functools.partial(_upgrade, schema=schema))


def head_revision() -> str:
    """The newest revision id shipped with this version (for health checks and tests)."""
    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    if head is None:
        raise RuntimeError("no migration revisions are packaged")
    return head
