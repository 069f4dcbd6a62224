"""Initial schema of the state store.

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-26 20:30:25.493679
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "checkins",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("kr_id", sa.String(length=128), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("value", sa.Double(), nullable=True),
        sa.Column("confidence", sa.String(length=16), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("author", sa.String(length=255), nullable=True),
        sa.CheckConstraint(
            "confidence IS NULL OR confidence IN ('blocked', 'off_track', 'at_risk', 'on_track')",
            name=op.f("ck_checkins_confidence"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_checkins")),
    )
    op.create_index(op.f("ix_checkins_kr_id_at"), "checkins", ["kr_id", "at"])
    op.create_table(
        "cursors",
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("high_water_mark", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_full_reconcile", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("source", name=op.f("pk_cursors")),
    )
    op.create_table(
        "issue_key_history",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("issue_id", sa.String(length=64), nullable=False),
        sa.Column("old_key", sa.String(length=64), nullable=False),
        sa.Column("new_key", sa.String(length=64), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_issue_key_history")),
    )
    op.create_index(
        op.f("ix_issue_key_history_source_issue_id"), "issue_key_history", ["source", "issue_id"]
    )
    op.create_index(
        op.f("ix_issue_key_history_source_old_key"), "issue_key_history", ["source", "old_key"]
    )
    op.create_table(
        "issues",
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("issue_id", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("project", sa.String(length=64), nullable=False),
        sa.Column("updated", sa.DateTime(timezone=True), nullable=False),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("source", "issue_id", name=op.f("pk_issues")),
    )
    op.create_index(op.f("ix_issues_source_key"), "issues", ["source", "key"])
    op.create_index(op.f("ix_issues_source_project"), "issues", ["source", "project"])
    op.create_table(
        "leases",
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("holder", sa.String(length=255), nullable=False),
        sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_leases")),
    )
    op.create_table(
        "memberships",
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("kr_id", sa.String(length=128), nullable=False),
        sa.Column("jql_hash", sa.String(length=64), nullable=False),
        sa.Column("issue_ids", sa.JSON(), nullable=False),
        sa.Column("refreshed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("source", "kr_id", name=op.f("pk_memberships")),
    )
    op.create_table(
        "message_refs",
        sa.Column("target", sa.String(length=255), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("channel", sa.String(length=255), nullable=False),
        sa.Column("message_id", sa.String(length=255), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("target", "kind", name=op.f("pk_message_refs")),
    )
    op.create_table(
        "runs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("holder", sa.String(length=255), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column("jira_requests", sa.Integer(), nullable=False),
        sa.Column("issues_fetched", sa.Integer(), nullable=False),
        sa.Column("changes", sa.Integer(), nullable=False),
        sa.Column("deliveries_sent", sa.Integer(), nullable=False),
        sa.Column("deliveries_failed", sa.Integer(), nullable=False),
        sa.Column("error_summary", sa.Text(), nullable=True),
        sa.CheckConstraint("kind IN ('run', 'resync', 'serve')", name=op.f("ck_runs_kind")),
        sa.CheckConstraint(
            "outcome IS NULL OR outcome IN ('ok', 'partial', 'failed')",
            name=op.f("ck_runs_outcome"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_runs")),
    )
    op.create_index(op.f("ix_runs_outcome_id"), "runs", ["outcome", "id"])
    op.create_table(
        "snapshots",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cycle", sa.String(length=64), nullable=False),
        sa.Column("as_of", sa.DateTime(timezone=True), nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("published", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_snapshots_run_id_runs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_snapshots")),
    )
    op.create_index(op.f("ix_snapshots_published_id"), "snapshots", ["published", "id"])
    op.create_table(
        "kr_history",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("kr_id", sa.String(length=128), nullable=False),
        sa.Column("cycle", sa.String(length=64), nullable=False),
        sa.Column("as_of", sa.DateTime(timezone=True), nullable=False),
        sa.Column("value", sa.Double(), nullable=True),
        sa.Column("score", sa.Double(), nullable=False),
        sa.Column("band", sa.String(length=64), nullable=False),
        sa.Column("confidence", sa.String(length=16), nullable=False),
        sa.Column("snapshot_id", sa.Integer(), nullable=True),
        sa.CheckConstraint(
            "confidence IN ('blocked', 'off_track', 'at_risk', 'on_track')",
            name=op.f("ck_kr_history_confidence"),
        ),
        sa.ForeignKeyConstraint(
            ["snapshot_id"], ["snapshots.id"], name=op.f("fk_kr_history_snapshot_id_snapshots")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kr_history")),
    )
    op.create_index(
        op.f("ix_kr_history_kr_id_cycle_as_of"), "kr_history", ["kr_id", "cycle", "as_of"]
    )
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("idempotency_key", sa.String(length=255), nullable=False),
        sa.Column("route", sa.String(length=128), nullable=False),
        sa.Column("target", sa.String(length=255), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("snapshot_id", sa.Integer(), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("claimed_by", sa.String(length=255), nullable=True),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("result_ref", sa.String(length=255), nullable=True),
        sa.CheckConstraint(
            "kind IN ('scorecard', 'change_note', 'digest', 'reminder')",
            name=op.f("ck_outbox_kind"),
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'sending', 'sent', 'failed', 'superseded')",
            name=op.f("ck_outbox_status"),
        ),
        sa.ForeignKeyConstraint(
            ["snapshot_id"], ["snapshots.id"], name=op.f("fk_outbox_snapshot_id_snapshots")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_outbox_idempotency_key")),
    )
    op.create_index(op.f("ix_outbox_status_target_id"), "outbox", ["status", "target", "id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_outbox_status_target_id"), table_name="outbox")
    op.drop_table("outbox")
    op.drop_index(op.f("ix_kr_history_kr_id_cycle_as_of"), table_name="kr_history")
    op.drop_table("kr_history")
    op.drop_index(op.f("ix_snapshots_published_id"), table_name="snapshots")
    op.drop_table("snapshots")
    op.drop_index(op.f("ix_runs_outcome_id"), table_name="runs")
    op.drop_table("runs")
    op.drop_table("message_refs")
    op.drop_table("memberships")
    op.drop_table("leases")
    op.drop_index(op.f("ix_issues_source_project"), table_name="issues")
    op.drop_index(op.f("ix_issues_source_key"), table_name="issues")
    op.drop_table("issues")
    op.drop_index(op.f("ix_issue_key_history_source_old_key"), table_name="issue_key_history")
    op.drop_index(op.f("ix_issue_key_history_source_issue_id"), table_name="issue_key_history")
    op.drop_table("issue_key_history")
    op.drop_table("cursors")
    op.drop_index(op.f("ix_checkins_kr_id_at"), table_name="checkins")
    op.drop_table("checkins")
