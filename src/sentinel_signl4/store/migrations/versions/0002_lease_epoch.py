"""Fencing: a lease epoch, incremented by every acquisition.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03

Existing leases start at epoch 1; nothing else changes. ``batch_alter_table`` keeps the revision portable
(SQLite cannot add a NOT NULL column without a default, so a server default is given and kept).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("leases") as batch:
        batch.add_column(sa.Column("epoch", sa.BigInteger, nullable=False, server_default=sa.text("1")))


def downgrade() -> None:
    with op.batch_alter_table("leases") as batch:
        batch.drop_column("epoch")
