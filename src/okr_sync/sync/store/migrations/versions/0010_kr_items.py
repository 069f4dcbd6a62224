"""Snapshot explanations stored per KR and content hash, referenced from the document.

Old documents keep their inline ``explain``: readers accept both forms, so nothing moves.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 07:50:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "kr_items",
        sa.Column("owner", sa.String(length=128), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("owner", "hash", name=op.f("pk_kr_items")),
    )


def downgrade() -> None:
    op.drop_table("kr_items")
