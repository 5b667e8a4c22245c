"""Store URLs and fixtures for tests: a SQLite file per test, a PostgreSQL schema per test or per session.

Reuse from any test folder (``tests/`` is on ``sys.path`` through ``pythonpath`` in pyproject.toml)::

    # helpers
    from store_fixtures import store_url_sqlite, require_postgres, new_schema_name, with_schema, drop_schema
    # fixtures: import them into the folder's conftest.py
    from store_fixtures import any_store_url, postgres_schema_url, postgres_url, sqlite_url  # noqa: F401

``any_store_url`` runs the test once per backend (``sqlite``, ``postgres``) on a fresh, unmigrated database;
``postgres_schema_url`` is the PostgreSQL half alone. Both clean up after the test.

PostgreSQL is found at ``$SENTINEL_SIGNL4_TEST_PG_URL`` if set, else ``postgresql://postgres@127.0.0.1:5432/test``
or the same with user ``root``. When none answers, PostgreSQL tests are skipped with the reason, except when
``CI=true``: then they fail, because a CI run that silently skipped the replicated store proves nothing.

Isolation: every helper works in a schema of its own (``open_store`` takes ``?schema=name`` and points the
connection's ``search_path`` at it; ``migrate()`` creates it). Schemas are named ``s4<x>_<epoch>_<random>``;
``drop_schema`` removes one, and ``drop_stale_schemas`` (run by the contract suite at session start) removes
those more than an hour old, left behind by runs killed before their teardown.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import os
import time
import uuid
from collections.abc import AsyncIterator, Coroutine, Mapping
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import pytest

from sentinel_signl4.domain.enums import ActionKind
from sentinel_signl4.store.base import InboxEvent, Link, OutboxAction
from sentinel_signl4.store.factory import open_store
from sentinel_signl4.store.sql import SqlStateStore

__all__ = [
    "any_store_url",
    "drop_schema",
    "drop_stale_schemas",
    "make_action",
    "make_event",
    "make_link",
    "new_schema_name",
    "open_sql_store",
    "postgres_schema_url",
    "postgres_server_url",
    "postgres_url",
    "require_postgres",
    "run_sync",
    "sqlite_url",
    "store_url_sqlite",
    "truncate_schema",
    "with_schema",
]

_CANDIDATES = ("postgresql://postgres@127.0.0.1:5432/test", "postgresql://root@127.0.0.1:5432/test")
STORE_TABLES = ("outbox", "links", "inbox", "leases", "cursors", "pauses")
_T = TypeVar("_T")


def run_sync(coro: Coroutine[Any, Any, _T]) -> _T:
    """Run ``coro`` to completion from sync code, even when the caller is inside a running event loop."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


# -- builders ----------------------------------------------------------------------------------------------------
def make_action(key: str, connector: str = "c1", *, kind: ActionKind = ActionKind.RAISE_SIGNL,
                incident_id: str | None = None, payload: Mapping[str, Any] | None = None,
                **fields: Any) -> OutboxAction:
    """An outbox action with defaults for everything a test does not care about."""
    return OutboxAction(key=key, connector=connector, kind=kind, incident_id=incident_id or f"inc-{key}",
                        payload=payload if payload is not None else {"key": key}, **fields)


def make_link(incident_id: str, connector: str = "c1", *, external_id: str | None = None,
              incident_number: int = 1, **fields: Any) -> Link:
    return Link(connector=connector, incident_id=incident_id, external_id=external_id or f"ext-{incident_id}",
                incident_number=incident_number, **fields)


def make_event(event_id: str, received_at: Any, connector: str = "c1", *,
               payload: dict[str, Any] | None = None, **fields: Any) -> InboxEvent:
    return InboxEvent(connector=connector, event_id=event_id,
                      payload=payload if payload is not None else {"id": event_id},
                      received_at=received_at, **fields)


def open_sql_store(url: str) -> SqlStateStore:
    """``open_store`` typed as the SQL implementation, for tests that look under the ``StateStore`` API."""
    store = open_store(url)
    assert isinstance(store, SqlStateStore)
    return store


