"""Maintenance windows and pauses: one row per window, kept after it ends or is cleared (the record of it).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03

``severities`` is a comma-separated list of Sentinel severities ("" means every severity); ``mode`` is "skip"
(incidents arriving during the window are recorded and not paged) or "hold" (they are paged when it ends).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# As in 0001: timestamptz on PostgreSQL, fixed-width ISO text on SQLite (store/tables.py: UTCDateTime).
_TS = sa.DateTime(timezone=True).with_variant(sa.String(32), "sqlite")


def upgrade() -> None:
    op.create_table(
        "pauses",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("connector", sa.Text, nullable=False),
        sa.Column("severities", sa.Text, nullable=False, server_default=""),
        sa.Column("starts_at", _TS, nullable=False),
        sa.Column("ends_at", _TS, nullable=False),
        sa.Column("mode", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False, server_default=""),
        sa.Column("created_by", sa.Text, nullable=False, server_default=""),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("cleared_at", _TS, nullable=True),
        sa.Column("cleared_by", sa.Text, nullable=True),
    )
    op.create_index("ix_pauses_connector_ends_at", "pauses", ["connector", "ends_at"])


def downgrade() -> None:
    op.drop_index("ix_pauses_connector_ends_at", table_name="pauses")
    op.drop_table("pauses")
