"""Which exceptions mean "the state store failed" (as opposed to a remote system or a bug)."""

from __future__ import annotations

import sqlite3

from sqlalchemy.exc import SQLAlchemyError

from sentinel_signl4.store.base import StoreReplacedError

__all__ = ["is_store_error"]

try:
    import asyncpg
except ModuleNotFoundError:  # no `postgres` extra: no PostgreSQL store can be opened, so none can fail
    _POSTGRES_ERRORS: tuple[type[BaseException], ...] = ()
else:
    _POSTGRES_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError)

_DRIVER_ERRORS: tuple[type[BaseException], ...] = (SQLAlchemyError, sqlite3.Error, *_POSTGRES_ERRORS,
                                                   StoreReplacedError)


def is_store_error(exc: BaseException) -> bool:
    """True for a failure of the database or of the connection to it.

    The remote clients wrap their own transport errors in ``RemoteError``, so a bare ``ConnectionError`` reaching
    the engine comes from the store's driver (asyncpg raises ``ConnectionRefusedError`` unwrapped on connect).
    """
    return isinstance(exc, (*_DRIVER_ERRORS, ConnectionError))
