"""serve gives each pass's memory back before the next pass (RSS flat over many passes)."""

from __future__ import annotations

import gc
import logging
import sys
import weakref
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from okr_sync.config.plan_loader import load_plan
from okr_sync.config.settings import Settings
from okr_sync.scoring.scorecard import CycleInfo, Scorecard
from okr_sync.sync.paused_gc import paused_gc
from okr_sync.sync.pipeline import PassOptions, PassResult
from okr_sync.sync.runtime import JiraConnections, Runtime
from okr_sync.sync.service import memory
from okr_sync.sync.service.loop import Scheduler
from okr_sync.sync.service.metrics import ServiceMetrics
from okr_sync.sync.service.schedule import Schedule
from okr_sync.sync.store.locks import Leadership
from okr_sync.sync.store.reader import ReadOnlyStore
from support.clocks import FakeClock
from support.paths import DEMO_PLAN

_START = datetime(2026, 11, 3, 8, 0, tzinfo=UTC)  # a Tuesday: no digest or reminder due


class _PassObjects:
    """What a pass leaves behind in a reference cycle (sessions, SQLAlchemy results)."""

    def __init__(self) -> None:
        self.itself = self
        self.items = list(range(1000))


class CyclicRuntime(Runtime):
    """Each pass leaves its objects in a cycle, and the test keeps only weak references."""

    def __init__(self, database_url: str, clock: FakeClock) -> None:
        super().__init__(Settings(_env_file=None, database_url=database_url),
                         load_plan(DEMO_PLAN), ReadOnlyStore(), JiraConnections({}), None)
        self.fake_clock = clock
        self.left: list[weakref.ref[_PassObjects]] = []

    def run_pass(self, options: PassOptions) -> PassResult:
        self.left.append(weakref.ref(_PassObjects()))
        card = Scorecard(CycleInfo("2026-Q4", date(2026, 10, 1), date(2026, 12, 31),
                                   self.fake_clock.now, 0.4), ())
        return PassResult(card)


def test_scheduler_given_passes_leaving_cycles_frees_them_and_trims_after_each_pass(
    sqlite_url: str, collector_off: None, monkeypatch: pytest.MonkeyPatch,
) -> None:
    trims: list[int] = []

    def trim(pad: int) -> int:
        trims.append(pad)
        return 1

    monkeypatch.setattr(memory, "_malloc_trim", lambda: trim)
    clock = FakeClock(_START)
    runtime = CyclicRuntime(sqlite_url, clock)
    scheduler = Scheduler(runtime, Schedule.parse("5m", None),
                          leadership=Leadership(sqlite_url, holder="test"),
                          metrics=ServiceMetrics(), clock=clock)

    def sleep(seconds: float) -> None:
        clock.sleep(seconds)
        if clock.now >= _START + timedelta(minutes=11):
            scheduler.stop()

    scheduler.run(sleep, max_ticks=10_000)
    scheduler.close()

    assert len(runtime.left) == 3
    assert [ref() for ref in runtime.left] == [None, None, None]
    assert trims == [0, 0, 0]


def test_release_memory_given_unreachable_cycles_collects_them() -> None:
    gc.collect()
    gc.disable()
    try:
        ref = weakref.ref(_PassObjects())
        assert ref() is not None
        assert memory.release_memory() >= 1
        assert ref() is None
    finally:
        gc.enable()


def test_release_memory_given_another_pass_inside_paused_gc_leaves_its_cycles_for_later(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Another plan's pass is mid-way with the collector paused: collecting now would walk
    # all its data, which the pause is there to avoid; the cycles wait for the next pass.
    collections: list[int] = []
    monkeypatch.setattr(memory.gc, "collect", lambda: collections.append(1) or 0)
    monkeypatch.setattr(memory, "_malloc_trim", lambda: None)
    with paused_gc():
        memory.release_memory()
    memory.release_memory()

    assert collections == [1]


def test_release_memory_given_collection_skipped_freezes_only_after_one_that_ran(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A skipped collection leaves another plan's cyclic garbage around: freezing then
    # would keep it for the process's life.
    events: list[str] = []
    monkeypatch.setattr(memory, "_frozen", False)
    monkeypatch.setattr(memory.gc, "collect", lambda: events.append("collect") or 0)
    monkeypatch.setattr(memory.gc, "freeze", lambda: events.append("freeze"))
    monkeypatch.setattr(memory, "_malloc_trim", lambda: None)
    with paused_gc():
        memory.release_memory(freeze=True)
    assert events == []
    memory.release_memory(freeze=True)
    memory.release_memory(freeze=True)

    assert events == ["collect", "freeze", "collect"]


def test_release_memory_given_windows_trims_nothing_and_loads_no_library(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import ctypes

    def no_library(name: Any) -> Any:
        raise TypeError("Windows: CDLL(None) has no process-wide symbols")

    monkeypatch.setattr(memory, "_looked_up", False)
    monkeypatch.setattr(memory, "_trim", None)
    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.setattr(ctypes, "CDLL", no_library)

    assert memory.release_memory() >= 0
    assert memory._malloc_trim() is None


class _Events(logging.Handler):
    def __init__(self, events: list[str]) -> None:
        super().__init__()
        self.events = events

    def emit(self, record: logging.LogRecord) -> None:
        self.events.append(record.getMessage())


def test_scheduler_given_a_pass_logs_pass_finished_after_releasing_its_memory(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Readers of the process after "pass finished" (the benchmark's RSS sample) must see
    # it after the pass's cleanup, as the next pass finds it.
    events: list[str] = []

    def trim(pad: int) -> int:
        events.append("trim")
        return 1

    monkeypatch.setattr(memory, "_malloc_trim", lambda: trim)
    clock = FakeClock(_START)
    scheduler = Scheduler(CyclicRuntime(sqlite_url, clock), Schedule.parse("5m", None),
                          leadership=Leadership(sqlite_url, holder="test"),
                          metrics=ServiceMetrics(), clock=clock)
    handler = _Events(events)
    service_log = logging.getLogger("okr_sync.service")
    service_log.addHandler(handler)
    previous = service_log.level
    service_log.setLevel(logging.INFO)
    try:
        scheduler.tick()
    finally:
        service_log.removeHandler(handler)
        service_log.setLevel(previous)
        scheduler.close()

    passes = [e for e in events if e in ("pass starting", "trim", "pass finished")]
    assert passes == ["pass starting", "trim", "pass finished"]
