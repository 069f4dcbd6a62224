"""Digest and check-in reminder slots shared by ``run`` and ``serve``: due once per kind,
slot and target, whoever sends them, against the sandboxes and a real store."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import time_machine

from okr_sync.config.plan_loader import load_plan
from okr_sync.sync.pipeline import PassOptions
from okr_sync.sync.runtime import Runtime
from okr_sync.sync.sandbox_world import DEMO_CHANNEL, SandboxWorld, sandbox_world
from okr_sync.sync.scheduled import due_slots, scheduled_key, send_slot
from okr_sync.sync.service.loop import Scheduler
from okr_sync.sync.service.metrics import ServiceMetrics
from okr_sync.sync.service.schedule import Schedule
from okr_sync.sync.store.locks import Leadership
from okr_sync.sync.store.store import Store
from support.paths import DEMO_PLAN

MONDAY_9 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)  # demo plan: digest "0 9 * * MON", UTC
FRIDAY_9 = MONDAY_9 + timedelta(days=4)  # demo plan: reminder "0 9 * * FRI"


@pytest.fixture
def world(tmp_path: Path, database_url: str) -> Iterator[SandboxWorld]:
    with sandbox_world(tmp_path, issues=200, seed=7) as w:
        w.database_url = database_url
        yield w


def _runtime(world: SandboxWorld) -> Runtime:
    return world.runtime(load_plan(DEMO_PLAN))


@pytest.fixture
def runtime(world: SandboxWorld) -> Iterator[Runtime]:
    rt = _runtime(world)
    try:
        yield rt
    finally:
        rt.close()


def _store(runtime: Runtime) -> Store:
    assert isinstance(runtime.store, Store)
    return runtime.store


def _digests(world: SandboxWorld) -> list[str]:
    return [m.text for m in world.slack.messages(DEMO_CHANNEL)
            if m.text.startswith("Weekly OKR digest")]


def _run(runtime: Runtime) -> None:
    result = runtime.run_locked(PassOptions(kind="run"), scheduled=True)
    assert result.exit_code == 0, result.failures


def test_run_given_digest_time_passed_sends_one_digest_however_often_it_runs(
    world: SandboxWorld, runtime: Runtime
) -> None:
    with time_machine.travel(MONDAY_9 - timedelta(minutes=10), tick=True) as traveller:
        _run(runtime)  # the first pass: before the slot, nothing scheduled
        _run(runtime)
        assert _digests(world) == []
        traveller.move_to(MONDAY_9 + timedelta(minutes=1))
        result = runtime.run_locked(PassOptions(kind="run"), scheduled=True)
        traveller.move_to(MONDAY_9 + timedelta(minutes=11))
        _run(runtime)
        _run(runtime)
    assert len(_digests(world)) == 1
    digest_rows = [r for r in _store(runtime).list_outbox() if r.kind == "digest"]
    assert {r.idempotency_key for r in digest_rows} == {
        scheduled_key("digest", MONDAY_9, r.target) for r in digest_rows}
    assert len(digest_rows) == 3  # the Slack channel, the Workflows webhook, the Teams bot
    # The run reports the scheduled deliveries with its own.
    assert {d.target for d in result.scorecard.deliveries} >= {r.target for r in digest_rows}


def test_run_given_digest_time_not_reached_sends_none(
    world: SandboxWorld, runtime: Runtime
) -> None:
    with time_machine.travel(MONDAY_9 - timedelta(hours=2), tick=True) as traveller:
        _run(runtime)
        traveller.move_to(MONDAY_9 - timedelta(seconds=30))
        _run(runtime)
    assert _digests(world) == []
    assert [r for r in _store(runtime).list_outbox() if r.kind in ("digest", "reminder")] == []


def test_run_given_slot_before_the_first_pass_sends_nothing_for_it(
    world: SandboxWorld, runtime: Runtime
) -> None:
    with time_machine.travel(MONDAY_9 + timedelta(hours=3), tick=True):
        _run(runtime)
        _run(runtime)
    assert _digests(world) == []


def test_run_given_a_month_of_downtime_sends_one_digest_for_the_latest_slot(
    world: SandboxWorld, runtime: Runtime
) -> None:
    with time_machine.travel(MONDAY_9 - timedelta(minutes=5), tick=True) as traveller:
        _run(runtime)
        back = MONDAY_9 + timedelta(days=30, hours=2)  # a Wednesday, four Mondays later
        traveller.move_to(back)
        world.dataset.advance(timedelta(days=30))
        _run(runtime)
        _run(runtime)
    assert len(_digests(world)) == 1
    latest_monday = MONDAY_9 + timedelta(days=28)
    keys = {r.idempotency_key for r in _store(runtime).list_outbox() if r.kind == "digest"}
    assert scheduled_key("digest", latest_monday, f"slack:{DEMO_CHANNEL}") in keys
    assert scheduled_key("digest", MONDAY_9 + timedelta(days=7), f"slack:{DEMO_CHANNEL}") \
        not in keys


def test_send_slot_given_two_store_users_both_finding_the_slot_due_sends_it_once(
    world: SandboxWorld, runtime: Runtime
) -> None:
    other = _runtime(world)  # a second process or replica: its own store connection
    try:
        with time_machine.travel(MONDAY_9 - timedelta(minutes=5), tick=True) as traveller:
            _run(runtime)
            traveller.move_to(MONDAY_9 + timedelta(minutes=2))
            now = datetime.now(UTC)
            first_due = due_slots(runtime.plan, _store(runtime), now)
            second_due = due_slots(other.plan, _store(other), now)
            assert first_due == second_due == [("digest", MONDAY_9)]
            assert runtime.notifier is not None and other.notifier is not None
            sent = [send_slot(rt.plan, _store(rt), notifier, "digest", MONDAY_9)
                    for rt, notifier in ((runtime, runtime.notifier), (other, other.notifier))]
            assert due_slots(other.plan, _store(other), datetime.now(UTC)) == []
    finally:
        other.close()
    assert [r.enqueued for r in sent if r is not None] == [3, 0]
    assert len(_digests(world)) == 1


def test_run_given_two_runs_overlapping_after_the_slot_sends_one_digest(
    world: SandboxWorld, runtime: Runtime
) -> None:
    import threading

    other = _runtime(world)
    outcomes: list[object] = []

    def attempt(rt: Runtime) -> None:
        try:
            outcomes.append(rt.run_locked(PassOptions(kind="run"), wait=60, scheduled=True))
        except Exception as error:  # reported below, never swallowed
            outcomes.append(error)

    try:
        with time_machine.travel(MONDAY_9 - timedelta(minutes=5), tick=True) as traveller:
            _run(runtime)
            traveller.move_to(MONDAY_9 + timedelta(minutes=2))
            threads = [threading.Thread(target=attempt, args=(rt,)) for rt in (runtime, other)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=120)
            assert not any(thread.is_alive() for thread in threads)
    finally:
        other.close()
    assert [type(o).__name__ for o in outcomes] == ["PassResult", "PassResult"]
    assert len(_digests(world)) == 1


def test_serve_and_run_given_one_store_send_the_digest_once(
    world: SandboxWorld, runtime: Runtime
) -> None:
    serve_runtime = _runtime(world)
    scheduler = Scheduler(serve_runtime, Schedule.parse("5m"),
                          leadership=Leadership(world.database_url, holder="serve"),
                          metrics=ServiceMetrics(), clock=lambda: datetime.now(UTC))
    try:
        with time_machine.travel(MONDAY_9 - timedelta(minutes=5), tick=True) as traveller:
            scheduler.tick()  # serve's first pass
            _run(runtime)
            traveller.move_to(MONDAY_9 + timedelta(minutes=1))
            scheduler.tick()  # serve sends the digest
            assert len(_digests(world)) == 1
            _run(runtime)  # the cron job after it: nothing again
            traveller.move_to(FRIDAY_9 + timedelta(minutes=1))
            _run(runtime)  # now cron is first: the reminder
            scheduler.tick()  # and serve sends it not again
    finally:
        scheduler.close()
        serve_runtime.close()
    texts = [m.text for m in world.slack.messages(DEMO_CHANNEL)]
    assert len(_digests(world)) == 1
    assert sum(1 for t in texts if t.startswith("Check-in time")) == 1


def test_serve_given_it_was_down_over_the_slot_sends_the_digest_late_once(
    world: SandboxWorld, runtime: Runtime
) -> None:
    with time_machine.travel(MONDAY_9 - timedelta(days=1), tick=True) as traveller:
        _run(runtime)  # published before the slot, by cron or an earlier serve
        traveller.move_to(MONDAY_9 + timedelta(hours=5))
        scheduler = Scheduler(runtime, Schedule.parse("5m"),
                              leadership=Leadership(world.database_url, holder="late"),
                              metrics=ServiceMetrics(), clock=lambda: datetime.now(UTC))
        try:
            scheduler.tick()
            traveller.move_to(MONDAY_9 + timedelta(hours=5, minutes=6))
            scheduler.tick()
        finally:
            scheduler.close()
    assert len(_digests(world)) == 1


def test_run_given_progress_since_the_previous_week_digest_shows_the_biggest_moves(
    world: SandboxWorld, runtime: Runtime
) -> None:
    import json

    with time_machine.travel(MONDAY_9 - timedelta(minutes=10), tick=True) as traveller:
        _run(runtime)  # published a week before the next Monday's slot
        traveller.move_to(MONDAY_9 + timedelta(days=7, minutes=5))
        world.dataset.advance(timedelta(days=7))
        on_call = [i.id for i in sorted(world.dataset.issues.values(), key=lambda i: i.id)
                   if i.project == "OPS" and "on-call" in i.labels and "infra" not in i.labels
                   and i.status_category != "done" and not i.is_subtask]
        for issue_id in on_call[:4]:
            world.dataset.transition(issue_id, "done")
        _run(runtime)
    rows = [r for r in _store(runtime).list_outbox(target=f"slack:{DEMO_CHANNEL}")
            if r.kind == "digest"]
    assert [r.idempotency_key for r in rows] == [
        scheduled_key("digest", MONDAY_9 + timedelta(days=7), f"slack:{DEMO_CHANNEL}")]
    blocks = json.dumps(rows[0].payload["blocks"], ensure_ascii=False)
    assert "OPS-1.KR2" in blocks.split("Biggest moves this week", 1)[1]
