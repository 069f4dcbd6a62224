"""Incremental measuring in real passes: stored states, the mirror never read whole."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from okr_sync.config.plan_loader import load_plan
from okr_sync.scoring.scorecard import scorecard_to_json
from okr_sync.sync.pipeline import PassOptions
from okr_sync.sync.sandbox_world import SandboxWorld, sandbox_world
from okr_sync.sync.store.store import Store
from okr_sync.sync.store.tables import measure_marks
from support.paths import DEMO_PLAN


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
        # A KPI's trend compares with the history the pass before wrote: not a measure.
        kpi.pop("trend", None)
    return {key: doc[key] for key in ("objectives", "perspectives", "kpis", "warnings")}


def _spy(monkeypatch: pytest.MonkeyPatch, names: tuple[str, ...]) -> list[tuple[str, int]]:
    """Record calls of these Store methods: (name, how many ids when given ids)."""
    calls: list[tuple[str, int]] = []
    for name in names:
        original = getattr(Store, name)

        def spy(self: Store, *args: Any, _name: str = name, _orig: Any = original,
                **kwargs: Any) -> Any:
            ids = args[1] if _name == "issue_records" else ()
            calls.append((_name, len(ids)))
            return _orig(self, *args, **kwargs)

        monkeypatch.setattr(Store, name, spy)
    return calls


READS = ("iter_issues", "get_issues", "issue_records", "get_measure_states", "get_snapshot",
         "latest_snapshot", "last_published_snapshot")


def test_pass_given_no_change_reads_no_mirror_no_state_and_no_snapshot_items(
    world: SandboxWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = world.runtime(load_plan(DEMO_PLAN))
    runtime.run_locked(PassOptions())
    second = runtime.run_locked(PassOptions())
    calls = _spy(monkeypatch, READS)

    quiet = runtime.run_locked(PassOptions())

    assert quiet.scorecard.changes == ()
    assert _comparable(quiet) == _comparable(second)
    # Only the issues Jira sent again in the overlap are read back, to compare them.
    assert {name for name, _ in calls} <= {"issue_records"}
    assert sum(n for _, n in calls) <= quiet.issues_fetched < 600


def test_pass_given_no_change_after_a_publishing_pass_reads_no_mirror_and_no_state(
    world: SandboxWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = world.runtime(load_plan(DEMO_PLAN))
    first = runtime.run_locked(PassOptions())
    published = Store(world.database_url).snapshot_head(published_only=True)
    assert published is not None
    calls = _spy(monkeypatch, READS)

    # The first pass published: its summary is told against that very snapshot (no
    # reasons between its items and themselves), so the next quiet pass reuses it.
    quiet = runtime.run_locked(PassOptions())

    assert quiet.scorecard.changes == ()
    assert _comparable(quiet) == _comparable(first)
    assert {name for name, _ in calls} <= {"issue_records"}
    assert sum(n for _, n in calls) <= quiet.issues_fetched < 600
    # Nothing new: no snapshot stored, the published one is still the latest.
    assert Store(world.database_url).latest_snapshot_id() == published.id


def test_pass_given_reuse_after_publish_equals_a_measurement_told_against_it(
    world: SandboxWorld, tmp_path: Path
) -> None:
    plan = load_plan(DEMO_PLAN)
    runtime = world.runtime(plan)
    runtime.run_locked(PassOptions())
    reused = runtime.run_locked(PassOptions())
    # The same store, measured again from scratch (states and summaries dropped).
    with sa.create_engine(world.database_url).begin() as conn:
        conn.execute(sa.delete(measure_marks))
    measured = runtime.run_locked(PassOptions())

    assert _comparable(measured) == _comparable(reused)
    assert measured.scorecard.changes == reused.scorecard.changes == ()


def test_pass_given_plan_edit_without_jira_change_measures_the_edited_kr(
    world: SandboxWorld, tmp_path: Path
) -> None:
    runtime = world.runtime(load_plan(DEMO_PLAN))
    for _ in range(3):
        before = runtime.run_locked(PassOptions())
    text = DEMO_PLAN.read_text(encoding="utf-8")
    edited = tmp_path / "edited.yaml"
    edited.write_text(text.replace("labels: [sso, security]", "labels: [sso]"), encoding="utf-8")
    plan = load_plan(edited)
    runtime.close()

    incremental = world.runtime(plan).run_locked(PassOptions())
    store = Store(world.database_url)
    with store.engine.begin() as conn:
        conn.execute(sa.delete(measure_marks))
    store.close()
    full = world.runtime(plan, dry_run=True).run_locked(PassOptions(dry_run=True))

    assert _comparable(full) == _comparable(incremental)
    measured = {kr.id: kr.items for kr in incremental.scorecard.key_results()}
    measured_before = {kr.id: kr.items for kr in before.scorecard.key_results()}
    assert measured["CO-1.KR1"] != measured_before["CO-1.KR1"]
    assert measured["SUP-1.KR2"] == measured_before["SUP-1.KR2"]


def test_pass_given_changes_equals_a_full_measurement(world: SandboxWorld) -> None:
    plan = load_plan(DEMO_PLAN)
    runtime = world.runtime(plan)
    runtime.run_locked(PassOptions())
    open_ids = sorted(i.id for i in world.dataset.issues.values() if i.status_category != "done")
    for step, issue_id in enumerate(open_ids[:12:3]):
        world.dataset.advance(timedelta(minutes=10))
        world.dataset.transition(issue_id, "done")
        if step % 3 == 0:
            world.dataset.advance(timedelta(minutes=1))
        runtime.run_locked(PassOptions())
        runtime.run_locked(PassOptions())
        incremental = runtime.run_locked(PassOptions())  # reuses the stored evaluations
        store = runtime.store
        assert isinstance(store, Store)
        assert store.get_measure_states("main") is not None
        # Void the stored states: a dry run then measures everything in full.
        with store.engine.begin() as conn:
            conn.execute(sa.delete(measure_marks))
        dry = world.runtime(plan, dry_run=True)
        full = dry.run_locked(PassOptions(dry_run=True))
        dry.close()
        assert _comparable(full) == _comparable(incremental)
        # The next real pass measures in full and stores the states again.
        runtime.run_locked(PassOptions())


def test_measure_states_given_mirror_written_after_them_are_not_offered(
    world: SandboxWorld,
) -> None:
    runtime = world.runtime(load_plan(DEMO_PLAN))
    runtime.run_locked(PassOptions())
    store = runtime.store
    assert isinstance(store, Store)
    stored = store.get_measure_states("main")
    assert stored is not None and "CO-1.KR1" in stored
    record = store.get_issues("main")[0]
    record["summary"] = "changed outside a pass"
    store.upsert_issues("main", [record], seen_at=datetime.now(UTC) + timedelta(minutes=1))

    assert store.get_measure_states("main") is None
