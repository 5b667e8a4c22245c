"""One contract suite, every store implementation (litestar-style parametrised fixture).

``store`` is a migrated, empty store on each backend:

* ``sqlite``: a new database file under ``tmp_path``;
* ``postgres``: one schema per test session (``s4c_…``, migrated once, dropped at the end), emptied with
  ``TRUNCATE`` before every test. Other test modules may share the ``test`` database: they never see it.

Tests that need an unmigrated database (migrations) use ``fresh_store_url``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from sentinel_signl4.store.factory import open_store
from sentinel_signl4.store.sql import SqlStateStore
from store_fixtures import (  # noqa: F401 - any_store_url is a fixture, re-exported for pytest
    any_store_url,
    drop_schema,
    drop_stale_schemas,
    new_schema_name,
    open_sql_store,
    require_postgres,
    run_sync,
    store_url_sqlite,
    truncate_schema,
    with_schema,
)

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@dataclass(frozen=True)
class PgSchema:
    server_url: str
    schema: str

    @property
    def url(self) -> str:
        return with_schema(self.server_url, self.schema)


async def _migrate(url: str) -> None:
    store = open_store(url)
    try:
        await store.migrate()
    finally:
        await store.close()


@pytest.fixture(scope="session")
def pg_contract_schema() -> Iterator[PgSchema]:
    """The session's PostgreSQL schema, migrated once."""
    pg = PgSchema(require_postgres(), new_schema_name("s4c"))
    run_sync(drop_stale_schemas(pg.server_url))
    run_sync(_migrate(pg.url))
    yield pg
    run_sync(drop_schema(pg.server_url, pg.schema))


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
def store_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """URL of this test's (migrated, on postgres) database."""
    if backend == "sqlite":
        return store_url_sqlite(tmp_path)
    pg: PgSchema = request.getfixturevalue("pg_contract_schema")
    return pg.url


@pytest.fixture
async def store(store_url: str, backend: str, request: pytest.FixtureRequest) -> AsyncIterator[SqlStateStore]:
    """A migrated, empty store."""
    if backend == "postgres":
        pg: PgSchema = request.getfixturevalue("pg_contract_schema")
        await truncate_schema(pg.server_url, pg.schema)
    opened = open_sql_store(store_url)
    if backend == "sqlite":
        await opened.migrate()
    yield opened
    await opened.close()


@pytest.fixture
async def other_store(store: SqlStateStore, store_url: str) -> AsyncIterator[SqlStateStore]:
    """A second instance on the same database, as a second replica or process would have."""
    opened = open_sql_store(store_url)
    yield opened
    await opened.close()


@pytest.fixture
async def fresh_store_url(backend: str, tmp_path: Path) -> AsyncIterator[str]:
    """URL of a database nobody has migrated yet (its own schema on postgres, dropped afterwards)."""
    if backend == "sqlite":
        yield store_url_sqlite(tmp_path, "fresh.db")
        return
    pg = PgSchema(require_postgres(), new_schema_name("s4m"))
    yield pg.url
    await drop_schema(pg.server_url, pg.schema)


@pytest.fixture
def now() -> datetime:
    """A fixed instant: the store has no clock, every test passes time in."""
    return datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
