"""KPI history, and the done and total behind a KR's stored value (issue 13 items 2, 5).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 06:30:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "kpi_history",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("kpi_id", sa.String(length=128), nullable=False),
        sa.Column("cycle", sa.String(length=64), nullable=False),
        sa.Column("as_of", sa.DateTime(timezone=True), nullable=False),
        sa.Column("value", sa.Double(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=True),
        sa.Column("snapshot_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["snapshot_id"], ["snapshots.id"], name=op.f("fk_kpi_history_snapshot_id_snapshots")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kpi_history")),
    )
    op.create_index(
        op.f("ix_kpi_history_kpi_id_cycle_as_of"), "kpi_history", ["kpi_id", "cycle", "as_of"]
    )
    # Nullable columns: SQLite adds them in place, older rows read as "not known".
    op.add_column("kr_history", sa.Column("done", sa.Double(), nullable=True))
    op.add_column("kr_history", sa.Column("total", sa.Double(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("kr_history") as batch:
        batch.drop_column("total")
        batch.drop_column("done")
    op.drop_index(op.f("ix_kpi_history_kpi_id_cycle_as_of"), table_name="kpi_history")
    op.drop_table("kpi_history")
