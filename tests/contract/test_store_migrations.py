"""Migrations: idempotent, safe when replicas start together, and in step with the runtime table definitions."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from sentinel_signl4.store import migrate
from sentinel_signl4.store.migrate import head_revision
from sentinel_signl4.store.sql import SqlStateStore
from sentinel_signl4.store.tables import metadata
from store_fixtures import open_sql_store

STORE_TABLES = {"outbox", "links", "inbox", "leases", "cursors", "pauses"}


def _describe(conn: Connection) -> dict[str, Any]:
    """Tables, columns (name, nullable), primary keys, unique constraints and indexes of the current schema."""
    inspector = sa.inspect(conn)
    found: dict[str, Any] = {}
    for table in inspector.get_table_names():
        found[table] = {
            "columns": sorted((c["name"], c["nullable"]) for c in inspector.get_columns(table)),
            "pk": sorted(inspector.get_pk_constraint(table)["constrained_columns"]),
            "unique": sorted(tuple(u["column_names"]) for u in inspector.get_unique_constraints(table)),
            "indexes": sorted((i["name"], tuple(i["column_names"])) for i in inspector.get_indexes(table)
                              if not i.get("unique")),
        }
    return found


def _describe_metadata() -> dict[str, Any]:
    found: dict[str, Any] = {}
    for table in metadata.sorted_tables:
        found[table.name] = {
            "columns": sorted((c.name, bool(c.nullable)) for c in table.columns),
            "pk": sorted(c.name for c in table.primary_key.columns),
            "unique": sorted(tuple(c.name for c in u.columns) for u in table.constraints
                             if isinstance(u, sa.UniqueConstraint)),
            "indexes": sorted((str(i.name), tuple(c.name for c in i.columns)) for i in table.indexes),
        }
    return found


async def _schema_of(store: SqlStateStore, *, with_version: bool = True) -> tuple[dict[str, Any], str | None]:
    def read(conn: sa.Connection) -> tuple[dict[str, Any], str | None]:
        version = None
        if with_version:
            version = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one_or_none()
        return _describe(conn), version
    return await store._tx.read(read)  # white-box: the contract API has no schema introspection


async def test_migrate_twice_is_a_no_op(fresh_store_url: str) -> None:
    store = open_sql_store(fresh_store_url)
    try:
        await store.migrate()
        first, version = await _schema_of(store)
        await store.migrate()
        second, version_again = await _schema_of(store)
    finally:
        await store.close()
    assert set(first) == STORE_TABLES | {"alembic_version"}
    assert first == second
    assert version == version_again == head_revision()


async def test_replicas_migrating_at_the_same_time_both_succeed(fresh_store_url: str) -> None:
    replicas = [open_sql_store(fresh_store_url) for _ in range(3)]
    try:
        await asyncio.gather(*(replica.migrate() for replica in replicas))
        described, version = await _schema_of(replicas[0])
        assert set(described) >= STORE_TABLES
        assert version == head_revision()
        # And the schema works for all of them.
        await asyncio.gather(*(replica.set_cursor("c1", f"r{i}", "ok") for i, replica in enumerate(replicas)))
        assert await replicas[1].get_cursor("c1", "r2") == "ok"
    finally:
        await asyncio.gather(*(replica.close() for replica in replicas))


async def test_migrated_schema_matches_the_runtime_table_definitions(store: SqlStateStore) -> None:
    described, _ = await _schema_of(store)
    described.pop("alembic_version")
    assert described == _describe_metadata()


_BROKEN_REVISION = '''
"""A revision that fails half-way, to prove an upgrade is all or nothing."""
import sqlalchemy as sa
from alembic import op

revision = "9999"
down_revision = "{head}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("half_done", sa.Column("id", sa.Integer, primary_key=True))
    raise RuntimeError("revision 9999 failed half-way")


def downgrade() -> None:
    pass
'''


async def test_a_failed_upgrade_leaves_nothing_behind(fresh_store_url: str, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    scripts = tmp_path / "migrations"
    shutil.copytree(migrate.SCRIPT_LOCATION, scripts, ignore=shutil.ignore_patterns("__pycache__"))
    (scripts / "versions" / "9999_broken.py").write_text(_BROKEN_REVISION.replace("{head}", head_revision()))
    monkeypatch.setattr(migrate, "SCRIPT_LOCATION", scripts)

    store = open_sql_store(fresh_store_url)
    try:
        with pytest.raises(RuntimeError, match="failed half-way"):
            await store.migrate()
        described, _ = await _schema_of(store, with_version=False)
    finally:
        await store.close()
    # Not even revision 0001's tables: every revision ran in the one transaction that was rolled back.
    assert set(described) == set()
