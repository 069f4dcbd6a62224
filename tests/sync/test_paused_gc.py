"""The cyclic collector is paused while a pass measures and stores (the bulk of its
allocations), and left as it was found afterwards."""

from __future__ import annotations

import gc
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from okr_sync.config.plan_loader import load_plan
from okr_sync.sync.paused_gc import collector_paused, paused_gc
from okr_sync.sync.pipeline import PassOptions
from okr_sync.sync.sandbox_world import sandbox_world
from okr_sync.sync.store.measures import MeasureOps
from okr_sync.sync.store.runs import RunOps
from support.paths import DEMO_PLAN

#: Only so a broken interleaving fails instead of hanging: every wait is released by an event.
_HANG_GUARD_S = 30


@pytest.fixture
def collector_on() -> Iterator[None]:
    was = gc.isenabled()
    gc.enable()
    yield
    if not was:
        gc.disable()


def test_paused_gc_given_collector_on_pauses_it_inside_and_resumes_it_after(
    collector_on: None,
) -> None:
    with paused_gc():
        inside = gc.isenabled()

    assert (inside, gc.isenabled()) == (False, True)


def test_paused_gc_given_an_error_inside_resumes_the_collector(collector_on: None) -> None:
    with pytest.raises(RuntimeError), paused_gc():
        raise RuntimeError("boom")

    assert gc.isenabled()


def test_paused_gc_given_collector_already_off_leaves_it_off(collector_on: None) -> None:
    gc.disable()
    with paused_gc(), paused_gc():
        pass

    assert not gc.isenabled()
    gc.enable()


def _in_thread(target: Callable[[], None]) -> threading.Thread:
    thread = threading.Thread(target=target)
    thread.start()
    return thread


def test_paused_gc_given_two_threads_overlapping_keeps_it_off_until_the_last_leaves(
    collector_on: None,
) -> None:
    # Two plans' passes (serve --plans): A enters, B enters, A leaves while B is inside.
    a_inside, b_inside, a_left, b_may_leave = (threading.Event() for _ in range(4))
    seen: dict[str, bool] = {}

    def plan_a() -> None:
        with paused_gc():
            a_inside.set()
            b_inside.wait(_HANG_GUARD_S)
        a_left.set()

    def plan_b() -> None:
        a_inside.wait(_HANG_GUARD_S)
        with paused_gc():
            b_inside.set()
            b_may_leave.wait(_HANG_GUARD_S)
            seen["b inside after a left"] = gc.isenabled()

    threads = [_in_thread(plan_a), _in_thread(plan_b)]
    a_left.wait(_HANG_GUARD_S)
    seen["after a left"] = gc.isenabled()
    b_may_leave.set()
    for thread in threads:
        thread.join(_HANG_GUARD_S)

    assert seen == {"after a left": False, "b inside after a left": False}
    assert gc.isenabled()
    assert not collector_paused()


def test_paused_gc_given_off_when_the_first_thread_entered_leaves_it_off(
    collector_on: None,
) -> None:
    gc.disable()
    a_inside, b_inside = threading.Event(), threading.Event()

    def plan_a() -> None:
        with paused_gc():
            a_inside.set()
            b_inside.wait(_HANG_GUARD_S)

    thread = _in_thread(plan_a)
    a_inside.wait(_HANG_GUARD_S)
    with paused_gc():
        b_inside.set()
        thread.join(_HANG_GUARD_S)
    after = gc.isenabled()
    gc.enable()

    assert not after


def test_pass_given_a_plan_reads_states_and_stores_with_the_collector_paused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, collector_on: None
) -> None:
    seen: list[tuple[str, bool]] = []
    for ops, name in ((MeasureOps, "get_measure_states"), (RunOps, "save_snapshot"),
                      (MeasureOps, "save_measure_states")):
        original = getattr(ops, name)

        def spy(self: Any, *args: Any, _name: str = name, _orig: Any = original,
                **kwargs: Any) -> Any:
            seen.append((_name, gc.isenabled()))
            return _orig(self, *args, **kwargs)

        monkeypatch.setattr(ops, name, spy)
    with sandbox_world(tmp_path, issues=300, seed=3) as world:
        world.runtime(load_plan(DEMO_PLAN)).run_locked(PassOptions())

    assert {name for name, _ in seen} == {"get_measure_states", "save_snapshot",
                                          "save_measure_states"}
    assert not any(enabled for _, enabled in seen)
    assert gc.isenabled()
