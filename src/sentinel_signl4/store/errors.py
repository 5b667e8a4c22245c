"""Which exceptions mean "the state store failed" (as opposed to a remote system or a bug)."""

from __future__ import annotations

import functools
import sqlite3

from sentinel_signl4.store.base import StoreReplacedError

__all__ = ["is_store_error"]


@functools.cache
def _driver_errors() -> tuple[type[BaseException], ...]:
    # Imported on first use: the engine (which asks this question) loads no database driver by itself.
    from sqlalchemy.exc import SQLAlchemyError

    try:
        import asyncpg
    except ModuleNotFoundError:  # no `postgres` extra: no PostgreSQL store can be opened, so none can fail
        postgres: tuple[type[BaseException], ...] = ()
    else:
        postgres = (asyncpg.PostgresError, asyncpg.InterfaceError)
    return (SQLAlchemyError, sqlite3.Error, *postgres, StoreReplacedError)


def is_store_error(exc: BaseException) -> bool:
    """True for a failure of the database or of the connection to it.

    The remote clients wrap their own transport errors in ``RemoteError``, so a bare ``ConnectionError`` reaching
    the engine comes from the store's driver (asyncpg raises ``ConnectionRefusedError`` unwrapped on connect).
    """
    return isinstance(exc, (*_driver_errors(), ConnectionError))
