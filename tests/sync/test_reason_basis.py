"""Reasons told from the stored measure states, when the summary records that their
items are the published snapshot's, equal those told from the published items: across
passes that publish and passes that store states without publishing."""

from __future__ import annotations

import random
from collections.abc import Collection
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from benchmarks.workload import PlanShape, make_plan, write_plan
from okr_sync.config.plan_loader import load_plan
from okr_sync.scoring.evaluate import Evaluation
from okr_sync.sync import measuring, pipeline
from okr_sync.sync.lazy_explanations import PreviousStates
from okr_sync.sync.pipeline import PassOptions
from okr_sync.sync.sandbox_world import SandboxWorld, sandbox_world
from okr_sync.sync.store.store import Store
from support.quiet_benchmark import quiet_benchmark


class _Spy:
    """The evaluations each pass measures, and the published owners whose items it
    decodes to tell reasons."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.evaluations: list[dict[str, Evaluation]] = []
        #: Per pass, the owners measured from their states.
        self.measured: list[set[str]] = []
        self.decoded: set[str] = set()
        measure, get, preload = pipeline.measure, PreviousStates.__getitem__, PreviousStates.preload

        def measured(*args: Any, **kwargs: Any) -> measuring.Measurements:
            result = measure(*args, **kwargs)
            self.evaluations.append(dict(result.evaluations))
            self.measured.append(set(result.states))
            return result

        def read(states: PreviousStates, owner: str) -> Any:
            self.decoded.add(owner)
            return get(states, owner)

        def read_some(states: PreviousStates, owners: Collection[str]) -> None:
            self.decoded.update(owners)
            preload(states, owners)

        monkeypatch.setattr(pipeline, "measure", measured)
        monkeypatch.setattr(PreviousStates, "__getitem__", read)
        monkeypatch.setattr(PreviousStates, "preload", read_some)


def _dry_runs(world: SandboxWorld, plan: Any, spy: _Spy, monkeypatch: pytest.MonkeyPatch
              ) -> tuple[dict[str, Evaluation], dict[str, Evaluation], set[str]]:
    """This pass measured as a dry run without the summary's records (every reason told
    from the published items, as before they were kept) and with them: the evaluations
    of each, and the owners the second decoded."""
    runtime = world.runtime(plan, dry_run=True)
    try:
        with monkeypatch.context() as patched:
            patched.setattr(measuring, "items_of", lambda summaries: {})
            runtime.run_pass(PassOptions(dry_run=True))
        told = spy.evaluations[-1]
        spy.decoded.clear()
        runtime.run_pass(PassOptions(dry_run=True))
        return told, spy.evaluations[-1], set(spy.decoded)
    finally:
        runtime.close()


def _mutate(dataset: Any, chooser: random.Random) -> None:
    ids = sorted(dataset.issues)
    for _ in range(chooser.randint(3, 12)):
        issue_id = chooser.choice(ids)
        issue = dataset.issues.get(issue_id)
        if issue is None:
            continue
        kind = chooser.choice(["done", "reopen", "points", "move", "delete"])
        if kind == "done":
            dataset.transition(issue_id, "done")
        elif kind == "reopen" and issue.status_category == "done":
            dataset.reopen(issue_id)
        elif kind == "points":
            dataset.set_story_points(issue_id, float(chooser.randint(0, 8)))
        elif kind == "move" and not issue.is_subtask:
            dataset.move(issue_id, chooser.choice(sorted(dataset.projects)))
        elif kind == "delete":
            dataset.delete(issue_id)


def test_pass_given_states_recorded_as_published_items_tells_reasons_without_decoding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dataset, quiet, channels = quiet_benchmark(tmp_path)
    loud_doc = make_plan(3, dataset, PlanShape.scaled(40, 4))
    loud_doc["notify"] = {**loud_doc.get("notify", {}), "min_delta": 0.0}
    (tmp_path / "loud").mkdir()
    loud = load_plan(write_plan(loud_doc, tmp_path / "loud" / "okr-plan.yaml"))
    chooser = random.Random(5)
    # Passes with min_delta 0 (most publish) and 1.0 (most store states and a snapshot
    # but publish nothing), each following each.
    steps = [loud, quiet, loud, loud, quiet, quiet, loud, quiet, loud]
    with sandbox_world(tmp_path, dataset=dataset, channels=channels) as world:
        spy = _Spy(monkeypatch)
        runtime = world.runtime(loud)
        runtime.run_locked(PassOptions())
        runtime.close()
        store = Store(world.settings().database_url)
        reasons_told, decoded_in_all, measured_in_all = 0, 0, 0
        kinds: set[bool] = set()
        for n, plan in enumerate(steps):
            dataset.advance(timedelta(minutes=10))
            _mutate(dataset, chooser)
            from_published, told, decoded = _dry_runs(world, plan, spy, monkeypatch)

            assert told == from_published, n
            reasons_told += sum(1 for e in told.values() if e.reasons)
            decoded_in_all += len(decoded)
            measured_in_all += len(spy.measured[-1])
            if n == 0:
                # Every measure's state was stored with the published snapshot: the
                # reasons decode none of its items.
                assert decoded == set()
            head = store.snapshot_head(published_only=True)
            runtime = world.runtime(plan)
            runtime.run_locked(PassOptions())
            runtime.close()
            kinds.add(store.snapshot_head(published_only=True) != head)
        store.close()
    assert kinds == {True, False}  # passes that published and passes that did not
    assert reasons_told > 10
    # Owners a quiet pass measured again are decoded by the next pass (their states
    # are newer than the published items); the others are not.
    assert decoded_in_all * 2 < measured_in_all
