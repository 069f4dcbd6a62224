"""Raw-JQL measures answered on the mirror: Jira's verdict when they were compared.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-06 02:50:00.000000
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
    op.create_table(
        "jql_checks",
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("kr_id", sa.String(length=128), nullable=False),
        sa.Column("jql_hash", sa.String(length=64), nullable=False),
        sa.Column("verdict", sa.String(length=16), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "verdict IN ('match', 'mismatch')", name=op.f("ck_jql_checks_verdict")
        ),
        sa.PrimaryKeyConstraint("source", "kr_id", name=op.f("pk_jql_checks")),
    )


def downgrade() -> None:
    op.drop_table("jql_checks")
