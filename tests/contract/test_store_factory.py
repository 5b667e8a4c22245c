"""``open_store``: which URLs it accepts, how it refuses the rest, and that no password ever shows."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from sentinel_signl4.domain.enums import ActionState
from sentinel_signl4.store.factory import _redact_url, open_store
from sentinel_signl4.store.sql import SqlStateStore
from store_fixtures import make_action, open_sql_store


def _driver(store: SqlStateStore) -> str:
    return store._tx.url.drivername  # white-box: which driver the URL was converted to


async def test_sqlite_relative_and_absolute_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    relative = open_sql_store("sqlite:///relative.db")
    absolute = open_sql_store(f"sqlite:///{tmp_path / 'absolute.db'}")  # four slashes: sqlite:////tmp/…
    try:
        await relative.migrate()
        await absolute.migrate()
    finally:
        await relative.close()
        await absolute.close()
    assert (tmp_path / "relative.db").is_file()
    assert (tmp_path / "absolute.db").is_file()
    assert _driver(relative) == "sqlite+pysqlite"


@pytest.mark.parametrize("url", ["sqlite:///:memory:", "sqlite://", "sqlite:///", "sqlite:///file::memory:"])
def test_in_memory_sqlite_is_refused_with_the_reason(url: str) -> None:
    with pytest.raises(ValueError, match="each pooled connection would open its own empty database"):
        open_store(url)


@pytest.mark.parametrize("url", ["postgresql://u@db.example:5432/s4", "postgres://u@db.example/s4",
                                 "postgresql+asyncpg://u@db.example/s4"])
def test_postgres_urls_run_on_asyncpg(url: str) -> None:
    store = open_sql_store(url)  # no connection is made until first use
    assert _driver(store) == "postgresql+asyncpg"
    assert store.dialect == "postgresql"


@pytest.mark.parametrize(("url", "message"), [
    ("mysql://u:hunter2@db/s4", "unsupported store URL scheme 'mysql'"),
    ("redis://:hunter2@cache:6379/0", "unsupported store URL scheme 'redis'"),
    ("state.db", "has no scheme"),
    ("sqlite:relative.db", "has no scheme"),
    ("sqlite://host/x.db", "three slashes"),
    ("sqlite:///x.db?mode=ro", "query parameters are not supported"),
    ("postgresql://u:hunter2@db:5432", "names no database"),
    ("postgresql://u:hunter2@db:notaport/s4", "cannot parse PostgreSQL URL"),
    ("postgresql://u:hunter2@db/s4?schema=Bad-Name", "must be a lower-case identifier"),
    ("postgresql://u:hunter2@db/s4?target_session_attrs=any", "unsupported query parameter 'target_session_attrs'"),
    ("postgresql://u:hunter2@db/s4?options=-cstatement_timeout%3D5", "only options=-csearch_path"),
    ("postgresql://u:hunter2@db/s4?schema=a&options=-csearch_path%3Db", "two different schemas"),
])
def test_bad_urls_get_a_clear_error_without_the_password(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as raised:
        open_store(url)
    assert "hunter2" not in str(raised.value)
    assert "hunter2" not in repr(raised.value)


def test_schema_can_come_from_the_url_or_the_argument() -> None:
    assert "schema='tenant_a'" in repr(open_store("postgresql://u@db/s4?schema=tenant_a"))
    assert "schema='tenant_a'" in repr(open_store("postgresql://u@db/s4?options=-csearch_path%3Dtenant_a"))
    assert "schema='tenant_a'" in repr(open_store("postgresql://u@db/s4", schema="tenant_a"))
    with pytest.raises(ValueError, match="conflicts"):
        open_store("postgresql://u@db/s4?schema=a", schema="b")
    with pytest.raises(ValueError, match="only be chosen for PostgreSQL"):
        open_store("sqlite:///x.db", schema="a")


def test_repr_of_a_store_hides_the_password() -> None:
    store = open_store("postgresql://s4user:p%40ss/w0rd@db.example:5432/s4?sslmode=require")
    assert "p%40ss" not in repr(store)
    assert "s4user:***@db.example:5432/s4" in repr(store)


@pytest.mark.parametrize(("url", "shown"), [
    ("postgresql://u:secret@h/db", "postgresql://u:***@h/db"),
    ("postgresql://u:se@cr/et@h:5432/db", "postgresql://u:***@h:5432/db"),  # unencoded @ and / in password
    ("postgresql://u@h/db", "postgresql://u@h/db"),
    ("postgresql://:secret@h/db", "postgresql://:***@h/db"),
    ("postgresql://u@h/db?password=secret&sslmode=require", "postgresql://u@h/db?password=***&sslmode=require"),
    ("sqlite:////srv/a@b:c.db", "sqlite:////srv/a@b:c.db"),
    ("sqlite:////srv/x:y@z.db", "sqlite:////srv/x:y@z.db"),
])
def test_redaction(url: str, shown: str) -> None:
    assert _redact_url(url) == shown


async def test_connection_errors_do_not_leak_the_password() -> None:
    # Nothing listens on port 1: the driver's own error must not carry the password either.
    store = open_store("postgresql://s4user:hunter2@127.0.0.1:1/s4?connect_timeout=2")
    with pytest.raises(Exception) as raised:  # noqa: PT011 - whatever the driver raises
        await store.ping()
    await store.close()
    assert "hunter2" not in str(raised.value)
    assert "hunter2" not in repr(raised.value)


async def test_any_store_url_gives_each_test_its_own_database(any_store_url: str, now: datetime) -> None:
    """The shared fixture other test folders reuse: fresh, migratable, empty."""
    async with open_store(any_store_url) as store:
        await store.migrate()
        assert await store.count_actions("c1") == dict.fromkeys(ActionState, 0)
        assert await store.enqueue(make_action("k1"), now) is True
