"""The service loop with a fake clock: interval and cron passes, failures, lock, leadership."""

from __future__ import annotations

import gc
import shutil
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from okr_sync.config.plan_loader import load_plan
from okr_sync.config.settings import Settings
from okr_sync.scoring.scorecard import CycleInfo, Scorecard
from okr_sync.sync.pipeline import PassOptions, PassResult
from okr_sync.sync.runtime import JiraConnections, Runtime
from okr_sync.sync.service import memory
from okr_sync.sync.service.loop import Scheduler
from okr_sync.sync.service.metrics import ServiceMetrics
from okr_sync.sync.service.schedule import Schedule
from okr_sync.sync.store.locks import Leadership, LockLostError, RunLock
from okr_sync.sync.store.reader import ReadOnlyStore
from okr_sync.sync.store.store import Store
from support.clocks import FakeClock
from support.paths import DEMO_PLAN

_START = datetime(2026, 11, 3, 8, 0, tzinfo=UTC)  # a Tuesday: no digest or reminder due


class ScriptedRuntime(Runtime):
    """Passes recorded with their (fake) time; ``failures`` raise in order."""

    def __init__(self, database_url: str, clock: FakeClock, store: Store | None = None,
                 failures: tuple[Exception | None, ...] = ()) -> None:
        super().__init__(Settings(_env_file=None, database_url=database_url),
                         load_plan(DEMO_PLAN), store or ReadOnlyStore(),
                         JiraConnections({}), None)
        self.fake_clock = clock
        self.at: list[datetime] = []
        self.failures = list(failures)

    def run_pass(self, options: PassOptions) -> PassResult:
        assert options.kind == "serve"
        self.at.append(self.fake_clock.now)
        failure = self.failures.pop(0) if self.failures else None
        if failure is not None:
            raise failure
        card = Scorecard(CycleInfo("2026-Q4", date(2026, 10, 1), date(2026, 12, 31),
                                   self.fake_clock.now, 0.4), ())
        return PassResult(card)


def make_scheduler(runtime: Runtime, clock: FakeClock, schedule: str = "5m", *,
                   cron: str | None = None, holder: str = "test") -> Scheduler:
    return Scheduler(
        runtime,
        Schedule.parse(None if cron else schedule, cron),
        leadership=Leadership(runtime.settings.database_url, holder=holder),
        metrics=ServiceMetrics(),
        clock=clock,
    )


def metric(scheduler: Scheduler, name: str, **labels: str) -> float | None:
    return scheduler.metrics.registry.get_sample_value(name, labels or None)


