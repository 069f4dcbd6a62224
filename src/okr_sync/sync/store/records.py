"""Plain records the state store takes and returns (no SQLAlchemy objects leak out)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from okr_sync.scoring.scorecard import Confidence

RunKind = Literal["run", "resync", "serve"]
Outcome = Literal["ok", "partial", "failed"]
OutboxKind = Literal["scorecard", "change_note", "digest", "reminder"]
OutboxStatus = Literal["pending", "sending", "sent", "failed", "superseded"]


class StoreError(Exception):
    """The state store refused an operation."""


class NotFoundError(StoreError):
    """A row the caller named does not exist."""


class InvalidStateError(StoreError):
    """A row is not in the state the operation requires (e.g. marking an unclaimed row sent)."""


class InvalidRecordError(StoreError, ValueError):
    """An input record lacks a required field or has a value the store cannot keep."""


def jql_hash(jql: str) -> str:
    """The fingerprint under which a raw-JQL membership is stored."""
    return hashlib.sha256(" ".join(jql.split()).encode()).hexdigest()


@dataclass(frozen=True)
class KeyChange:
    source: str
    issue_id: str
    old_key: str
    new_key: str
    changed_at: datetime


@dataclass(frozen=True)
class UpsertResult:
    """What :meth:`Store.upsert_issues` did: rows ``inserted``, ``updated``, and ``stale``
    records skipped because the mirror already held a newer ``updated`` for that id."""

    inserted: int
    updated: int
    stale: int
    key_changes: tuple[KeyChange, ...]


@dataclass(frozen=True)
class Cursor:
    source: str
    high_water_mark: datetime | None
    last_full_reconcile: datetime | None
    updated_at: datetime


@dataclass(frozen=True)
class Membership:
    source: str
    kr_id: str
    jql_hash: str
    issue_ids: tuple[str, ...]
    refreshed_at: datetime
    #: The source's cursor this answer holds through: the cursor of the last pass that
    #: refreshed or kept it (None: unknown, e.g. stored before this was recorded).
    checked_through: datetime | None = None

    def matches(self, jql: str) -> bool:
        """Whether this membership was computed for ``jql`` (whitespace-insensitive)."""
        return self.jql_hash == jql_hash(jql)


JqlVerdict = Literal["match", "mismatch"]


@dataclass(frozen=True)
class JqlCheck:
    """What Jira answered when a raw JQL evaluated on the mirror was compared with it."""

    source: str
    kr_id: str
    jql_hash: str
    verdict: JqlVerdict
    detail: str
    checked_at: datetime

    def matches(self, jql: str) -> bool:
        """Whether this check was made for ``jql`` (whitespace-insensitive)."""
        return self.jql_hash == jql_hash(jql)


@dataclass(frozen=True)
class RunCounts:
    jira_requests: int = 0
    issues_fetched: int = 0
    changes: int = 0
    deliveries_sent: int = 0
    deliveries_failed: int = 0


@dataclass(frozen=True)
class RunRecord:
    id: int
    kind: RunKind
    holder: str | None
    started_at: datetime
    ended_at: datetime | None
    outcome: Outcome | None
    counts: RunCounts
    error_summary: str | None


@dataclass(frozen=True)
class Snapshot:
    id: int
    run_id: int | None
    created_at: datetime
    cycle: str
    as_of: datetime
    document: dict[str, Any]
    published: bool


@dataclass(frozen=True)
class SnapshotMark:
    """A stored snapshot's identity without its document: equal marks name the same
    stored document (snapshots are never rewritten, only marked published)."""

    id: int
    run_id: int | None
    created_at: datetime
    cycle: str
    published: bool


@dataclass(frozen=True)
class HistoryEntry:
    """One KR's result in a snapshot, as given to :meth:`Store.add_history`."""

    kr_id: str
    value: float | None
    score: float
    band: str
    confidence: Confidence
    #: The done and total the value is the ratio of, where the measure gives them.
    done: float | None = None
    total: float | None = None


@dataclass(frozen=True)
class HistoryRecord:
    id: int
    kr_id: str
    cycle: str
    as_of: datetime
    value: float | None
    score: float
    band: str
    confidence: Confidence
    snapshot_id: int | None
    #: Reconstructed by ``okr-sync backfill`` from Jira's changelog (never notified).
    backfilled: bool = False
    done: float | None = None
    total: float | None = None


@dataclass(frozen=True)
class KpiHistoryRecord:
    """A KPI's value and status at one pass that stored a snapshot."""

    kpi_id: str
    cycle: str
    as_of: datetime
    value: float
    status: str | None
    snapshot_id: int | None


@dataclass(frozen=True)
class Checkin:
    id: int
    kr_id: str
    at: datetime
    value: float | None
    confidence: Confidence | None
    note: str | None
    author: str | None


@dataclass(frozen=True)
class LatestCheckin:
    """A KR's check-in state: the latest value and the latest confidence may come from
    different check-ins (a check-in may set only one of them)."""

    kr_id: str
    value: float | None = None
    value_at: datetime | None = None
    confidence: Confidence | None = None
    confidence_at: datetime | None = None
    note: str | None = None
    note_at: datetime | None = None
    #: Who wrote the note (a ``people`` key for chat check-ins, a login for the CLI).
    note_by: str | None = None


@dataclass(frozen=True)
class OutboxItem:
    """A message to deliver, as given to :meth:`Store.enqueue`.

    ``target`` names where it goes without any secret: ``slack:C123``,
    ``teams_bot:19:abc@thread.tacv2``, ``teams_workflow:ENV_VAR_NAME``.
    """

    idempotency_key: str
    route: str
    target: str
    kind: OutboxKind
    payload: Mapping[str, Any]
    snapshot_id: int | None = None


@dataclass(frozen=True)
class OutboxRow:
    id: int
    idempotency_key: str
    route: str
    target: str
    kind: OutboxKind
    snapshot_id: int | None
    payload: dict[str, Any]
    status: OutboxStatus
    attempts: int
    claimed_by: str | None
    next_attempt_at: datetime | None
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None
    result_ref: str | None
    claimed_at: datetime | None = None


@dataclass(frozen=True)
class ClaimedDelivery:
    """An outbox row claimed for sending (now ``sending``, ``claimed_by`` the claimer).

    ``uncertain`` is True when the row was already ``sending`` under another claimer:
    that attempt died mid-send, so the message may have gone out; check the
    destination (e.g. Slack history by idempotency key) before posting again.
    """

    row: OutboxRow
    uncertain: bool


@dataclass(frozen=True)
class MessageRef:
    """Where a standing message lives, for editing it in place."""

    target: str
    kind: str
    channel: str
    message_id: str
    updated_at: datetime


@dataclass(frozen=True)
class TargetMessages:
    """What planning a target's messages needs to know about it."""

    #: Where its standing scorecard message is, once posted.
    scorecard_ref: MessageRef | None
    #: Whether a scorecard message for it is queued (pending, sending) or failed for good.
    scorecard_queued: bool

    @property
    def has_standing(self) -> bool:
        """Whether the target has (or is about to have) its standing scorecard message."""
        return self.scorecard_ref is not None or self.scorecard_queued


@dataclass(frozen=True)
class Lease:
    name: str
    holder: str
    acquired_at: datetime
    expires_at: datetime


@dataclass(frozen=True)
class DeliverySummary:
    counts: dict[str, int] = field(default_factory=dict)
    pending: tuple[OutboxRow, ...] = ()
    failed: tuple[OutboxRow, ...] = ()