# -- SQLite ----------------------------------------------------------------------------------------------------
def store_url_sqlite(tmp_path: Path, name: str = "state.db") -> str:
    """``sqlite:////abs/path`` of a fresh database file under ``tmp_path``."""
    return f"sqlite:///{(tmp_path / name).resolve()}"


# -- PostgreSQL ------------------------------------------------------------------------------------------------
async def _probe(url: str) -> None:
    conn = await asyncpg.connect(url, timeout=3)
    await conn.close()


@functools.cache
def _find_server() -> tuple[str | None, str]:
    """The first PostgreSQL URL that answers, or None and why none did. Probed once per process."""
    configured = os.environ.get("SENTINEL_SIGNL4_TEST_PG_URL")
    candidates = (configured,) if configured else _CANDIDATES
    reasons: list[str] = []
    for url in candidates:
        try:
            run_sync(_probe(url))
        except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
            reasons.append(f"{url}: {type(exc).__name__}: {exc}")
        else:
            return url, ""
    return None, "PostgreSQL not reachable (" + "; ".join(reasons) + ")"


def postgres_server_url() -> str | None:
    """URL of the test PostgreSQL server (no schema), or None if none is reachable."""
    return _find_server()[0]


def require_postgres() -> str:
    """The server URL; otherwise ``pytest.skip`` with the reason, or ``pytest.fail`` when ``CI=true``."""
    url, reason = _find_server()
    if url is not None:
        return url
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason}; PostgreSQL is mandatory when CI=true")
    pytest.skip(reason)


def new_schema_name(prefix: str = "s4t") -> str:
    """A schema name nobody else uses (lower-case, as ``open_store`` requires), stamped with its birth time."""
    return f"{prefix}_{int(time.time())}_{uuid.uuid4().hex[:10]}"


async def drop_stale_schemas(server_url: str, older_than: float = 3600) -> list[str]:
    """Drop test schemas left by runs that were killed before their teardown (older than ``older_than`` s)."""
    conn = await asyncpg.connect(server_url, timeout=10)
    dropped: list[str] = []
    try:
        names = await conn.fetch(r"SELECT nspname FROM pg_namespace WHERE nspname ~ '^s4[a-z]*_[0-9]+_[0-9a-f]+$'")
        for (name,) in names:
            born = int(name.split("_")[1])
            if born < time.time() - older_than:
                await conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
                dropped.append(name)
    finally:
        await conn.close()
    return dropped


def with_schema(server_url: str, schema: str) -> str:
    """``server_url`` with ``?schema=`` added: every table of a store opened on it lives in ``schema``."""
    return f"{server_url}{'&' if '?' in server_url else '?'}schema={schema}"


async def drop_schema(server_url: str, schema: str) -> None:
    conn = await asyncpg.connect(server_url, timeout=10)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


async def truncate_schema(server_url: str, schema: str) -> None:
    """Empty every store table in ``schema`` (faster than a new schema + migration per test)."""
    conn = await asyncpg.connect(server_url, timeout=10)
    try:
        tables = ", ".join(f'"{schema}"."{table}"' for table in STORE_TABLES)
        await conn.execute(f"TRUNCATE {tables}")
    finally:
        await conn.close()


# -- fixtures ----------------------------------------------------------------------------------------------------
@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """URL of a fresh SQLite file for this test."""
    return store_url_sqlite(tmp_path)


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """URL of the test PostgreSQL server (skips, or fails under CI=true, if there is none)."""
    return require_postgres()


@pytest.fixture
async def postgres_schema_url(postgres_url: str) -> AsyncIterator[str]:
    """URL of an empty schema of its own for this test (not migrated yet); dropped afterwards."""
    schema = new_schema_name()
    yield with_schema(postgres_url, schema)
    await drop_schema(postgres_url, schema)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def any_store_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """URL of a fresh, unmigrated database, once per backend (its own schema on PostgreSQL, dropped after)."""
    if request.param == "sqlite":
        yield store_url_sqlite(tmp_path)
        return
    server_url = require_postgres()
    schema = new_schema_name()
    yield with_schema(server_url, schema)
    await drop_schema(server_url, schema)
