"""Tables of the state store (SQLAlchemy Core), shared by the store and the migrations.

The metadata here is the single description of the schema: the Alembic revisions
create exactly this (a test compares them with autogenerate), and the store's
queries are built on these tables. Secrets never go in: message targets name
channels, conversations or *environment variable names*, never webhook URLs or
tokens.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

#: Stable constraint and index names, so migrations and autogenerate agree on every dialect.
NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)

#: Alembic's revision table, named for okr-sync so a database shared with another
#: Alembic-managed application keeps the two histories apart.
VERSION_TABLE = "okr_sync_alembic_version"

RUN_KINDS = ("run", "resync", "serve")
RUN_OUTCOMES = ("ok", "partial", "failed")
OUTBOX_KINDS = ("scorecard", "change_note", "digest", "reminder")
OUTBOX_STATUSES = ("pending", "sending", "sent", "failed", "superseded")
CONFIDENCES = ("blocked", "off_track", "at_risk", "on_track")


class UTCDateTime(sa.TypeDecorator[datetime]):
    """A timezone-aware UTC instant on every dialect.

    SQLite has no time zones: values are stored as naive UTC there (ISO text that
    sorts chronologically) and come back aware. Naive inputs are refused rather than
    guessed, because a wrong guess would move cursors by hours.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime, got {type(value).__name__}")
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("naive datetimes are not stored; pass a timezone-aware value")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def _check_in(column: str, values: tuple[str, ...], name: str, nullable: bool = False) -> Any:
    allowed = ", ".join(f"'{v}'" for v in values)
    condition = f"{column} IN ({allowed})"
    if nullable:
        condition = f"{column} IS NULL OR {condition}"
    return sa.CheckConstraint(condition, name=name)


def _id() -> sa.Column[int]:
    return sa.Column("id", sa.Integer, primary_key=True, autoincrement=True)


issues = sa.Table(
    "issues",
    metadata,
    sa.Column("source", sa.String(64), primary_key=True),
    sa.Column("issue_id", sa.String(64), primary_key=True),
    sa.Column("key", sa.String(64), nullable=False),
    sa.Column("project", sa.String(64), nullable=False),
    sa.Column("updated", UTCDateTime(), nullable=False),
    sa.Column("fields", sa.JSON(), nullable=False),
    sa.Column("deleted", sa.Boolean(), nullable=False),
    sa.Column("deleted_at", UTCDateTime(), nullable=True),
    sa.Column("seen_at", UTCDateTime(), nullable=False),
    sa.Index(None, "source", "key"),
    sa.Index(None, "source", "project"),
    # The newest write to a source's mirror (max seen_at) tells whether the stored
    # measure states were computed on it (see measure_marks).
    sa.Index(None, "source", "seen_at"),
    sa.Index(None, "source", "deleted_at"),
)

