"""Scheduled messages, the weekly digest and the check-in reminder, for ``run`` and ``serve``.

Both send them the same way: after a pass, under the run lock, every kind whose
cron slot (``notify.digest_cron`` / ``notify.checkin_reminder_cron``, in the plan's
cycle time zone) has passed and has not been sent yet is built from the last
published scorecard, enqueued and delivered.

Which slot counts: only the latest slot at or before now, and only when it is not
older than the first published scorecard. So a cron job back after a month of
downtime sends one digest (the latest slot's), not four, and a new installation does
not open with a digest for a slot from before its first pass. A late slot is still
sent (late, once): a daily cron job sends Monday's 09:00 digest at its next run.

Once: each message's idempotency key is derived from its kind, slot and target, not
from its content, and the outbox keeps one row per key. Overlapping runs, several
replicas, ``run`` beside ``serve`` on one store, or a restart all enqueue the same
keys, and the store ignores the repeats: a slot is sent at most once per target.
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
from okr_sync.sync.cron import ScheduleError, cron_latest
from okr_sync.sync.delivery.messages import plan_scheduled
from okr_sync.sync.delivery.outbox import Notifier
from okr_sync.sync.delivery.targets import TargetRef
from okr_sync.sync.state import PassSnapshot
from okr_sync.sync.store.store import Fence, OutboxKind, Store

log = logging.getLogger("okr_sync.scheduled")

#: The digest's moves are against the scorecard published this long before its slot.
DIGEST_LOOKBACK = timedelta(days=7)


def scheduled_key(kind: str, slot: datetime, target: str) -> str:
    """One key per kind, slot and target (stable across processes, replicas and restarts)."""
    seed = f"{kind}|{slot.isoformat()}|{target}"
    return f"okr-{kind}-" + hashlib.sha256(seed.encode()).hexdigest()[:40]


def stored_scorecard(document: Mapping[str, Any], plan: Plan) -> Scorecard:
    """The scorecard of a stored snapshot, whoever stored it.

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


def scheduled_crons(plan: Plan) -> list[tuple[OutboxKind, str]]:
    notify = plan.notify
    pairs: list[tuple[OutboxKind, str | None]] = [
        ("digest", notify.digest_cron),
        ("reminder", notify.checkin_reminder_cron),
    ]
    return [(kind, expr) for kind, expr in pairs if expr]


def scheduled_targets(plan: Plan) -> set[str]:
    """The targets a scheduled message may go to: those of routes that objectives name."""
    named = {route for objective in plan.objectives for route in objective.notify}
    return {TargetRef.for_route(target).key
            for route, targets in plan.routes.items() if route in named
            for target in targets}


def due_slots(plan: Plan, store: Store, now: datetime) -> list[tuple[OutboxKind, datetime]]:
    """Per kind, its latest slot at or before ``now`` when it still has a target to reach
    and is not older than the first published scorecard."""
    first = store.first_published_at()
    if first is None:
        return []
    local = now.astimezone(plan.cycle.zone)
    targets = scheduled_targets(plan)
    due: list[tuple[OutboxKind, datetime]] = []
    for kind, expr in scheduled_crons(plan):
        try:
            slot = cron_latest(expr, local)
        except ScheduleError:  # the plan validates it; a stored plan from before may not
            log.error("invalid cron expression for scheduled messages",
                      extra={"kind": kind, "cron": expr})
            continue
        if slot < first:
            continue
        keys = {scheduled_key(kind, slot, target) for target in targets}
        # A reminder has nothing to ask a target without manual KRs: such a target gets no
        # row, so the slot is looked at again by the next pass, which again sends nothing.
        if keys - store.existing_keys(keys):
            due.append((kind, slot))
    return due


def send_slot(plan: Plan, store: Store, notifier: Notifier, kind: OutboxKind,
              slot: datetime, *, fence: Fence | None = None) -> ScheduledResult | None:
    """Enqueue ``kind`` for ``slot`` to every target and deliver. The caller holds the
    run lock (delivery assumes one live claimer) and passes its ``fence`` (the lock's
    epoch), so that a caller that lost the lock enqueues and sends nothing more
    (LockLostError). None without a published scorecard.

    Raises :class:`~okr_sync.sync.state.SnapshotError` when the stored scorecard cannot
    be read.
    """
    snapshot = store.last_published_snapshot()
    if snapshot is None:
        log.warning("no scorecard yet: scheduled message skipped",
                    extra={"kind": kind, "slot": slot})
        return None
    scorecard = stored_scorecard(snapshot.document, plan)
    previous = week_before(plan, store, slot, scorecard) if kind == "digest" else None
    items = [
        replace(item, idempotency_key=scheduled_key(kind, slot, item.target),
                snapshot_id=snapshot.id)
        for item in notifier.tag(plan_scheduled(
            plan, scorecard, kind, jira_base_url=notifier.jira_base_url, previous=previous,
            slack_buttons=notifier.slack_buttons, checkin_form=notifier.teams_checkin_form))
    ]
    with store.transaction(fence=fence) as tx:
        enqueued = sum(1 for item in items if tx.enqueue(item) is not None)
    deliveries = tuple(notifier.deliver(store, fence=fence))
    log.info("scheduled messages sent",
             extra={"kind": kind, "slot": slot, "enqueued": enqueued,
                    "deliveries": [f"{d.target}:{d.status}" for d in deliveries]})
    return ScheduledResult(kind, slot, enqueued, deliveries)


def send_due(plan: Plan, store: Store, notifier: Notifier, now: datetime, *,
             fence: Fence | None = None) -> list[ScheduledResult]:
    """Send every due slot (see :func:`due_slots`); the caller holds the run lock."""
    results = []
    for kind, slot in due_slots(plan, store, now):
        result = send_slot(plan, store, notifier, kind, slot, fence=fence)
        if result is not None:
            results.append(result)
    return results


def week_before(plan: Plan, store: Store, slot: datetime, scorecard: Scorecard
                ) -> Scorecard | None:
    """The scorecard of this cycle published a week before ``slot`` (what people were told
    then), for the digest's moves; None when there was none yet."""
    # The slot, not the clock: a digest sent late still covers its week.
    snapshot = store.published_snapshot_at(slot - DIGEST_LOOKBACK, cycle=scorecard.cycle.name)
    if snapshot is None:
        return None
    return stored_scorecard(snapshot.document, plan)
