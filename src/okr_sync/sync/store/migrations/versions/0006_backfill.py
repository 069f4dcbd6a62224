"""Backfill: score history rows reconstructed from Jira's changelog are marked.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06 06:30:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Every row before this revision was measured by a pass: not backfilled.
    with op.batch_alter_table("kr_history") as batch:
        batch.add_column(
            sa.Column("backfilled", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    # Backfilled rows would read as measured ones without the flag: they go with it.
    op.execute(sa.text("DELETE FROM kr_history WHERE backfilled"))
    with op.batch_alter_table("kr_history") as batch:
        batch.drop_column("backfilled")
