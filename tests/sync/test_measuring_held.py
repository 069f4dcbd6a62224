"""A measuring pass of many changes builds its measures once and holds no stored measure
state past measuring: counts, never times."""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Any

import pytest

from benchmarks.workload import (
    PlanShape,
    change_issues,
    make_dataset,
    make_plan,
    slack_channels,
    write_plan,
)
from okr_sync.config.plan_loader import load_plan
from okr_sync.scoring import evaluate
from okr_sync.scoring.incremental import MeasureState
from okr_sync.sync import measuring, pipeline
from okr_sync.sync.pipeline import PassOptions
from okr_sync.sync.sandbox_world import sandbox_world


def _changed_pass(tmp_path: Path, spy: Any) -> None:
    """The benchmark's workload scaled down (40 KRs and KPIs over 1,000 issues): a pass,
    then 5 % of the issues edited and a second pass, run with ``spy`` installed."""
    dataset = make_dataset(seed=1, issues=1000)
    plan_doc = make_plan(1, dataset, PlanShape.scaled(40, 4))
    plan = load_plan(write_plan(plan_doc, tmp_path / "okr-plan.yaml"))
    with sandbox_world(tmp_path, dataset=dataset,
                       channels=tuple(slack_channels(plan_doc))) as world:
        runtime = world.runtime(plan)
        try:
            runtime.run_locked(PassOptions())
            change_issues(dataset, 9, 0.05)
            with spy():
                runtime.run_locked(PassOptions())
        finally:
            runtime.close()


def test_measure_given_changed_issues_builds_the_measures_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    original = evaluate.measured_by_source

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return original(*args, **kwargs)

    class _Spy:
        def __enter__(self) -> None:
            monkeypatch.setattr(measuring, "measured_by_source", counting)
            monkeypatch.setattr(evaluate, "measured_by_source", counting)

        def __exit__(self, *exc: object) -> None:
            monkeypatch.undo()

    _changed_pass(tmp_path, _Spy)

    # Finding the untouched owners and measuring the others share one build (each
    # builds every measure's matcher and hashes its key).
    assert len(calls) == 1


def test_measure_given_changed_issues_holds_no_stored_state_after_measuring(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    held: list[tuple[int, int]] = []
    original = pipeline.measure

    def counting(*args: Any, **kwargs: Any) -> measuring.Measurements:
        result = original(*args, **kwargs)
        gc.collect()
        alive = sum(isinstance(o, MeasureState) for o in gc.get_objects())
        held.append((alive, len({id(s) for s in result.states.values()})))
        return result

    class _Spy:
        def __enter__(self) -> None:
            monkeypatch.setattr(pipeline, "measure", counting)

        def __exit__(self, *exc: object) -> None:
            monkeypatch.undo()

    _changed_pass(tmp_path, _Spy)

    # Only this pass's states are alive: the stored ones they replace are not held
    # through evaluating and saving (a second copy of every changed measure's facts).
    [(alive, states)] = held
    assert states > 10
    assert alive == states
