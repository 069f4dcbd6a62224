"""The issue ids of each ``kr_items`` row, so a pass finds the owners whose published
items hold a changed issue without decoding every owner's items.

Rows stored before are indexed here, so every ``kr_items`` row has its ids from now on.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: Rows inserted per statement while indexing the stored ``kr_items``.
_BATCH = 1000


def _ids(document: Any) -> set[str]:
    items = document.get("items") if isinstance(document, dict) else None
    # Items are objects (snapshot version 2) or rows with the id first (version 3).
    ids = (item[0] if isinstance(item, list) and item
           else item.get("id") if isinstance(item, dict) else None for item in items or ())
    return {str(ident) for ident in ids if ident is not None}


def upgrade() -> None:
    op.create_table(
        "kr_item_ids",
        sa.Column("owner", sa.String(length=128), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("issue_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("owner", "hash", "issue_id", name=op.f("pk_kr_item_ids")),
    )
    op.create_index(op.f("ix_kr_item_ids_issue_id"), "kr_item_ids", ["issue_id"])
    conn = op.get_bind()
    kr_items = sa.table("kr_items", sa.column("owner", sa.String()),
                        sa.column("hash", sa.String()), sa.column("document", sa.JSON()))
    kr_item_ids = sa.table("kr_item_ids", sa.column("owner", sa.String()),
                           sa.column("hash", sa.String()), sa.column("issue_id", sa.String()))
    pending: list[dict[str, str]] = []
    # Read in full before inserting: no insert runs while a cursor on this connection
    # is still open.
    for row in conn.execute(sa.select(kr_items.c.owner, kr_items.c.hash,
                                      kr_items.c.document)).all():
        pending += [{"owner": row.owner, "hash": row.hash, "issue_id": issue_id}
                    for issue_id in sorted(_ids(row.document))]
        if len(pending) >= _BATCH:
            conn.execute(sa.insert(kr_item_ids), pending)
            pending = []
    if pending:
        conn.execute(sa.insert(kr_item_ids), pending)


def downgrade() -> None:
    op.drop_index(op.f("ix_kr_item_ids_issue_id"), table_name="kr_item_ids")
    op.drop_table("kr_item_ids")
