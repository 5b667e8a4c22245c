"""Alembic environment, run only through ``sentinel_signl4.store.migrate``.

The caller hands over an open connection in ``config.attributes["connection"]`` that is already inside a
transaction (and, on PostgreSQL, holds the migration advisory lock). Alembic sees that external transaction
and runs every revision inside it, so a failed upgrade leaves nothing half-done and concurrent replicas wait
for the lock instead of racing on ``CREATE TABLE``.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection


def _run_online() -> None:
    connection = context.config.attributes.get("connection")
    if not isinstance(connection, Connection):
        # Offline mode (SQL scripts) and URL-based runs would bypass the lock and the transaction.
        raise RuntimeError(
            "the sentinel-signl4 migrations run through sentinel_signl4.store.migrate(), "
            "which passes an open connection in config.attributes['connection']"
        )
    context.configure(connection=connection, target_metadata=None)
    with context.begin_transaction():
        context.run_migrations()


_run_online()
