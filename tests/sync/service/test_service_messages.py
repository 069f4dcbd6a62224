"""Weekly digest and check-in reminders at their cron times, against the sandboxes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import time_machine

from okr_sync.config.plan_loader import load_plan
from okr_sync.sync.runtime import Runtime
from okr_sync.sync.sandbox_world import (
    DEMO_CHANNEL,
    DEMO_CONVERSATION,
    SandboxWorld,
    sandbox_world,
)
from okr_sync.sync.scheduled import scheduled_key, stored_scorecard
from okr_sync.sync.service.loop import Scheduler
from okr_sync.sync.service.metrics import ServiceMetrics
from okr_sync.sync.service.schedule import Schedule
from okr_sync.sync.state import SnapshotFormatError
from okr_sync.sync.store.locks import Leadership, RunLock
from okr_sync.sync.store.store import Store
from support.clocks import FakeClock
from support.paths import DEMO_PLAN

MONDAY_9 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)  # demo plan: digest "0 9 * * MON", UTC


@pytest.fixture
def world(tmp_path: Path) -> Iterator[SandboxWorld]:
    with sandbox_world(tmp_path, issues=200, seed=7) as w:
        yield w


@pytest.fixture
def runtime(world: SandboxWorld) -> Iterator[Runtime]:
    rt = world.runtime(load_plan(DEMO_PLAN))
    try:
        yield rt
    finally:
        rt.close()


def make_scheduler(runtime: Runtime, clock: FakeClock, holder: str) -> Scheduler:
    # Passes measure at the scheduler's time too: a slot counts only after the first pass.
    runtime.clock = clock
    return Scheduler(runtime, Schedule.parse("5m"),
                     leadership=Leadership(runtime.settings.database_url, holder=holder),
                     metrics=ServiceMetrics(), clock=clock)


def slack_texts(world: SandboxWorld) -> list[str]:
    return [m.text for m in world.slack.messages(DEMO_CHANNEL)]


def test_digest_given_its_cron_time_is_enqueued_and_delivered_once_per_target(
    world: SandboxWorld, runtime: Runtime
) -> None:
    clock = FakeClock(MONDAY_9 - timedelta(minutes=2))
    scheduler = make_scheduler(runtime, clock, "first")
    scheduler.tick()  # leader; first pass posts the standing scorecards; no digest yet
    assert len(world.slack.messages(DEMO_CHANNEL)) == 1
    clock.set(MONDAY_9 + timedelta(seconds=30))
    scheduler.tick()
    texts = slack_texts(world)
    assert len(texts) == 2 and texts[1].startswith("Weekly OKR digest")
    assert len(world.teams.activities(DEMO_CONVERSATION)) == 2
    assert len(world.teams.workflow_posts(world.workflow_id)) == 2
    assert scheduler.metrics.registry.get_sample_value(
        "okr_sync_scheduled_messages_total", {"kind": "digest"}) == 3
    assert runtime.store is not None
    digests = runtime.store.list_outbox(target=f"slack:{DEMO_CHANNEL}")
    assert [row.idempotency_key for row in digests if row.kind == "digest"] == [
        scheduled_key("digest", MONDAY_9, f"slack:{DEMO_CHANNEL}")]
    clock.set(MONDAY_9 + timedelta(minutes=1))
    scheduler.tick()
    assert len(slack_texts(world)) == 2
    scheduler.close()

    # Another replica (or a restart) finds the slot sent in the store: nothing again.
    clock.set(MONDAY_9 + timedelta(minutes=10))
    successor = make_scheduler(runtime, clock, "second")
    successor.tick()
    assert successor.state.view().role == "leader"
    assert len(slack_texts(world)) == 2
    assert len(world.teams.workflow_posts(world.workflow_id)) == 2
    successor.close()


def test_reminder_given_friday_slot_asks_for_manual_check_ins(
    world: SandboxWorld, runtime: Runtime
) -> None:
    friday_9 = MONDAY_9 + timedelta(days=4)
    clock = FakeClock(friday_9 - timedelta(minutes=1))
    scheduler = make_scheduler(runtime, clock, "first")
    scheduler.tick()
    clock.set(friday_9 + timedelta(seconds=5))
    scheduler.tick()
    texts = slack_texts(world)
    assert len(texts) == 2 and texts[1].startswith("Check-in time")
    assert "CO-1.KR3" in texts[1]  # the demo plan's manual KR
    scheduler.close()


def test_digest_given_slot_before_the_first_pass_is_not_sent(
    world: SandboxWorld, runtime: Runtime
) -> None:
    clock = FakeClock(MONDAY_9 + timedelta(hours=2))
    scheduler = make_scheduler(runtime, clock, "late")
    scheduler.tick()
    assert len(slack_texts(world)) == 1  # the standing scorecard only
    scheduler.close()


def test_digest_given_run_lock_busy_waits_and_sends_on_a_later_tick(
    world: SandboxWorld, runtime: Runtime
) -> None:
    clock = FakeClock(MONDAY_9 - timedelta(minutes=1))
    scheduler = make_scheduler(runtime, clock, "first")
    scheduler.tick()
    clock.set(MONDAY_9 + timedelta(seconds=10))
    with RunLock(runtime.settings.database_url, "run", holder="cron-job"):
        scheduler.tick()
    assert len(slack_texts(world)) == 1
    clock.set(MONDAY_9 + timedelta(seconds=20))
    scheduler.tick()
    assert len(slack_texts(world)) == 2
    scheduler.close()


def test_stored_scorecard_given_snapshot_without_measure_kinds_takes_them_from_the_plan(
    world: SandboxWorld, runtime: Runtime
) -> None:
    from okr_sync.sync.pipeline import PassOptions

    result = runtime.run_locked(PassOptions(kind="serve"))
    assert runtime.store is not None
    snapshot = runtime.store.last_published_snapshot()
    assert snapshot is not None
    rebuilt = stored_scorecard(snapshot.document, runtime.plan)
    assert rebuilt.to_json() | {"deliveries": []} == result.scorecard.to_json() | {
        "deliveries": []}
    # A version 1 snapshot (the flat scorecard document) from before measure kinds.
    stored_v1 = rebuilt.to_json()
    legacy = dict(stored_v1)
    legacy["objectives"] = [
        o | {"key_results": [{k: v for k, v in kr.items() if k != "measure"}
                             for kr in o["key_results"]]}
        for o in stored_v1["objectives"]
    ]
    kinds = {kr.id: kr.measure_kind for kr in stored_scorecard(legacy, runtime.plan).key_results()}
    assert kinds["CO-1.KR3"] == "manual" and kinds["CO-1.KR1"] == "done_ratio"
    with pytest.raises(SnapshotFormatError):
        stored_scorecard({"cycle": {"name": "x"}}, runtime.plan)


def _finish_on_call_work(world: SandboxWorld) -> None:
    """Progress on the demo plan's on-call backlog (OPS-1.KR2), so its score moves."""
    chosen = [
        i.id for i in sorted(world.dataset.issues.values(), key=lambda i: i.id)
        if i.project == "OPS" and "on-call" in i.labels and "infra" not in i.labels
        and i.status_category != "done" and not i.is_subtask
    ]
    assert chosen
    for issue_id in chosen[:4]:
        world.dataset.transition(issue_id, "done")


