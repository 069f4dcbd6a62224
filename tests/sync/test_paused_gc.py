"""The cyclic collector is paused while a pass measures and stores (the bulk of its
allocations), and left as it was found afterwards."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from okr_sync.config.plan_loader import load_plan
from okr_sync.sync.paused_gc import paused_gc
from okr_sync.sync.pipeline import PassOptions
from okr_sync.sync.sandbox_world import sandbox_world
from okr_sync.sync.store.measures import MeasureOps
from okr_sync.sync.store.runs import RunOps
from support.paths import DEMO_PLAN


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
