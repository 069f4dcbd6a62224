"""A measuring pass reads and writes only the measure states its changes can touch, and
what it keeps of the untouched ones is exactly what a full measurement gives."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from benchmarks.workload import PlanShape, make_dataset, make_plan, slack_channels, write_plan
from okr_sync.config.plan_loader import load_plan
from okr_sync.scoring.scorecard import scorecard_to_json
from okr_sync.sync.pipeline import PassOptions
from okr_sync.sync.sandbox_world import SandboxWorld, sandbox_world
from okr_sync.sync.state import Explanation, PassSnapshot
from okr_sync.sync.store.store import Store
from okr_sync.sync.store.tables import kr_item_ids, measure_marks
from support.paths import DEMO_PLAN
from support.quiet_benchmark import KR, crm_story, other_project, quiet_benchmark


@pytest.fixture
def world(tmp_path: Path) -> Iterator[SandboxWorld]:
    with sandbox_world(tmp_path, issues=600, seed=7) as w:
        yield w


def _comparable(result: Any) -> dict[str, Any]:
    doc = scorecard_to_json(result.scorecard)
    for objective in doc["objectives"]:
        for kr in objective["key_results"]:
            kr.pop("measured_at", None)
    for kpi in doc["kpis"]:
        kpi.pop("trend", None)  # moves with the history each stored pass writes
    return {key: doc[key] for key in ("objectives", "perspectives", "kpis", "warnings")}


def _latest_explanations(store: Store) -> dict[str, Explanation]:
    latest_id = store.latest_snapshot_id()
    assert latest_id is not None
    latest = store.get_snapshot(latest_id)
    return dict(PassSnapshot.from_json(latest.document).explanations)


def _written(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many measure-state rows each save writes."""
    written: list[int] = []
    original = Store.save_measure_states

    def spy(self: Store, source: str, states: Any, **kwargs: Any) -> None:
        written.append(len(states))
        original(self, source, states, **kwargs)

    monkeypatch.setattr(Store, "save_measure_states", spy)
    return written


