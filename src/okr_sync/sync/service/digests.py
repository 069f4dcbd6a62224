"""The service's scheduled messages: the weekly digest and the check-in reminder.

At each cron slot of ``notify.digest_cron`` / ``notify.checkin_reminder_cron``
(in the plan's cycle time zone) the leader builds the messages from the last
published scorecard, enqueues them in one transaction and delivers the outbox,
all under the run lock (delivery assumes a single live claimer).

Each message's idempotency key is derived from its kind, slot and target, not
from its content: a replica that takes over after the leader died mid-way, or
a restarted service, enqueues the same keys again and the outbox ignores them.
So a slot is sent at most once per target, whoever sends it. A slot missed
while no replica ran is still sent within ``catch_up`` of its time.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from okr_sync.config.plan import Plan
from okr_sync.scoring.scorecard import Delivery, Scorecard
from okr_sync.sync.delivery.messages import plan_scheduled
from okr_sync.sync.runtime import Runtime
from okr_sync.sync.service.metrics import ServiceMetrics
from okr_sync.sync.service.schedule import ScheduleError, cron_latest
from okr_sync.sync.state import PassSnapshot, SnapshotError, SnapshotFormatError
from okr_sync.sync.store.fencing import fenced_run_lock
from okr_sync.sync.store.locks import LockBusyError, LockLostError
from okr_sync.sync.store.store import OutboxKind, Store

__all__ = [
    "DEFAULT_CATCH_UP",
    "DIGEST_LOOKBACK",
    "RETRY_AFTER",
    "ScheduledMessages",
    "ScheduledResult",
    "SnapshotFormatError",
    "scheduled_key",
    "stored_scorecard",
]

log = logging.getLogger("okr_sync.service")

DEFAULT_CATCH_UP = timedelta(hours=1)
#: After a failure (database down...), wait this long before trying the slot again.
RETRY_AFTER = timedelta(minutes=1)
#: The digest's moves are against the scorecard published this long before its slot.
DIGEST_LOOKBACK = timedelta(days=7)


def scheduled_key(kind: str, slot: datetime, target: str) -> str:
    """One key per kind, slot and target (stable across replicas and restarts)."""
    seed = f"{kind}|{slot.isoformat()}|{target}"
    return f"okr-{kind}-" + hashlib.sha256(seed.encode()).hexdigest()[:40]


def stored_scorecard(document: Mapping[str, Any], plan: Plan) -> Scorecard:
    """The scorecard of a stored snapshot, whichever replica stored it.

    Snapshots written before the document carried each KR's measure kind take it
    from the plan (the check-in reminder needs to know the manual KRs). Raises a
    :class:`~okr_sync.sync.state.SnapshotError` when the document cannot be read.
    """
    kinds = {kr.id: kr.measure.kind for _, kr in plan.key_results()}
    return PassSnapshot.from_json(document, measure_kinds=kinds).scorecard


@dataclass(frozen=True)
class ScheduledResult:
    kind: OutboxKind
    slot: datetime
    enqueued: int
    deliveries: tuple[Delivery, ...]


class ScheduledMessages:
    """Decides which slots are due and sends them (leader only)."""

    def __init__(
        self,
        runtime: Runtime,
        *,
        metrics: ServiceMetrics,
        holder: str | None = None,
        catch_up: timedelta = DEFAULT_CATCH_UP,
    ) -> None:
        self.runtime = runtime
        self.metrics = metrics
        self.holder = holder
        self.catch_up = catch_up
        self._handled: dict[str, datetime] = {}
        self._retry_at: dict[str, datetime] = {}

    def crons(self) -> list[tuple[OutboxKind, str]]:
        notify = self.runtime.plan.notify
        pairs: list[tuple[OutboxKind, str | None]] = [
            ("digest", notify.digest_cron),
            ("reminder", notify.checkin_reminder_cron),
        ]
        return [(kind, expr) for kind, expr in pairs if expr]

    def due(self, now: datetime) -> list[tuple[OutboxKind, datetime]]:
        """Slots at or before ``now``, within the catch-up window, not yet handled."""
        local = now.astimezone(self.runtime.plan.cycle.zone)
        result: list[tuple[OutboxKind, datetime]] = []
        for kind, expr in self.crons():
            try:
                slot = cron_latest(expr, local)
            except ScheduleError:
                log.error("invalid cron expression for scheduled messages",
                          extra={"kind": kind, "cron": expr})
                continue
            if self._handled.get(kind) == slot or now - slot > self.catch_up:
                continue
            retry_at = self._retry_at.get(kind)
            if retry_at is not None and now < retry_at:
                continue
            result.append((kind, slot))
        return result

    def run_due(self, now: datetime) -> list[ScheduledResult]:
        """Send every due slot; failures are logged and retried later, never raised."""
        results = []
        for kind, slot in self.due(now):
            try:
                result = self.send(kind, slot)
            except (LockBusyError, LockLostError) as error:
                log.info("scheduled message waits: another run holds the lock",
                         extra={"kind": kind, "slot": slot, "holder": error.holder})
                continue
            except Exception:
                log.exception("scheduled message failed; will retry",
                              extra={"kind": kind, "slot": slot})
                self._retry_at[kind] = now + RETRY_AFTER
                continue
            self._handled[kind] = slot
            self._retry_at.pop(kind, None)
            if result is not None:
                results.append(result)
        return results

    def send(self, kind: OutboxKind, slot: datetime) -> ScheduledResult | None:
        """Enqueue ``kind`` for ``slot`` to every route and deliver (under the run lock)."""
        store, notifier = self.runtime.store, self.runtime.notifier
        if not isinstance(store, Store) or notifier is None:
            return None
        with fenced_run_lock(store, self.runtime.settings.database_url,
                             holder=self.holder) as fence:
            snapshot = store.last_published_snapshot()
            if snapshot is None:
                log.warning("no scorecard yet: scheduled message skipped",
                            extra={"kind": kind, "slot": slot})
                return None
            try:
                scorecard = stored_scorecard(snapshot.document, self.runtime.plan)
                previous = self._week_before(store, kind, slot, scorecard)
            except SnapshotError:
                log.exception("scheduled message skipped", extra={"kind": kind, "slot": slot})
                return None
            items = [
                replace(item, idempotency_key=scheduled_key(kind, slot, item.target),
                        snapshot_id=snapshot.id)
                for item in plan_scheduled(self.runtime.plan, scorecard, kind,
                                           jira_base_url=notifier.jira_base_url,
                                           previous=previous)
            ]
            with store.transaction(fence=fence) as tx:
                enqueued = sum(1 for item in items if tx.enqueue(item) is not None)
            deliveries = tuple(notifier.deliver(store, fence=fence))
        self.metrics.scheduled_messages.labels(kind).inc(enqueued)
        self.metrics.record_deliveries(deliveries)
        log.info(
            "scheduled messages sent",
            extra={"kind": kind, "slot": slot, "enqueued": enqueued,
                   "deliveries": [f"{d.target}:{d.status}" for d in deliveries]},
        )
        return ScheduledResult(kind, slot, enqueued, deliveries)

    def _week_before(
        self, store: Store, kind: OutboxKind, slot: datetime, scorecard: Scorecard
    ) -> Scorecard | None:
        """For a digest, the scorecard of this cycle published a week before its slot
        (what people were told then); None when there was none yet."""
        if kind != "digest":
            return None
        # The slot, not the clock: a digest sent late (catch-up) still covers its week.
        snapshot = store.published_snapshot_at(slot - DIGEST_LOOKBACK,
                                               cycle=scorecard.cycle.name)
        if snapshot is None:
            return None
        return stored_scorecard(snapshot.document, self.runtime.plan)