#: Per KR or KPI that selects items, its selected items' facts (incremental measuring:
#: okr_sync.scoring.incremental), keyed by a hash of the measure.
measure_states = sa.Table(
    "measure_states",
    metadata,
    sa.Column("source", sa.String(64), primary_key=True),
    sa.Column("owner", sa.String(128), primary_key=True),
    sa.Column("measure_key", sa.String(64), nullable=False),
    sa.Column("state", sa.JSON(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
)

#: Per source, the mirror the stored measure states were computed on: the time of the
#: pass that wrote both. A mirror written later by anything else makes them void.
measure_marks = sa.Table(
    "measure_marks",
    metadata,
    sa.Column("source", sa.String(64), primary_key=True),
    sa.Column("mirror_at", UTCDateTime(), nullable=False),
    #: What that pass measured, per KR or KPI, without the items (a quiet pass's shortcut).
    sa.Column("summary", sa.JSON(), nullable=True),
)

issue_key_history = sa.Table(
    "issue_key_history",
    metadata,
    _id(),
    sa.Column("source", sa.String(64), nullable=False),
    sa.Column("issue_id", sa.String(64), nullable=False),
    sa.Column("old_key", sa.String(64), nullable=False),
    sa.Column("new_key", sa.String(64), nullable=False),
    sa.Column("changed_at", UTCDateTime(), nullable=False),
    sa.Index(None, "source", "issue_id"),
    sa.Index(None, "source", "old_key"),
)

memberships = sa.Table(
    "memberships",
    metadata,
    sa.Column("source", sa.String(64), primary_key=True),
    sa.Column("kr_id", sa.String(128), primary_key=True),
    sa.Column("jql_hash", sa.String(64), nullable=False),
    sa.Column("issue_ids", sa.JSON(), nullable=False),
    sa.Column("refreshed_at", UTCDateTime(), nullable=False),
    #: The source's cursor the answer was last refreshed or kept through (a pass keeps a
    #: stored answer only while this is the cursor it starts from).
    sa.Column("checked_through", UTCDateTime(), nullable=True),
)

#: Raw-JQL measures answered on the mirror, and what Jira said when they were compared.
jql_checks = sa.Table(
    "jql_checks",
    metadata,
    sa.Column("source", sa.String(64), primary_key=True),
    sa.Column("kr_id", sa.String(128), primary_key=True),
    sa.Column("jql_hash", sa.String(64), nullable=False),
    sa.Column("verdict", sa.String(16), nullable=False),
    sa.Column("detail", sa.Text(), nullable=False),
    sa.Column("checked_at", UTCDateTime(), nullable=False),
    _check_in("verdict", ("match", "mismatch"), "verdict"),
)

cursors = sa.Table(
    "cursors",
    metadata,
    sa.Column("source", sa.String(64), primary_key=True),
    sa.Column("high_water_mark", UTCDateTime(), nullable=True),
    sa.Column("last_full_reconcile", UTCDateTime(), nullable=True),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
)

#: Per Jira source, how its last passes went: when it was last read, and since when it
#: fails and why (status, /readyz). A source's failure never stops another's KRs.
source_health = sa.Table(
    "source_health",
    metadata,
    sa.Column("source", sa.String(64), primary_key=True),
    sa.Column("last_success_at", UTCDateTime(), nullable=True),
    sa.Column("failing_since", UTCDateTime(), nullable=True),
    sa.Column("last_error", sa.Text(), nullable=True),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
)

runs = sa.Table(
    "runs",
    metadata,
    _id(),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("holder", sa.String(255), nullable=True),
    sa.Column("started_at", UTCDateTime(), nullable=False),
    sa.Column("ended_at", UTCDateTime(), nullable=True),
    sa.Column("outcome", sa.String(16), nullable=True),
    sa.Column("jira_requests", sa.Integer(), nullable=False),
    sa.Column("issues_fetched", sa.Integer(), nullable=False),
    sa.Column("changes", sa.Integer(), nullable=False),
    sa.Column("deliveries_sent", sa.Integer(), nullable=False),
    sa.Column("deliveries_failed", sa.Integer(), nullable=False),
    sa.Column("error_summary", sa.Text(), nullable=True),
    _check_in("kind", RUN_KINDS, "kind"),
    _check_in("outcome", RUN_OUTCOMES, "outcome", nullable=True),
    sa.Index(None, "outcome", "id"),
)

snapshots = sa.Table(
    "snapshots",
    metadata,
    _id(),
    sa.Column("run_id", sa.Integer(), sa.ForeignKey("runs.id"), nullable=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("cycle", sa.String(64), nullable=False),
    sa.Column("as_of", UTCDateTime(), nullable=False),
    sa.Column("document", sa.JSON(), nullable=False),
    sa.Column("published", sa.Boolean(), nullable=False),
    sa.Index(None, "published", "id"),
)

#: One KR's (or KPI's) stored explanation (its items, JQL and reasons), keyed by its
#: owner and a hash of its content. A snapshot document names these rows per owner
#: (``explain_refs``) instead of holding every list: a pass writes only the owners whose
#: items changed, and reads only those it needs.
kr_items = sa.Table(
    "kr_items",
    metadata,
    sa.Column("owner", sa.String(128), primary_key=True),
    sa.Column("hash", sa.String(64), primary_key=True),
    sa.Column("document", sa.JSON(), nullable=False),
    # A snapshot names its rows by hash (``explain_refs``): they are read by hash.
    sa.Index(None, "hash"),
)

#: The issue ids each ``kr_items`` row holds, written with the row, and a row with an
#: empty ``issue_id`` marking it indexed: a pass asks which owners' published rows hold
#: a changed issue without decoding every owner's items. Keyed by hash first: a lookup
#: names the rows of one snapshot by their hashes and the changed ids.
kr_item_ids = sa.Table(
    "kr_item_ids",
    metadata,
    sa.Column("owner", sa.String(128), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
    sa.Column("issue_id", sa.String(64), nullable=False),
    sa.PrimaryKeyConstraint("hash", "issue_id", "owner"),
)

kr_history = sa.Table(
    "kr_history",
    metadata,
    _id(),
    sa.Column("kr_id", sa.String(128), nullable=False),
    sa.Column("cycle", sa.String(64), nullable=False),
    sa.Column("as_of", UTCDateTime(), nullable=False),
    sa.Column("value", sa.Double(), nullable=True),
    sa.Column("score", sa.Double(), nullable=False),
    sa.Column("band", sa.String(64), nullable=False),
    sa.Column("confidence", sa.String(16), nullable=False),
    sa.Column("snapshot_id", sa.Integer(), sa.ForeignKey("snapshots.id"), nullable=True),
    #: Reconstructed from Jira's changelog by ``okr-sync backfill`` (sync.store.history).
    sa.Column("backfilled", sa.Boolean(), nullable=False, server_default=sa.false()),
    #: What the value is the ratio of (done and total items or points), where the measure
    #: gives them: forecasts draw daily deltas of done and of scope from them.
    sa.Column("done", sa.Double(), nullable=True),
    sa.Column("total", sa.Double(), nullable=True),
    _check_in("confidence", CONFIDENCES, "confidence"),
    sa.Index(None, "kr_id", "cycle", "as_of"),
    #: Each (cycle, KR) pair's latest rows found by seeks, not by grouping all history
    #: (``final_scores_by_cycle``, asked every pass).
    sa.Index(None, "cycle", "kr_id", "backfilled", "id"),
)

#: Per KPI, its value and status at each pass that stored a snapshot (trend, ``explain``).
kpi_history = sa.Table(
    "kpi_history",
    metadata,
    _id(),
    sa.Column("kpi_id", sa.String(128), nullable=False),
    sa.Column("cycle", sa.String(64), nullable=False),
    sa.Column("as_of", UTCDateTime(), nullable=False),
    sa.Column("value", sa.Double(), nullable=False),
    sa.Column("status", sa.String(16), nullable=True),
    sa.Column("snapshot_id", sa.Integer(), sa.ForeignKey("snapshots.id"), nullable=True),
    sa.Index(None, "kpi_id", "cycle", "as_of"),
)

checkins = sa.Table(
    "checkins",
    metadata,
    _id(),
    sa.Column("kr_id", sa.String(128), nullable=False),
    sa.Column("at", UTCDateTime(), nullable=False),
    sa.Column("value", sa.Double(), nullable=True),
    sa.Column("confidence", sa.String(16), nullable=True),
    sa.Column("note", sa.Text(), nullable=True),
    sa.Column("author", sa.String(255), nullable=True),
    _check_in("confidence", CONFIDENCES, "confidence", nullable=True),
    sa.Index(None, "kr_id", "at"),
)

outbox = sa.Table(
    "outbox",
    metadata,
    _id(),
    sa.Column("idempotency_key", sa.String(255), nullable=False, unique=True),
    sa.Column("route", sa.String(128), nullable=False),
    sa.Column("target", sa.String(255), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("snapshot_id", sa.Integer(), sa.ForeignKey("snapshots.id"), nullable=True),
    sa.Column("payload", sa.JSON(), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer(), nullable=False),
    sa.Column("claimed_by", sa.String(255), nullable=True),
    sa.Column("next_attempt_at", UTCDateTime(), nullable=True),
    sa.Column("last_error", sa.Text(), nullable=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("sent_at", UTCDateTime(), nullable=True),
    sa.Column("result_ref", sa.String(255), nullable=True),
    #: When the row was last claimed: a post may be in flight until the sender's own
    #: deadline has passed (see ``sync.store.fencing``).
    sa.Column("claimed_at", UTCDateTime(), nullable=True),
    _check_in("kind", OUTBOX_KINDS, "kind"),
    _check_in("status", OUTBOX_STATUSES, "status"),
    sa.Index(None, "status", "target", "id"),
)

message_refs = sa.Table(
    "message_refs",
    metadata,
    sa.Column("target", sa.String(255), primary_key=True),
    sa.Column("kind", sa.String(32), primary_key=True),
    sa.Column("channel", sa.String(255), nullable=False),
    sa.Column("message_id", sa.String(255), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
)

leases = sa.Table(
    "leases",
    metadata,
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("holder", sa.String(255), nullable=False),
    sa.Column("acquired_at", UTCDateTime(), nullable=False),
    sa.Column("expires_at", UTCDateTime(), nullable=False),
)

lock_epochs = sa.Table(
    "lock_epochs",
    metadata,
    sa.Column("name", sa.String(128), primary_key=True),
    # Fencing tokens: one more at every acquisition of the lock ``name``.
    sa.Column("epoch", sa.BigInteger(), nullable=False),
    sa.Column("holder", sa.String(255), nullable=False),
    sa.Column("acquired_at", UTCDateTime(), nullable=False),
)

# -- serve --plans: replicas sharing plans (used in the configured database's own schema) --

replicas = sa.Table(
    "replicas",
    metadata,
    # Each live ``serve --plans`` replica renews its row every poll; the number of rows
    # not yet expired is the number of live replicas that plans are shared among.
    sa.Column("replica", sa.String(255), primary_key=True),
    sa.Column("started_at", UTCDateTime(), nullable=False),
    sa.Column("heartbeat_at", UTCDateTime(), nullable=False),
    sa.Column("expires_at", UTCDateTime(), nullable=False),
)

plan_leases = sa.Table(
    "plan_leases",
    metadata,
    sa.Column("plan", sa.String(128), primary_key=True),
    sa.Column("replica", sa.String(255), nullable=False),
    # One more at every change of hands, so a renewal or release by a former holder
    # can never touch its successor's lease.
    sa.Column("epoch", sa.BigInteger(), nullable=False),
    sa.Column("acquired_at", UTCDateTime(), nullable=False),
    sa.Column("expires_at", UTCDateTime(), nullable=False),
)

seen_requests = sa.Table(
    "seen_requests",
    metadata,
    # A Slack request's timestamp and signature once accepted by any replica, so the same
    # request replayed to another replica within Slack's five minutes is refused; rows
    # past ``expires_at`` are pruned by the next claim.
    sa.Column("key", sa.String(255), primary_key=True),
    sa.Column("expires_at", UTCDateTime(), nullable=False),
)

#: Every table the store owns (an unversioned database holding any of them is refused).
TABLE_NAMES: frozenset[str] = frozenset(metadata.tables)