def test_pass_given_one_issue_changed_reads_and_writes_only_the_states_it_touches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The benchmark's workload, scaled down: 40 KRs and KPIs over 1,000 issues.
    dataset = make_dataset(seed=1, issues=1000)
    plan_doc = make_plan(1, dataset, PlanShape.scaled(40, 4))
    plan = load_plan(write_plan(plan_doc, tmp_path / "okr-plan.yaml"))
    with sandbox_world(tmp_path, dataset=dataset,
                       channels=tuple(slack_channels(plan_doc))) as world:
        runtime = world.runtime(plan)
        try:
            runtime.run_locked(PassOptions())
            store = runtime.store
            assert isinstance(store, Store)
            all_states = store.get_measure_states("main")
            assert all_states is not None and len(all_states) >= 20
            open_ids = sorted(i.id for i in dataset.issues.values()
                              if i.status_category != "done")
            dataset.advance(timedelta(minutes=10))
            dataset.transition(open_ids[len(open_ids) // 2], "done")
            read_before = store.measure_state_rows_read
            written = _written(monkeypatch)

            runtime.run_locked(PassOptions())

            read = store.measure_state_rows_read - read_before
        finally:
            runtime.close()
    # One issue is selected by a few measures (and their objectives' siblings): the
    # pass reads (and writes) only their states, not every measure's.
    assert read < len(all_states) // 4
    assert sum(written) <= read


def _mutate(dataset: Any, chooser: random.Random, labels: list[str]) -> None:
    """One to five random changes: status, points, labels, priority, project, deletion."""
    ids = sorted(dataset.issues)
    for _ in range(chooser.randint(1, 5)):
        issue_id = chooser.choice(ids)
        issue = dataset.issues.get(issue_id)
        if issue is None:
            continue
        kind = chooser.choice(["done", "reopen", "points", "labels", "priority", "move",
                               "delete"])
        if kind == "done":
            dataset.transition(issue_id, "done")
        elif kind == "reopen" and issue.status_category == "done":
            dataset.reopen(issue_id)
        elif kind == "points":
            dataset.set_story_points(issue_id, float(chooser.randint(0, 8)))
        elif kind == "labels" and labels:
            dataset.update(issue_id, labels=[chooser.choice(labels)])
        elif kind == "priority":
            dataset.update(issue_id, priority=chooser.choice(["High", "Low", "Medium"]))
        elif kind == "move" and not issue.is_subtask:
            dataset.move(issue_id, chooser.choice(sorted(dataset.projects)))
        elif kind == "delete":
            dataset.delete(issue_id)


@pytest.mark.parametrize("workload", ["demo", "benchmark", "benchmark_unpublished"])
def test_pass_given_random_changes_keeps_untouched_kr_items_equal_to_a_full_measurement(
    tmp_path: Path, workload: str
) -> None:
    if workload == "demo":
        plan, context = load_plan(DEMO_PLAN), sandbox_world(tmp_path, issues=600, seed=7)
    else:
        dataset = make_dataset(seed=3, issues=800)
        plan_doc = make_plan(3, dataset, PlanShape.scaled(40, 4))
        if workload == "benchmark_unpublished":
            # Nothing is news after the first pass: items join and leave KRs between
            # passes that publish nothing (only the mirror as it was tells they left).
            plan_doc["notify"] = {**plan_doc.get("notify", {}), "min_delta": 1.0}
        plan = load_plan(write_plan(plan_doc, tmp_path / "okr-plan.yaml"))
        context = sandbox_world(tmp_path, dataset=dataset,
                                channels=tuple(slack_channels(plan_doc)))
    with context as world:
        runtime = world.runtime(plan)
        try:
            runtime.run_locked(PassOptions())
            store = runtime.store
            assert isinstance(store, Store)
            chooser = random.Random(11)
            labels = sorted({label for i in world.dataset.issues.values()
                             for label in i.labels})
            for _ in range(14):
                world.dataset.advance(timedelta(minutes=10))
                _mutate(world.dataset, chooser, labels)
                published = store.snapshot_head(published_only=True)
                incremental = runtime.run_locked(PassOptions())
                explained = _latest_explanations(store)
                # The same store measured again from scratch (states, summaries voided).
                with store.engine.begin() as conn:
                    conn.execute(sa.delete(measure_marks))
                full = runtime.run_locked(PassOptions())

                assert _comparable(full) == _comparable(incremental)
                # Stored only when it differs from the latest snapshot: equal either way.
                after = _latest_explanations(store)
                assert {o: e.items for o, e in after.items()} == {
                    o: e.items for o, e in explained.items()}
                if store.snapshot_head(published_only=True) == published:
                    # Reasons are told against the published snapshot: comparable only
                    # when the incremental pass did not publish (the full pass then
                    # tells them against the same one).
                    assert {o: e.reasons for o, e in after.items()} == {
                        o: e.reasons for o, e in explained.items()}
                    assert after == explained
        finally:
            runtime.close()


def test_pass_given_item_joins_and_leaves_a_kr_between_publications_equals_full(
    tmp_path: Path,
) -> None:
    dataset = make_dataset(seed=3, issues=800)
    plan_doc = make_plan(3, dataset, PlanShape.scaled(40, 4))
    plan_doc["notify"] = {**plan_doc.get("notify", {}), "min_delta": 1.0}
    plan = load_plan(write_plan(plan_doc, tmp_path / "okr-plan.yaml"))
    # O001.KR1 selects CRM issues labelled "backend".
    joiner = min(i.id for i in dataset.issues.values()
                 if i.project == "CRM" and "backend" not in i.labels
                 and i.issuetype == "Story")
    with sandbox_world(tmp_path, dataset=dataset,
                       channels=tuple(slack_channels(plan_doc))) as world:
        runtime = world.runtime(plan)
        try:
            runtime.run_locked(PassOptions())
            store = runtime.store
            assert isinstance(store, Store)
            published = store.snapshot_head(published_only=True)
            dataset.advance(timedelta(minutes=10))
            dataset.update(joiner, labels=["backend"])
            runtime.run_locked(PassOptions())
            # It joined without being published: only the mirror as the last pass
            # held it tells that it leaves.
            assert store.snapshot_head(published_only=True) == published
            dataset.advance(timedelta(minutes=10))
            dataset.update(joiner, labels=[])
            incremental = runtime.run_locked(PassOptions())
            explained = _latest_explanations(store)
            with store.engine.begin() as conn:
                conn.execute(sa.delete(measure_marks))
            full = runtime.run_locked(PassOptions())

            assert _comparable(full) == _comparable(incremental)
            assert {o: e.items for o, e in _latest_explanations(store).items()} == {
                o: e.items for o, e in explained.items()}
        finally:
            runtime.close()


@pytest.mark.parametrize("index", ["written", "rows_without_ids"])
def test_pass_given_held_item_leaves_unpublished_then_moves_project_reasons_equal_full(
    tmp_path: Path, index: str
) -> None:
    # X leaves O001.KR1 (label removed) in a pass that publishes nothing, then moves to
    # another project. The published snapshot still holds X in O001.KR1: only the ids
    # index (or the decoded items) tells the last pass that O001.KR1 must be measured
    # again, and its reasons then read X's project ("moved out", not "removed from
    # scope").
    dataset, plan, channels = quiet_benchmark(tmp_path)
    x = crm_story(dataset, backend=True)
    with sandbox_world(tmp_path, dataset=dataset, channels=channels) as world:
        runtime = world.runtime(plan)
        try:
            runtime.run_locked(PassOptions())
            store = runtime.store
            assert isinstance(store, Store)
            published = store.snapshot_head(published_only=True)
            assert str(x) in {c.id for c in _latest_explanations(store)[KR].items}
            if index == "rows_without_ids":
                # As rows a 0010-era process stored after `db upgrade` (a rolling
                # deploy): the index cannot tell who holds X, so the pass decodes.
                with store.engine.begin() as conn:
                    conn.execute(sa.delete(kr_item_ids))
            dataset.advance(timedelta(minutes=10))
            dataset.update(x, labels=[])
            runtime.run_locked(PassOptions())
            dataset.advance(timedelta(minutes=10))
            dataset.move(x, other_project("CRM"))
            runtime.run_locked(PassOptions())
            assert store.snapshot_head(published_only=True) == published
            incremental = _latest_explanations(store)
            with store.engine.begin() as conn:
                conn.execute(sa.delete(measure_marks))
            runtime.run_locked(PassOptions())
            full = _latest_explanations(store)
        finally:
            runtime.close()
    assert full[KR].reasons == ("1 moved out",)
    assert {o: e.reasons for o, e in incremental.items()} == {
        o: e.reasons for o, e in full.items()}
    assert incremental == full


def test_pass_given_a_change_asks_the_ids_index_only_about_owners_it_could_reuse(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dataset, plan, channels = quiet_benchmark(tmp_path)
    x = crm_story(dataset, backend=True)  # selected by O001.KR1
    asked: list[set[str] | None] = []
    original = Store.snapshot_owners_holding

    def spy(self: Store, snapshot_id: int, issue_ids: Any, owners: Any = None) -> Any:
        asked.append(None if owners is None else set(owners))
        return original(self, snapshot_id, issue_ids, owners)

    with sandbox_world(tmp_path, dataset=dataset, channels=channels) as world:
        runtime = world.runtime(plan)
        try:
            runtime.run_locked(PassOptions())
            dataset.advance(timedelta(minutes=10))
            dataset.transition(x, "done")
            monkeypatch.setattr(Store, "snapshot_owners_holding", spy)
            runtime.run_locked(PassOptions())
        finally:
            runtime.close()
    # Asked last, about the owners still in question: never O001's (its KR1 selects X,
    # and an objective is reused whole or not), never every owner.
    objective = {kr.id for o in plan.objectives if o.id == "O001" for kr in o.key_results}
    assert asked and None not in asked
    assert not any(owners & objective for owners in asked if owners is not None)
    assert all(len(owners) < len(list(plan.jira_measures()))
               for owners in asked if owners is not None)
