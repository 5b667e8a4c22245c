"""Build a ``StateStore`` from a URL: driver names and connection settings (SQLite specifics: ``_sqlite``).

Accepted URLs:

* ``sqlite:///relative/path.db`` and ``sqlite:////absolute/path.db`` (``sqlite+aiosqlite://`` and
  ``sqlite+pysqlite://`` too), run on the ``sqlite3`` module in worker threads.
  ``:memory:`` is refused: every pooled connection to ``:memory:`` opens its own, empty database, so the web
  server and the workers would not see each other's rows, and the state would not survive a restart anyway.
* ``postgresql://user[:password]@host[:port]/db`` (``postgres://`` and ``postgresql+asyncpg://`` too), run on
  asyncpg. Query parameters:

  - ``schema=name`` (or libpq's ``options=-csearch_path=name``): keep every table, ``alembic_version``
    included, in that schema, created by ``migrate()`` if missing. Tests use it to isolate themselves.
  - ``sslmode=…`` / ``ssl=…`` (``require``, ``verify-full``, …), ``application_name=…``,
    ``connect_timeout=seconds``.

Anything else is a ``ValueError`` that names the problem. Messages and ``repr``s never contain the password:
``user:secret@`` is shown as ``user:***@``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from sentinel_signl4.store import _sqlite
from sentinel_signl4.store.base import StateStore
from sentinel_signl4.store.sql import SqlStateStore
from sentinel_signl4.store.transactions import AsyncTransactions, ThreadedTransactions

__all__ = ["open_store", "sqlite_file"]

_SQLITE_SCHEMES = frozenset({"sqlite", "sqlite+aiosqlite", "sqlite+pysqlite"})
_POSTGRES_SCHEMES = frozenset({"postgresql", "postgres", "postgresql+asyncpg"})
_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_SEARCH_PATH_OPTION = re.compile(r"-c\s*search_path\s*=\s*([^\s,]+)")


def _redact_url(url: str) -> str:
    """``url`` with the password (userinfo or ``password=`` query parameter) replaced by ``***``."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    query_at = min((i for i in (rest.find("?"), rest.find("#")) if i >= 0), default=len(rest))
    # The last "@" before the query ends the userinfo, even if an unencoded password contains "@" or "/".
    at = rest.rfind("@", 0, query_at)
    # rest starting with "/" has no authority part (sqlite:////path): an "@" there belongs to a file name.
    if at >= 0 and ":" in rest[:at] and not rest.startswith("/"):
        user = rest[:at].split(":", 1)[0]
        rest = f"{user}:***{rest[at:]}"
    rest = re.sub(r"(?i)([?&]password=)[^&#]*", r"\1***", rest)
    return f"{scheme}{sep}{rest}"


def open_store(url: str, *, schema: str | None = None) -> StateStore:
    """A store for ``url`` (see the module docstring). No connection is made until first use.

    ``schema`` (PostgreSQL only) is the same as ``?schema=`` in the URL. Call ``await store.migrate()`` at start
    (it creates or upgrades the schema and, on SQLite, switches the file to WAL), and ``await store.close()``
    (or ``async with store``) when done.
    """
    scheme, sep, _ = url.partition("://")
    scheme = scheme.lower()
    if not sep:
        raise ValueError(f"store URL {_redact_url(url)!r} has no scheme: use sqlite:///path.db or "
                         "postgresql://user@host:port/db")
    if scheme in _SQLITE_SCHEMES:
        if schema is not None:
            raise ValueError("a schema can only be chosen for PostgreSQL stores, not for SQLite")
        return _open_sqlite(url)
    if scheme in _POSTGRES_SCHEMES:
        return _open_postgres(url, schema)
    raise ValueError(f"unsupported store URL scheme {scheme!r} in {_redact_url(url)!r}: use "
                     "sqlite:///path.db or postgresql://user@host:port/db")


# -- SQLite --------------------------------------------------------------------------------------------------
def sqlite_file(url: str) -> str | None:
    """The absolute path of a SQLite store URL's file; None for another scheme. ``ValueError`` as ``open_store``."""
    if url.partition("://")[0].lower() not in _SQLITE_SCHEMES:
        return None
    return _sqlite_path(url)


def _open_sqlite(url: str) -> SqlStateStore:
    path = _sqlite_path(url)
    guard = _sqlite.FileGuard(path)
    # The connections move between the pool and the worker threads (never used by two threads at once).
    connect_args = {"check_same_thread": False}
    reader = sa.create_engine(URL.create("sqlite+pysqlite", database=path), json_serializer=_json_dumps,
                              connect_args=connect_args, pool_size=_sqlite.READERS, max_overflow=0)
    _sqlite.configure(reader, guard)
    # SQLite has one writer at a time: one connection and one thread write, so this process's writes queue first
    # come first served instead of waiting in SQLite's busy handler for each other (``store.transactions``).
    writer = sa.create_engine(URL.create("sqlite+pysqlite", database=path), json_serializer=_json_dumps,
                              connect_args=connect_args, pool_size=1, max_overflow=0)
    _sqlite.configure(writer, guard)
    transactions = ThreadedTransactions(
        reader=reader, single_reader=_sqlite.single_read_engine(reader), writer=_sqlite.write_engine(writer),
        readers=_sqlite.READERS, queue_timeout=_sqlite.WRITER_QUEUE_TIMEOUT_S, before_migrate=_sqlite.ensure_wal)
    return SqlStateStore(transactions, display_url=_redact_url(url))


