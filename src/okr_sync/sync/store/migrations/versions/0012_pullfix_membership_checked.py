"""The cursor each stored raw-JQL answer holds through.

A pass keeps Jira's stored answer when nothing it read since the last cursor can have
moved it; that is only sound for an answer checked through that very cursor. An answer
of a KR that left the plan and came back, or one older code kept when Jira refused to
renew it, is older: rows stored before have none (NULL), so their next pass asks Jira.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 10:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("memberships") as batch:
        batch.add_column(sa.Column("checked_through", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("memberships") as batch:
        batch.drop_column("checked_through")
