"""The service's scheduled messages: the weekly digest and the check-in reminder.

The rules (which slot is due, once per kind, slot and target) live in
:mod:`okr_sync.sync.scheduled`, shared with ``okr-sync run``, so cron and ``serve``
send the same messages at the same slots. Here: the leader's side of it, checking
after each tick, taking the run lock (delivery assumes a single live claimer),
counting metrics and retrying a failed slot a minute later.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from okr_sync.sync.runtime import Runtime
from okr_sync.sync.scheduled import ScheduledResult, due_slots, send_slot
from okr_sync.sync.service.metrics import ServiceMetrics
from okr_sync.sync.state import SnapshotError
from okr_sync.sync.store.fencing import fenced_run_lock
from okr_sync.sync.store.locks import LockBusyError, LockLostError
from okr_sync.sync.store.store import OutboxKind, Store

log = logging.getLogger("okr_sync.service")

#: After a failure (database down...), wait this long before trying the slot again.
RETRY_AFTER = timedelta(minutes=1)


class ScheduledMessages:
    """Sends the due slots (leader only)."""

    def __init__(
        self,
        runtime: Runtime,
        *,
        metrics: ServiceMetrics,
        holder: str | None = None,
    ) -> None:
        self.runtime = runtime
        self.metrics = metrics
        self.holder = holder
        #: Per kind, the slot this process saw through: no store query for it again.
        self._handled: dict[OutboxKind, datetime] = {}
        self._retry_at: datetime | None = None

    def due(self, now: datetime) -> list[tuple[OutboxKind, datetime]]:
        """Slots due by the shared rules and not yet handled by this process."""
        store = self.runtime.store
        if not isinstance(store, Store) or (self._retry_at is not None and now < self._retry_at):
            return []
        try:
            due = due_slots(self.runtime.plan, store, now)
        except Exception:
            log.exception("could not read which scheduled messages are due; will retry")
            self._retry_at = now + RETRY_AFTER
            return []
        return [(kind, slot) for kind, slot in due if self._handled.get(kind) != slot]

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
            except SnapshotError:
                log.exception("scheduled message skipped", extra={"kind": kind, "slot": slot})
                self._handled[kind] = slot
                continue
            except Exception:
                log.exception("scheduled message failed; will retry",
                              extra={"kind": kind, "slot": slot})
                self._retry_at = now + RETRY_AFTER
                continue
            self._handled[kind] = slot
            self._retry_at = None
            if result is not None:
                results.append(result)
        return results

    def send(self, kind: OutboxKind, slot: datetime) -> ScheduledResult | None:
        """Enqueue ``kind`` for ``slot`` to every target and deliver (under the run lock)."""
        store, notifier = self.runtime.store, self.runtime.notifier
        if not isinstance(store, Store) or notifier is None:
            return None
        with fenced_run_lock(store, self.runtime.settings.database_url,
                             holder=self.holder) as fence:
            result = send_slot(self.runtime.plan, store, notifier, kind, slot, fence=fence)
        if result is not None:
            self.metrics.scheduled_messages.labels(kind).inc(result.enqueued)
            self.metrics.record_deliveries(result.deliveries)
        return result
