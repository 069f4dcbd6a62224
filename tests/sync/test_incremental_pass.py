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
    return {key: doc[key] for key in ("objectives", "perspectives", "kpis", "warnings")}


def test_pass_given_no_change_never_reads_the_mirror_whole(
    world: SandboxWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = world.runtime(load_plan(DEMO_PLAN))
    runtime.run_locked(PassOptions())
    reads: list[str] = []
    records: list[int] = []
    for name in ("iter_issues", "get_issues"):
        original = getattr(Store, name)

        def spy(self: Store, *args: Any, _name: str = name, _orig: Any = original,
                **kwargs: Any) -> Any:
            reads.append(_name)
            return _orig(self, *args, **kwargs)

        monkeypatch.setattr(Store, name, spy)
    original_records = Store.issue_records

    def records_spy(self: Store, source: str, ids: Any) -> Any:
        records.append(len(ids))
        return original_records(self, source, ids)

    monkeypatch.setattr(Store, "issue_records", records_spy)

    quiet = runtime.run_locked(PassOptions())

    assert quiet.scorecard.changes == ()
    assert reads == []
    # Only the issues Jira sent again in the overlap are read back, to compare them.
    assert sum(records) <= quiet.issues_fetched < 600


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
        incremental = runtime.run_locked(PassOptions())
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
