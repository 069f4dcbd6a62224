"""The composition root against the sandboxes: the fetch plan computed once, and dry runs
that read an existing state store without ever creating or changing one."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from okr_sync.config.plan import Plan
from okr_sync.config.plan_loader import load_plan
from okr_sync.sync import pipeline as pipeline_module
from okr_sync.sync import runtime as runtime_module
from okr_sync.sync.delivery.outbox import DELIVERY_WORKERS
from okr_sync.sync.fetch_plan import SourceFetchPlan, build_fetch_plan
from okr_sync.sync.pipeline import PassOptions, ReadOnlyStoreError
from okr_sync.sync.runtime import Runtime
from okr_sync.sync.sandbox_world import SandboxWorld, sandbox_world
from okr_sync.sync.store.reader import ReadOnlyStore
from support.paths import DEMO_PLAN


@pytest.fixture
def world(tmp_path: Path) -> Iterator[SandboxWorld]:
    with sandbox_world(tmp_path, issues=200, seed=7) as w:
        yield w


def _database(world: SandboxWorld) -> Path:
    return Path(world.database_url.removeprefix("sqlite:///"))


def _finish_on_call_work(world: SandboxWorld) -> None:
    """Progress on the demo plan's on-call backlog (OPS-1.KR2), so its score moves."""
    world.dataset.advance(timedelta(minutes=30))
    chosen = [
        i.id for i in sorted(world.dataset.issues.values(), key=lambda i: i.id)
        if i.project == "OPS" and "on-call" in i.labels and "infra" not in i.labels
        and i.status_category != "done" and not i.is_subtask
    ]
    assert chosen
    for issue_id in chosen[:4]:
        world.dataset.transition(issue_id, "done")


def _run(runtime: Runtime, options: PassOptions) -> None:
    try:
        result = runtime.run_locked(options)
    finally:
        runtime.close()
    assert result.exit_code == 0, result.failures


def test_run_pass_given_sandbox_builds_the_fetch_plan_once(
    world: SandboxWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[Plan] = []

    def counting(plan: Plan) -> dict[str, SourceFetchPlan]:
        calls.append(plan)
        return build_fetch_plan(plan)

    # Wherever the pass might look it up: the composition root and the pipeline.
    monkeypatch.setattr(runtime_module, "build_fetch_plan", counting)
    monkeypatch.setattr(pipeline_module, "build_fetch_plan", counting, raising=False)
    runtime = world.runtime(load_plan(DEMO_PLAN))

    try:  # two passes of one runtime: built once for the runtime, not once per pass
        for _ in range(2):
            result = runtime.run_locked(PassOptions())
            assert result.exit_code == 0, result.failures
    finally:
        runtime.close()

    assert len(calls) == 1


def test_dry_run_given_existing_sqlite_store_reports_changes_and_leaves_the_file_untouched(
    world: SandboxWorld,
) -> None:
    plan = load_plan(DEMO_PLAN)
    _run(world.runtime(plan), PassOptions())
    database = _database(world)
    before = (hashlib.sha256(database.read_bytes()).hexdigest(), database.stat().st_mtime_ns)
    files_before = sorted(p.name for p in database.parent.iterdir())
    _finish_on_call_work(world)

    runtime = world.runtime(plan, dry_run=True)
    try:
        result = runtime.run_locked(PassOptions(dry_run=True))
    finally:
        runtime.close()

    assert [c.kr for c in result.scorecard.changes] == ["OPS-1.KR2"]
    assert {d.status for d in result.scorecard.deliveries} == {"dry_run"}
    assert (hashlib.sha256(database.read_bytes()).hexdigest(),
            database.stat().st_mtime_ns) == before
    assert sorted(p.name for p in database.parent.iterdir()) == files_before


def test_dry_run_given_no_database_file_creates_none(world: SandboxWorld) -> None:
    runtime = world.runtime(load_plan(DEMO_PLAN), dry_run=True)
    try:
        result = runtime.run_locked(PassOptions(dry_run=True))
    finally:
        runtime.close()

    assert isinstance(runtime.store, ReadOnlyStore) and not runtime.store.exists
    assert result.scorecard.changes == ()
    assert [d.action for d in result.scorecard.deliveries] == ["post", "post", "post"]
    assert not _database(world).exists()
    assert list(_database(world).parent.glob("okr-sync.db*")) == []


def test_run_pass_given_read_only_store_and_no_dry_run_refuses_to_write(
    world: SandboxWorld,
) -> None:
    runtime = world.runtime(load_plan(DEMO_PLAN), dry_run=True)
    try:
        with pytest.raises(ReadOnlyStoreError):
            runtime.run_pass(PassOptions())
    finally:
        runtime.close()
    assert not _database(world).exists()


def _delivery_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith("okr-sync-deliver")}


def test_runtime_given_passes_that_deliver_keeps_one_set_of_delivery_threads_until_closed(
    world: SandboxWorld,
) -> None:
    # serve runs pass after pass on one runtime: new threads every pass grew its memory.
    runtime = world.runtime(load_plan(DEMO_PLAN))
    try:
        first = runtime.run_locked(PassOptions())
        after_first = _delivery_threads()
        _finish_on_call_work(world)
        second = runtime.run_locked(PassOptions())
        after_second = _delivery_threads()
    finally:
        runtime.close()

    assert first.scorecard.deliveries and second.scorecard.deliveries
    assert after_first and after_first <= after_second
    assert len(after_second) <= DELIVERY_WORKERS
    assert _delivery_threads() == set()
