"""Store operations on delivery: the outbox, standing-message refs, leases and the
delivery summary that ``status`` shows."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from okr_sync.sync.store.base import StoreOps, insert_ignore, to_jsonable, truncate, upsert
from okr_sync.sync.store.fencing import Fence, check_fence, may_be_in_flight
from okr_sync.sync.store.records import (
    ClaimedDelivery,
    DeliverySummary,
    InvalidRecordError,
    InvalidStateError,
    Lease,
    MessageRef,
    NotFoundError,
    OutboxItem,
    OutboxKind,
    OutboxRow,
    OutboxStatus,
    TargetMessages,
)
from okr_sync.sync.store.tables import OUTBOX_KINDS, leases, message_refs, outbox

_ACTIVE: tuple[OutboxStatus, ...] = ("pending", "sending")


def _row(r: sa.Row[Any]) -> OutboxRow:
    return OutboxRow(
        id=r.id,
        idempotency_key=r.idempotency_key,
        route=r.route,
        target=r.target,
        kind=r.kind,
        snapshot_id=r.snapshot_id,
        payload=dict(r.payload),
        status=r.status,
        attempts=r.attempts,
        claimed_by=r.claimed_by,
        next_attempt_at=r.next_attempt_at,
        last_error=r.last_error,
        created_at=r.created_at,
        sent_at=r.sent_at,
        result_ref=r.result_ref,
        claimed_at=r.claimed_at,
    )


def _check_item(item: OutboxItem) -> None:
    if item.kind not in OUTBOX_KINDS:
        raise InvalidRecordError(f"unknown outbox kind {item.kind!r}")
    for name in ("idempotency_key", "route", "target"):
        text = getattr(item, name)
        if not text:
            raise InvalidRecordError(f"outbox item needs a {name}")
        # A target names a channel, a conversation or an env var: a URL here would be a
        # webhook URL, which is a secret and must never be stored.
        if "://" in text:
            raise InvalidRecordError(f"outbox {name} must not be a URL")


class OutboxOps(StoreOps):
    # -- outbox ------------------------------------------------------------------------

    def enqueue(self, item: OutboxItem, *, at: datetime | None = None) -> int | None:
        """Add a message to deliver; returns its id, or None when a row with the same
        idempotency key already exists (enqueueing is idempotent)."""
        _check_item(item)
        values = {
            "idempotency_key": item.idempotency_key,
            "route": item.route,
            "target": item.target,
            "kind": item.kind,
            "snapshot_id": item.snapshot_id,
            "payload": to_jsonable(item.payload),
            "status": "pending",
            "attempts": 0,
            "created_at": self._now(at),
        }
        with self._connection() as conn:
            stmt = insert_ignore(conn, outbox, ["idempotency_key"]).values(values)
            new_id = conn.execute(stmt.returning(outbox.c.id)).scalar_one_or_none()
        return None if new_id is None else int(new_id)

    def supersede_pending(self, target: str, kind: OutboxKind, *, older_than: int) -> int:
        """Mark pending rows of ``target`` + ``kind`` with ids below ``older_than`` as
        superseded (a newer scorecard replaces an undelivered older one). Rows being sent
        are left alone: their outcome is not known yet."""
        with self._connection() as conn:
            return conn.execute(
                sa.update(outbox)
                .where(
                    outbox.c.target == target,
                    outbox.c.kind == kind,
                    outbox.c.status == "pending",
                    outbox.c.id < older_than,
                )
                .values(status="superseded", next_attempt_at=None)
            ).rowcount

    def claim_deliverable(
        self,
        *,
        claimer: str,
        now: datetime | None = None,
        limit: int | None = None,
        fence: Fence | None = None,
        in_flight_grace: timedelta = timedelta(0),
    ) -> list[ClaimedDelivery]:
        """Claim the next row of every target that is due, marking it ``sending``.

        ``claimer`` identifies this delivery attempt (e.g. ``run:42``; a new one per
        pass). Per-target order: only a target's oldest undelivered row can be
        claimed. A head row in flight under this claimer, or waiting for its retry
        time, holds back the rows behind it; a head left ``sending`` by another
        claimer (a process that died mid-send) is claimed again as ``uncertain``,
        unless its post may still be in flight: a claimer whose process lives (a holder
        that lost its lock) or cannot be checked (another host) keeps the row, and the
        rows behind it, until ``in_flight_grace`` has passed since its claim. Claim
        again after settling each row (mark_sent / mark_retry / mark_failed) to get the
        next one. Call it outside a
        transaction, so the claim is committed before anything is sent. With a
        ``fence``, the claim is refused (:class:`LockLostError`) once another holder has
        taken the run lock.
        """
        if not claimer:
            raise InvalidRecordError("claim_deliverable needs a claimer")
        when = self._now(now)
        heads = (
            sa.select(sa.func.min(outbox.c.id))
            .where(outbox.c.status.in_(_ACTIVE))
            .group_by(outbox.c.target)
            .scalar_subquery()
        )
        interrupted = sa.and_(
            outbox.c.status == "sending",
            sa.or_(outbox.c.claimed_by.is_(None), outbox.c.claimed_by != claimer),
        )
        due = sa.and_(
            outbox.c.status == "pending",
            sa.or_(outbox.c.next_attempt_at.is_(None), outbox.c.next_attempt_at <= when),
        )
        query = (
            sa.select(outbox)
            .where(outbox.c.id.in_(heads), sa.or_(interrupted, due))
            .order_by(outbox.c.id)
        )
        if limit is not None:
            query = query.limit(limit)
        claimed: list[ClaimedDelivery] = []
        with self._connection() as conn:
            check_fence(conn, fence)
            for row in conn.execute(query).all():
                if row.status == "sending" and may_be_in_flight(
                    row.claimed_by, row.claimed_at, when, in_flight_grace
                ):
                    continue  # its sender may still be posting: the target waits
                # Compare-and-set: only a caller that still sees the row as we read it moves it.
                moved = conn.execute(
                    sa.update(outbox)
                    .where(
                        outbox.c.id == row.id,
                        outbox.c.status == row.status,
                        outbox.c.attempts == row.attempts,
                    )
                    .values(status="sending", attempts=row.attempts + 1, claimed_by=claimer,
                            claimed_at=when)
                ).rowcount
                if moved:
                    fresh = conn.execute(sa.select(outbox).where(outbox.c.id == row.id)).one()
                    claimed.append(ClaimedDelivery(_row(fresh), uncertain=row.status == "sending"))
        return claimed

    def mark_sent(
        self,
        outbox_id: int,
        *,
        result_ref: str | None = None,
        at: datetime | None = None,
        claimer: str | None = None,
    ) -> None:
        """A claimed row reached its target (``result_ref``: e.g. ``C123:1700000000.1``).

        With ``claimer``, only while the row is still claimed by it: what a sender
        learnt about its own post is recorded even after it lost the run lock (the
        next holder left the row alone meanwhile, see :meth:`claim_deliverable`).
        """
        self._settle(
            outbox_id,
            ("sending",),
            claimer,
            status="sent",
            sent_at=self._now(at),
            result_ref=result_ref,
            next_attempt_at=None,
            last_error=None,
        )

    def mark_retry(
        self, outbox_id: int, *, next_attempt_at: datetime, error: str,
        claimer: str | None = None,
    ) -> None:
        """A claimed row failed transiently: back to pending until ``next_attempt_at``."""
        self._settle(
            outbox_id,
            ("sending",),
            claimer,
            status="pending",
            next_attempt_at=self._now(next_attempt_at),
            last_error=truncate(error),
        )

    def mark_failed(self, outbox_id: int, *, error: str, claimer: str | None = None) -> None:
        """A row cannot be delivered (permanent error): failed, with the reason kept."""
        self._settle(
            outbox_id,
            ("sending",) if claimer else _ACTIVE,
            claimer,
            status="failed",
            next_attempt_at=None,
            last_error=truncate(error),
        )

    def _settle(
        self, outbox_id: int, allowed: tuple[str, ...], claimer: str | None, **values: Any
    ) -> None:
        mine = [] if claimer is None else [outbox.c.claimed_by == claimer]
        with self._connection() as conn:
            moved = conn.execute(
                sa.update(outbox)
                .where(outbox.c.id == outbox_id, outbox.c.status.in_(allowed), *mine)
                .values(**values)
            ).rowcount
            if moved:
                return
            row = conn.execute(
                sa.select(outbox.c.status, outbox.c.claimed_by).where(outbox.c.id == outbox_id)
            ).first()
        if row is None:
            raise NotFoundError(f"no outbox row {outbox_id}")
        if claimer is not None and row.status in allowed:
            raise InvalidStateError(f"outbox row {outbox_id} is claimed by another sender")
        raise InvalidStateError(
            f"outbox row {outbox_id} is {row.status}, expected {' or '.join(allowed)}"
        )

    def get_outbox(self, outbox_id: int) -> OutboxRow:
        with self._connection() as conn:
            row = conn.execute(sa.select(outbox).where(outbox.c.id == outbox_id)).first()
        if row is None:
            raise NotFoundError(f"no outbox row {outbox_id}")
        return _row(row)

    def list_outbox(
        self,
        *,
        status: OutboxStatus | None = None,
        target: str | None = None,
        limit: int | None = 100,
    ) -> list[OutboxRow]:
        """Outbox rows in id order, optionally filtered."""
        query = sa.select(outbox)
        if status is not None:
            query = query.where(outbox.c.status == status)
        if target is not None:
            query = query.where(outbox.c.target == target)
        query = query.order_by(outbox.c.id)
        if limit is not None:
            query = query.limit(limit)
        with self._connection() as conn:
            return [_row(r) for r in conn.execute(query)]

    def existing_keys(self, keys: Collection[str]) -> set[str]:
        """Which of ``keys`` are idempotency keys of outbox rows (whatever their status)."""
        if not keys:
            return set()
        with self._connection() as conn:
            rows = conn.execute(sa.select(outbox.c.idempotency_key)
                                .where(outbox.c.idempotency_key.in_(list(keys))))
            return {str(r.idempotency_key) for r in rows}

    def delivery_summary(self, *, limit: int = 20) -> DeliverySummary:
        """Counts per status, the oldest undelivered rows and the newest failures."""
        with self._connection() as conn:
            counts = {
                str(status): int(count)
                for status, count in conn.execute(
                    sa.select(outbox.c.status, sa.func.count()).group_by(outbox.c.status)
                )
            }
            pending = conn.execute(
                sa.select(outbox)
                .where(outbox.c.status.in_(_ACTIVE))
                .order_by(outbox.c.id)
                .limit(limit)
            ).all()
            failed = conn.execute(
                sa.select(outbox)
                .where(outbox.c.status == "failed")
                .order_by(outbox.c.id.desc())
                .limit(limit)
            ).all()
        return DeliverySummary(
            counts, tuple(_row(r) for r in pending), tuple(_row(r) for r in failed)
        )

    # -- standing message refs ---------------------------------------------------------

    def get_message_ref(self, target: str, kind: str = "scorecard") -> MessageRef | None:
        with self._connection() as conn:
            row = conn.execute(
                sa.select(message_refs).where(
                    message_refs.c.target == target, message_refs.c.kind == kind
                )
            ).first()
        if row is None:
            return None
        return MessageRef(row.target, row.kind, row.channel, row.message_id, row.updated_at)

    def target_messages(self, targets: Collection[str]) -> dict[str, TargetMessages]:
        """Per target, its standing scorecard ref and whether a scorecard for it is queued
        or failed: what planning messages reads, in two queries for any number of targets."""
        wanted = sorted(set(targets))
        refs: dict[str, MessageRef] = {}
        queued: set[str] = set()
        if wanted:
            with self._connection() as conn:
                for row in conn.execute(
                    sa.select(message_refs).where(
                        message_refs.c.target.in_(wanted), message_refs.c.kind == "scorecard"
                    )
                ):
                    refs[row.target] = MessageRef(
                        row.target, row.kind, row.channel, row.message_id, row.updated_at
                    )
                queued = set(
                    conn.execute(
                        sa.select(outbox.c.target)
                        .where(
                            outbox.c.target.in_(wanted),
                            outbox.c.kind == "scorecard",
                            outbox.c.status.in_((*_ACTIVE, "failed")),
                        )
                        .distinct()
                    ).scalars()
                )
        return {t: TargetMessages(refs.get(t), t in queued) for t in wanted}

    def set_message_ref(
        self,
        target: str,
        kind: str = "scorecard",
        *,
        channel: str,
        message_id: str,
        at: datetime | None = None,
    ) -> MessageRef:
        """Remember where a standing message is (Slack channel + ts, Teams conversation +
        activity id) so the next scorecard edits it in place."""
        ref = MessageRef(target, kind, channel, message_id, self._now(at))
        with self._connection() as conn:
            conn.execute(
                upsert(
                    conn, message_refs, ["target", "kind"], ["channel", "message_id", "updated_at"]
                ),
                {
                    "target": target,
                    "kind": kind,
                    "channel": channel,
                    "message_id": message_id,
                    "updated_at": ref.updated_at,
                },
            )
        return ref

    def delete_message_ref(self, target: str, kind: str = "scorecard") -> bool:
        """Forget a standing message (it was deleted: the next scorecard posts anew)."""
        with self._connection() as conn:
            return bool(
                conn.execute(
                    sa.delete(message_refs).where(
                        message_refs.c.target == target, message_refs.c.kind == kind
                    )
                ).rowcount
            )

    # -- leases ------------------------------------------------------------------------

    def acquire_lease(
        self, name: str, holder: str, ttl: timedelta, *, now: datetime | None = None
    ) -> bool:
        """Take a clock-based lease if it is free, expired or already ours.

        For coordination that tolerates expiry semantics (e.g. "one replica sends this
        week's digest"); the run lock itself uses :mod:`okr_sync.sync.store.locks`, which
        does not depend on clocks.
        """
        if ttl <= timedelta(0):
            raise InvalidRecordError("a lease needs a positive ttl")
        when = self._now(now)
        values = {"name": name, "holder": holder, "acquired_at": when, "expires_at": when + ttl}
        with self._connection() as conn:
            conn.execute(
                upsert(
                    conn,
                    leases,
                    ["name"],
                    ["holder", "acquired_at", "expires_at"],
                    where=lambda table, excluded: sa.or_(
                        table.expires_at <= excluded.acquired_at, table.holder == excluded.holder
                    ),
                ),
                values,
            )
            current = conn.execute(sa.select(leases.c.holder).where(leases.c.name == name))
            return bool(current.scalar_one() == holder)

    def renew_lease(
        self, name: str, holder: str, ttl: timedelta, *, now: datetime | None = None
    ) -> bool:
        """Extend our unexpired lease; False if it expired or is someone else's."""
        when = self._now(now)
        with self._connection() as conn:
            return bool(
                conn.execute(
                    sa.update(leases)
                    .where(
                        leases.c.name == name, leases.c.holder == holder, leases.c.expires_at > when
                    )
                    .values(expires_at=when + ttl)
                ).rowcount
            )

    def release_lease(self, name: str, holder: str) -> bool:
        with self._connection() as conn:
            return bool(
                conn.execute(
                    sa.delete(leases).where(leases.c.name == name, leases.c.holder == holder)
                ).rowcount
            )

    def get_lease(self, name: str) -> Lease | None:
        with self._connection() as conn:
            row = conn.execute(sa.select(leases).where(leases.c.name == name)).first()
        return None if row is None else Lease(row.name, row.holder, row.acquired_at, row.expires_at)