def _digest_after(world: SandboxWorld, runtime: Runtime, gap: timedelta) -> str:
    """Publish, let ``gap`` pass, move a KR in Jira, publish again, send the digest:
    the Slack digest's blocks as text."""
    from okr_sync.sync.pipeline import PassOptions
    from okr_sync.sync.service.digests import ScheduledMessages

    # A fixed start: elapsed time (hence confidence) then moves the same way on any day.
    with time_machine.travel(MONDAY_9 + timedelta(hours=1), tick=True) as traveller:
        assert runtime.run_locked(PassOptions(kind="serve")).exit_code == 0
        traveller.shift(gap)
        world.dataset.advance(gap)
        _finish_on_call_work(world)
        second = runtime.run_locked(PassOptions(kind="serve"))
        # Other KRs may change confidence as the cycle goes by (the date is today's).
        assert "OPS-1.KR2" in [c.kr for c in second.scorecard.changes]
        sent = ScheduledMessages(runtime, metrics=ServiceMetrics()).send(
            "digest", datetime.now(UTC))
    assert sent is not None and {d.status for d in sent.deliveries} == {"sent"}
    assert isinstance(runtime.store, Store)
    rows = [r for r in runtime.store.list_outbox(target=f"slack:{DEMO_CHANNEL}")
            if r.kind == "digest"]
    assert len(rows) == 1
    return json.dumps(rows[0].payload["blocks"], ensure_ascii=False)


def test_digest_given_scorecard_published_a_week_earlier_shows_the_biggest_moves(
    world: SandboxWorld, runtime: Runtime
) -> None:
    blocks = _digest_after(world, runtime, timedelta(days=7, hours=1))

    assert "Biggest moves this week" in blocks
    assert "OPS-1.KR2" in blocks.split("Biggest moves this week", 1)[1]


def test_digest_given_no_scorecard_published_a_week_earlier_leaves_the_moves_out(
    world: SandboxWorld, runtime: Runtime
) -> None:
    blocks = _digest_after(world, runtime, timedelta(hours=1))

    assert "Biggest moves this week" not in blocks
