"""The issue ids of each ``kr_items`` row, so a pass finds the owners whose published
items hold a changed issue without decoding every owner's items.

Rows stored before are indexed here, and each indexed row is marked (a row with an
empty ``issue_id``): a row stored without ids (by a process predating the index, still
running after ``db upgrade``) is then told apart from a row holding no items. Also an
index on ``kr_items.hash``: a snapshot names its rows by hash, and reads them so.

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
#: ``kr_items`` documents read per statement: never every document at once.
_READ = 200
#: The ``issue_id`` of the row marking a ``kr_items`` row indexed (``INDEXED`` of
#: ``snapshot_items``; spelt out here, as a migration must not follow later code).
_INDEXED = ""


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
        sa.PrimaryKeyConstraint("hash", "issue_id", "owner", name=op.f("pk_kr_item_ids")),
    )
    # A snapshot names its rows by hash: they are read by hash (the primary key is
    # owner first).
    op.create_index(op.f("ix_kr_items_hash"), "kr_items", ["hash"])
    conn = op.get_bind()
    kr_items = sa.table("kr_items", sa.column("owner", sa.String()),
                        sa.column("hash", sa.String()), sa.column("document", sa.JSON()))
    kr_item_ids = sa.table("kr_item_ids", sa.column("owner", sa.String()),
                           sa.column("hash", sa.String()), sa.column("issue_id", sa.String()))
    # The keys first, then the documents a chunk at a time: every document at once
    # would hold the whole table in memory. Each read is fetched in full before
    # inserting: no insert runs while a cursor on this connection is open.
    keys = [(row.owner, row.hash) for row in conn.execute(
        sa.select(kr_items.c.owner, kr_items.c.hash).order_by(kr_items.c.hash))]
    pending: list[dict[str, str]] = []
    for start in range(0, len(keys), _READ):
        part = set(keys[start:start + _READ])
        for row in conn.execute(
            sa.select(kr_items.c.owner, kr_items.c.hash, kr_items.c.document)
            .where(kr_items.c.hash.in_(sorted({digest for _, digest in part})))
        ).all():
            if (row.owner, row.hash) not in part:
                continue  # another owner's row of the same content: in its own chunk
            # Its ids and the row marking it indexed: a row stored after the keys were
            # read, by a process predating the index, has no marker, so a reader
            # knows the index cannot tell who holds its items.
            pending += [{"owner": row.owner, "hash": row.hash, "issue_id": issue_id}
                        for issue_id in sorted(_ids(row.document) | {_INDEXED})]
            if len(pending) >= _BATCH:
                conn.execute(sa.insert(kr_item_ids), pending)
                pending = []
    if pending:
        conn.execute(sa.insert(kr_item_ids), pending)


def downgrade() -> None:
    op.drop_table("kr_item_ids")
    op.drop_index(op.f("ix_kr_items_hash"), table_name="kr_items")
