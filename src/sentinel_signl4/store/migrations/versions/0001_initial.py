"""Create the state store: outbox, links, inbox, leases, cursors.

Revision ID: 0001
Revises:
Create Date: 2025-01-01

Types are spelled out here rather than imported from ``store/tables.py``: a released revision must keep
creating the same schema even when the runtime table definitions move on.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# timestamptz on PostgreSQL; fixed-width ISO-8601 UTC text on SQLite (see store/tables.py, UTCDateTime).
_TS = sa.DateTime(timezone=True).with_variant(sa.String(32), "sqlite")
# JSONB on PostgreSQL; TEXT on SQLite so the column has text affinity (a bare "JSON" would be NUMERIC).
_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql").with_variant(sa.Text(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "outbox",
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("connector", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("incident_id", sa.Text, nullable=False),
        sa.Column("payload", _JSON, nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("in_doubt", sa.Boolean, nullable=False),
        sa.Column("next_attempt_at", _TS, nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("result", _JSON, nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
    )
    op.create_index("ix_outbox_connector_state_next", "outbox", ["connector", "state", "next_attempt_at"])

    op.create_table(
        "links",
        sa.Column("connector", sa.Text, primary_key=True),
        sa.Column("incident_id", sa.Text, primary_key=True),
        sa.Column("external_id", sa.Text, nullable=False),
        sa.Column("incident_number", sa.BigInteger, nullable=False),
        sa.Column("event_id", sa.Text, nullable=True),
        sa.Column("alert_id", sa.Text, nullable=True),
        sa.Column("generation", sa.Integer, nullable=False),
        sa.Column("open", sa.Boolean, nullable=False),
        sa.Column("data", _JSON, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.UniqueConstraint("connector", "external_id", name="uq_links_connector_external_id"),
    )
    op.create_index("ix_links_connector_open", "links", ["connector", "open"])

    op.create_table(
        "inbox",
        sa.Column("connector", sa.Text, primary_key=True),
        sa.Column("event_id", sa.Text, primary_key=True),
        sa.Column("payload", _JSON, nullable=False),
        sa.Column("received_at", _TS, nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("processed_at", _TS, nullable=True),
    )
    op.create_index("ix_inbox_connector_state_received", "inbox", ["connector", "state", "received_at"])

    op.create_table(
        "leases",
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("owner", sa.Text, nullable=False),
        sa.Column("expires_at", _TS, nullable=False),
    )

    op.create_table(
        "cursors",
        sa.Column("connector", sa.Text, primary_key=True),
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )


def downgrade() -> None:
    for table in ("cursors", "leases", "inbox", "links", "outbox"):
        op.drop_table(table)
