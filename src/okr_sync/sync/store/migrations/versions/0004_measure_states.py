"""Incremental measuring: stored measure states, and indexes that date the mirror.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06 03:20:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "measure_states",
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("owner", sa.String(length=128), nullable=False),
        sa.Column("measure_key", sa.String(length=64), nullable=False),
        sa.Column("state", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("source", "owner", name=op.f("pk_measure_states")),
    )
    op.create_table(
        "measure_marks",
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("mirror_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("summary", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("source", name=op.f("pk_measure_marks")),
    )
    op.create_index(op.f("ix_issues_source_seen_at"), "issues", ["source", "seen_at"])
    op.create_index(op.f("ix_issues_source_deleted_at"), "issues", ["source", "deleted_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_issues_source_deleted_at"), table_name="issues")
    op.drop_index(op.f("ix_issues_source_seen_at"), table_name="issues")
    op.drop_table("measure_marks")
    op.drop_table("measure_states")