def _sqlite_path(url: str) -> str:
    rest = url.partition("://")[2]
    path = unquote(rest[1:])
    if not rest or not path or path == ":memory:" or path.startswith("file::memory:"):
        raise ValueError(
            "an in-memory SQLite store cannot be used: each pooled connection would open its own empty "
            "database, so the web server, workers and migrations would not see each other's rows, and "
            "nothing would survive a restart. Use a file, e.g. sqlite:///sentinel-signl4.db"
        )
    if not rest.startswith("/"):
        raise ValueError(f"SQLite URL {_redact_url(url)!r} must look like sqlite:///relative.db or "
                         "sqlite:////absolute.db (three slashes, then the path)")
    if "?" in rest:
        raise ValueError(f"SQLite URL {_redact_url(url)!r}: query parameters are not supported")
    # Resolved now: the file is opened lazily, and a later chdir must not move the database.
    return os.path.abspath(path)


# -- PostgreSQL ----------------------------------------------------------------------------------------------
def _open_postgres(url: str, schema: str | None) -> SqlStateStore:
    shown = _redact_url(url)
    if importlib.util.find_spec("asyncpg") is None:
        raise ValueError(f"store URL {shown!r} needs the PostgreSQL driver, which is not installed: "
                         "install sentinel-signl4[postgres] (pip install 'sentinel-signl4[postgres]')")
    rest = url.partition("://")[2]
    try:
        # make_url's own errors quote the whole URL, password included: never let them out.
        parsed = make_url(f"postgresql+asyncpg://{rest}")
    except (ArgumentError, ValueError):
        raise ValueError(f"cannot parse PostgreSQL URL {shown!r}") from None
    if not parsed.database:
        raise ValueError(f"PostgreSQL URL {shown!r} names no database (…@host:port/database)")

    query = dict(parsed.query)
    connect_args: dict[str, Any] = {}
    server_settings: dict[str, str] = {"application_name": "sentinel-signl4"}
    url_schema = _pop_schema(query, shown)
    if schema is not None and url_schema is not None and schema != url_schema:
        raise ValueError(f"schema {schema!r} conflicts with {url_schema!r} in {shown!r}")
    schema = schema if schema is not None else url_schema
    if schema is not None:
        if not _SCHEMA_NAME.fullmatch(schema):
            raise ValueError(f"schema name {schema!r} must be a lower-case identifier ([a-z_][a-z0-9_]*)")
        # Only this schema: tables and alembic_version are created in it and found in it, nowhere else.
        server_settings["search_path"] = schema
    for name, value in list(query.items()):
        text = value if isinstance(value, str) else value[-1]
        if name in ("sslmode", "ssl"):
            connect_args["ssl"] = text
        elif name == "application_name":
            server_settings["application_name"] = text
        elif name == "connect_timeout":
            connect_args["timeout"] = float(text)
        else:
            raise ValueError(f"PostgreSQL URL {shown!r}: unsupported query parameter {name!r}")
    connect_args["server_settings"] = server_settings

    from sqlalchemy.ext.asyncio import create_async_engine  # PostgreSQL only: SQLite needs no asyncio engine

    engine = create_async_engine(
        parsed.set(query={}),
        connect_args=connect_args,
        json_serializer=_json_dumps,
        # Replicas live for weeks: a connection cut by a failover or idle timeout is replaced, not reported.
        pool_pre_ping=True,
    )
    return SqlStateStore(AsyncTransactions(engine), schema=schema, display_url=shown)


def _pop_schema(query: dict[str, str | tuple[str, ...]], shown: str) -> str | None:
    found: list[str] = []
    for name in ("schema", "options"):
        value = query.pop(name, None)
        if value is None:
            continue
        text = value if isinstance(value, str) else value[-1]
        if name == "options":
            match = _SEARCH_PATH_OPTION.fullmatch(text.strip())
            if match is None:
                raise ValueError(f"PostgreSQL URL {shown!r}: only options=-csearch_path=<schema> "
                                 "is supported")
            text = match.group(1)
        found.append(text)
    if len(set(found)) > 1:
        raise ValueError(f"PostgreSQL URL {shown!r} gives two different schemas")
    return found[0] if found else None


# -- JSON ----------------------------------------------------------------------------------------------------
def _json_default(value: object) -> Any:
    # Payloads are typed Mapping; a MappingProxyType or other read-only mapping is still a JSON object.
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _json_dumps(value: object) -> str:
    # ensure_ascii=False: readable rows in psql/sqlite3, and fewer bytes for non-Latin payloads.
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=_json_default)
