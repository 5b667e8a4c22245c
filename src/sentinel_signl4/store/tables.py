"""Table definitions the SQL store queries through (SQLAlchemy Core, no ORM).

The schema itself is created by the Alembic revisions in ``store/migrations``; these objects only describe it
to the query builder, so they must agree with the newest revision (the contract suite checks that they do).

Column types are chosen so that the same queries are correct on both dialects:

* timestamps: ``UTCDateTime`` — ``timestamptz`` on PostgreSQL, fixed-width ISO-8601 UTC text on SQLite
  (which has no date type); fixed width makes text order equal time order, so ``<=`` and ``ORDER BY`` work;
* JSON: JSONB on PostgreSQL, JSON text on SQLite;
* enums: their string values in a text column, converted at the edge of ``store/sql.py``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect

__all__ = ["UTCDateTime", "cursors", "inbox", "leases", "links", "metadata", "outbox", "pauses", "to_utc"]


def to_utc(value: datetime) -> datetime:
    """``value`` in UTC. A naive datetime is refused: guessing its zone would silently shift due times."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"timestamps must be timezone-aware (got naive {value.isoformat()})")
    return value.astimezone(UTC)


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """Aware UTC ``datetime`` in and out, on every dialect."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(sa.String(32))
        return dialect.type_descriptor(sa.DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        utc = to_utc(value)
        if dialect.name == "sqlite":
            # "2024-05-01T12:00:00.000000+00:00": always 32 characters, so text order is time order.
            return utc.isoformat(timespec="microseconds")
        return utc

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        parsed = datetime.fromisoformat(value) if isinstance(value, str) else value
        if not isinstance(parsed, datetime):
            raise TypeError(f"unexpected timestamp value of type {type(value).__name__}")
        return to_utc(parsed)


_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

metadata = sa.MetaData()

outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("connector", sa.Text, nullable=False),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("incident_id", sa.Text, nullable=False),
    sa.Column("payload", _JSON, nullable=False),
    sa.Column("state", sa.Text, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("in_doubt", sa.Boolean, nullable=False),
    sa.Column("next_attempt_at", UTCDateTime, nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("result", _JSON, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Index("ix_outbox_connector_state_next", "connector", "state", "next_attempt_at"),
)

links = sa.Table(
    "links",
    metadata,
    sa.Column("connector", sa.Text, primary_key=True),
    sa.Column("incident_id", sa.Text, primary_key=True),
    sa.Column("external_id", sa.Text, nullable=False),
    sa.Column("incident_number", sa.BigInteger, nullable=False),
    sa.Column("event_id", sa.Text, nullable=True),
    sa.Column("alert_id", sa.Text, nullable=True),
    sa.Column("generation", sa.Integer, nullable=False),
    sa.Column("open", sa.Boolean, nullable=False),
    sa.Column("data", _JSON, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("connector", "external_id", name="uq_links_connector_external_id"),
    sa.Index("ix_links_connector_open", "connector", "open"),
)

inbox = sa.Table(
    "inbox",
    metadata,
    sa.Column("connector", sa.Text, primary_key=True),
    sa.Column("event_id", sa.Text, primary_key=True),
    sa.Column("payload", _JSON, nullable=False),
    sa.Column("received_at", UTCDateTime, nullable=False),
    sa.Column("state", sa.Text, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("processed_at", UTCDateTime, nullable=True),
    sa.Index("ix_inbox_connector_state_received", "connector", "state", "received_at"),
)

leases = sa.Table(
    "leases",
    metadata,
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("owner", sa.Text, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    # Incremented by every acquisition (not by renewals): the fencing token of store.base.Fence.
    sa.Column("epoch", sa.BigInteger, nullable=False, server_default=sa.text("1")),
)

cursors = sa.Table(
    "cursors",
    metadata,
    sa.Column("connector", sa.Text, primary_key=True),
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

pauses = sa.Table(
    "pauses",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("connector", sa.Text, nullable=False),
    sa.Column("severities", sa.Text, nullable=False, server_default=""),
    sa.Column("starts_at", UTCDateTime, nullable=False),
    sa.Column("ends_at", UTCDateTime, nullable=False),
    sa.Column("mode", sa.Text, nullable=False),
    sa.Column("reason", sa.Text, nullable=False, server_default=""),
    sa.Column("created_by", sa.Text, nullable=False, server_default=""),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("cleared_at", UTCDateTime, nullable=True),
    sa.Column("cleared_by", sa.Text, nullable=True),
    sa.Index("ix_pauses_connector_ends_at", "connector", "ends_at"),
)
