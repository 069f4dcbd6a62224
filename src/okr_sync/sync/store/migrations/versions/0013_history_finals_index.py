"""An index that finds each (cycle, KR) pair's latest history rows by seeks.

Every pass asks each KR's final score of each cycle (``too_easy``); grouping every
``kr_history`` row did so in time that grew with each stored snapshot, for good.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 12:45:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0013"
down_revision: str | Sequence[str] | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(op.f("ix_kr_history_cycle_kr_id_backfilled_id"), "kr_history",
                    ["cycle", "kr_id", "backfilled", "id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_kr_history_cycle_kr_id_backfilled_id"), table_name="kr_history")
