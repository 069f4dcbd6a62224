"""Several Jira sources: each source's health (last read, failing since, last error).

Everything the mirror keeps was keyed by source from the start; a database of one
source (``main``) is upgraded in place: ``main`` is recorded as last read when its
cursor last moved.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06 06:10:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "source_health",
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("last_success_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("failing_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("source", name=op.f("pk_source_health")),
    )
    op.execute(
        "INSERT INTO source_health (source, last_success_at, updated_at) "
        "SELECT source, updated_at, updated_at FROM cursors"
    )


def downgrade() -> None:
    op.drop_table("source_health")