@pytest.fixture
def migrated_sqlite(tmp_path: Path, _sqlite_template: Path) -> str:
    path = tmp_path / "okr-sync.db"
    shutil.copyfile(_sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture
def store(migrated_sqlite: str) -> Iterator[Store]:
    with Store(migrated_sqlite) as s:
        yield s


def test_loop_given_interval_runs_a_pass_each_interval_until_stopped(sqlite_url: str) -> None:
    clock = FakeClock(_START)
    runtime = ScriptedRuntime(sqlite_url, clock)
    scheduler = make_scheduler(runtime, clock, "5m")

    def sleep(seconds: float) -> None:
        clock.sleep(seconds)
        if clock.now >= _START + timedelta(minutes=16):
            scheduler.stop()

    scheduler.run(sleep, max_ticks=10_000)
    assert runtime.at == [_START + timedelta(minutes=m) for m in (0, 5, 10, 15)]
    assert scheduler.state.view().passes == 4
    assert max(clock.sleeps) <= 5.0  # leadership is polled at least every 5 s
    assert metric(scheduler, "okr_sync_passes_total", outcome="ok") == 4
    scheduler.close()
    assert scheduler.state.view().role == "stopped"
    assert Leadership(sqlite_url, holder="next").poll()  # released


def test_loop_given_stop_requested_before_start_runs_nothing(sqlite_url: str) -> None:
    clock = FakeClock(_START)
    runtime = ScriptedRuntime(sqlite_url, clock)
    scheduler = make_scheduler(runtime, clock)
    scheduler.stop()
    scheduler.run(clock.sleep, max_ticks=5)
    assert runtime.at == []


def test_loop_given_cron_waits_for_each_fire_time(sqlite_url: str) -> None:
    clock = FakeClock(_START + timedelta(minutes=3))
    runtime = ScriptedRuntime(sqlite_url, clock)
    scheduler = make_scheduler(runtime, clock, cron="*/15 * * * *")

    def sleep(seconds: float) -> None:
        clock.sleep(seconds)
        if clock.now >= _START + timedelta(minutes=50):
            scheduler.stop()

    scheduler.run(sleep, max_ticks=10_000)
    assert runtime.at == [_START + timedelta(minutes=m) for m in (15, 30, 45)]


def test_loop_given_failing_pass_logs_counts_and_keeps_going(
    sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock(_START)
    runtime = ScriptedRuntime(sqlite_url, clock, failures=(RuntimeError("jira exploded"),))
    scheduler = make_scheduler(runtime, clock, "1m")
    with caplog.at_level("ERROR", logger="okr_sync.service"):
        scheduler.run(clock.sleep, max_ticks=40)
    assert len(runtime.at) >= 3
    assert metric(scheduler, "okr_sync_passes_total", outcome="failed") == 1
    assert metric(scheduler, "okr_sync_passes_total", outcome="ok") == len(runtime.at) - 1
    failed = [r for r in caplog.records if r.getMessage() == "pass failed"]
    assert len(failed) == 1 and failed[0].__dict__["error"] == "RuntimeError"
    assert failed[0].exc_info is not None
    scheduler.close()


def test_loop_given_pass_that_lost_its_lock_warns_once_without_traceback_and_goes_on(
    sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock(_START)
    lost = LockLostError("run", 4, 5, "replica-2")
    runtime = ScriptedRuntime(sqlite_url, clock, failures=(lost,))
    scheduler = make_scheduler(runtime, clock, "1m")
    with caplog.at_level("WARNING", logger="okr_sync.service"):
        scheduler.run(clock.sleep, max_ticks=40)
    assert len(runtime.at) >= 2
    assert metric(scheduler, "okr_sync_passes_total", outcome="skipped") == 1
    assert not metric(scheduler, "okr_sync_passes_total", outcome="failed")
    stopped = [r for r in caplog.records
               if r.getMessage() == "pass stopped: another run took over the lock"]
    assert len(stopped) == 1 and stopped[0].exc_info is None
    assert stopped[0].__dict__["holder"] == "replica-2"
    assert not [r for r in caplog.records if r.getMessage() == "pass failed"]
    scheduler.close()


def test_tick_given_run_lock_held_elsewhere_skips_the_pass(
    migrated_sqlite: str, store: Store
) -> None:
    clock = FakeClock(_START)
    runtime = ScriptedRuntime(migrated_sqlite, clock, store=store)
    scheduler = make_scheduler(runtime, clock)
    with RunLock(migrated_sqlite, "run", holder="cron-job"):
        scheduler.tick()
    assert runtime.at == []
    assert metric(scheduler, "okr_sync_passes_total", outcome="skipped") == 1
    clock.sleep(300)
    scheduler.tick()
    assert runtime.at == [clock.now]
    scheduler.close()


def test_tick_given_another_leader_follows_then_takes_over_on_its_next_poll(
    sqlite_url: str,
) -> None:
    clock = FakeClock(_START)
    runtime = ScriptedRuntime(sqlite_url, clock)
    scheduler = make_scheduler(runtime, clock, "10s", holder="follower")
    other = Leadership(sqlite_url, holder="leader")
    assert other.poll()
    wake = scheduler.tick()
    assert scheduler.state.view().role == "follower" and runtime.at == []
    assert metric(scheduler, "okr_sync_leader") == 0
    assert wake - clock.now <= timedelta(seconds=5)  # polls within half an interval
    other.resign()
    clock.sleep((wake - clock.now).total_seconds())
    scheduler.tick()
    view = scheduler.state.view()
    assert view.role == "leader" and view.leader_since == clock.now
    assert runtime.at == [clock.now]  # takes over and syncs at once
    assert metric(scheduler, "okr_sync_leader") == 1
    scheduler.close()


def test_became_leader_given_run_left_open_by_dead_leader_closes_it(
    migrated_sqlite: str, store: Store
) -> None:
    orphan = store.start_run("serve", holder="dead:1")
    clock = FakeClock(_START)
    scheduler = make_scheduler(ScriptedRuntime(migrated_sqlite, clock, store=store), clock)
    scheduler.tick()
    assert store.get_run(orphan).outcome == "failed"
    scheduler.close()


def test_webhook_given_follower_forwards_it_to_the_leaders_next_tick(
    migrated_sqlite: str, store: Store
) -> None:
    from okr_sync.sync.service.webhooks import WebhookEvent

    clock = FakeClock(_START)
    leader_runtime = ScriptedRuntime(migrated_sqlite, clock, store=store)
    leader = make_scheduler(leader_runtime, clock, "1h", holder="leader")
    follower = make_scheduler(ScriptedRuntime(migrated_sqlite, clock, store=store), clock, "1h",
                              holder="follower")
    leader.tick()
    follower.tick()
    assert (leader.state.view().role, follower.state.view().role) == ("leader", "follower")
    follower.on_webhook(WebhookEvent("id:1", "jira:issue_updated", "SUP-9", "SUP"))
    follower.on_webhook(WebhookEvent("id:2", "jira:issue_updated", "SUP-10", "SUP"))
    clock.sleep(1)
    leader.tick()  # collects the forwarded trigger and starts debouncing it
    assert len(leader_runtime.at) == 1
    clock.sleep(5)
    leader.tick()
    assert leader_runtime.at == [_START, clock.now]
    assert store.get_lease("webhook-pass") is None
    follower.close()
    leader.close()


def test_loop_given_its_first_pass_freezes_what_outlives_it_once(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Later collections walk only what later passes make, not the modules, plan,
    # clients and caches that stay for the process's life.
    freezes: list[int] = []
    monkeypatch.setattr(memory, "_frozen", False)
    monkeypatch.setattr(gc, "freeze", lambda: freezes.append(len(runtime.at)))
    clock = FakeClock(_START)
    runtime = ScriptedRuntime(sqlite_url, clock)
    scheduler = make_scheduler(runtime, clock, "5m")

    def sleep(seconds: float) -> None:
        clock.sleep(seconds)
        if clock.now >= _START + timedelta(minutes=11):
            scheduler.stop()

    scheduler.run(sleep, max_ticks=10_000)
    scheduler.close()
    assert len(runtime.at) == 3
    assert freezes == [1]


def test_loop_given_a_plan_restarted_with_a_new_scheduler_does_not_freeze_again(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # serve --plans starts a scheduler per plan and a new one on each reload: freezing
    # again would keep the stopped scheduler's runtime, engine and clients for good.
    freezes: list[int] = []
    monkeypatch.setattr(memory, "_frozen", False)
    monkeypatch.setattr(gc, "freeze", lambda: freezes.append(1))
    for restart in range(3):
        clock = FakeClock(_START + timedelta(days=restart))
        runtime = ScriptedRuntime(sqlite_url, clock)
        scheduler = make_scheduler(runtime, clock, "5m")
        stop_at = clock.now + timedelta(minutes=6)

        def sleep(seconds: float, clock: FakeClock = clock, scheduler: Scheduler = scheduler,
                  stop_at: datetime = stop_at) -> None:
            clock.sleep(seconds)
            if clock.now >= stop_at:
                scheduler.stop()

        scheduler.run(sleep, max_ticks=10_000)
        scheduler.close()
        assert len(runtime.at) >= 1
    assert freezes == [1]
