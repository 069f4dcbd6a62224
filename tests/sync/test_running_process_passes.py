"""Passes of one running process (``serve``): the previous snapshots decoded once (still
diffed against whatever another replica sharing the store wrote since) and the plan's
measure JQL built once. Counts, never times."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from okr_sync.config.plan_loader import load_plan
from okr_sync.sync import snapshot_heads
from okr_sync.sync.pipeline import PassOptions, PassResult
from okr_sync.sync.runtime import Runtime
from okr_sync.sync.sandbox_world import SandboxWorld, sandbox_world
from okr_sync.sync.state import PassSnapshot
from okr_sync.sync.store.store import Store
from support.paths import DEMO_PLAN


@pytest.fixture
def world(tmp_path: Path) -> Iterator[SandboxWorld]:
    with sandbox_world(tmp_path, issues=200, seed=7) as w:
        yield w


def _finish_on_call_work(world: SandboxWorld, count: int) -> None:
    """Progress on the demo plan's on-call backlog (OPS-1.KR2), so its score moves."""
    world.dataset.advance(timedelta(minutes=30))
    chosen = [
        i.id for i in sorted(world.dataset.issues.values(), key=lambda i: i.id)
        if i.project == "OPS" and "on-call" in i.labels and "infra" not in i.labels
        and i.status_category != "done" and not i.is_subtask
    ]
    assert len(chosen) >= count
    for issue_id in chosen[:count]:
        world.dataset.transition(issue_id, "done")


def _pass(runtime: Runtime) -> PassResult:
    result = runtime.run_locked(PassOptions(kind="serve"))
    assert result.exit_code == 0, result.failures
    return result


def _count_calls(monkeypatch: pytest.MonkeyPatch, owner: Any, name: str,
                 wrap_class: bool = False) -> list[int]:
    calls = [0]
    original = getattr(owner, name)

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, classmethod(lambda cls, *a, **k: counting(*a, **k))
                        if wrap_class else counting)
    return calls


def test_pass_given_a_running_process_decodes_no_snapshot_it_decoded_before(
    world: SandboxWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = load_plan(DEMO_PLAN)
    runtime = world.runtime(plan)
    try:
        _pass(runtime)
        _finish_on_call_work(world, 1)
        _pass(runtime)
        # Decodes what the pass before wrote (once), and writes nothing itself.
        world.dataset.advance(timedelta(minutes=5))
        assert not _pass(runtime).scorecard.changes
        decoded = _count_calls(monkeypatch, PassSnapshot, "from_json", wrap_class=True)
        heads = _count_calls(monkeypatch, Store, "snapshot_head")
        world.dataset.advance(timedelta(minutes=5))
        quiet = _pass(runtime)
    finally:
        runtime.close()
    assert not quiet.scorecard.changes
    # Before: the published and the latest snapshot read and decoded again every pass.
    assert decoded[0] == 0
    assert heads[0] == 0


def test_pass_given_another_replica_published_since_diffs_against_its_snapshot(
    world: SandboxWorld,
) -> None:
    plan = load_plan(DEMO_PLAN)
    this, other = world.runtime(plan), world.runtime(plan)
    try:
        _pass(this)
        _finish_on_call_work(world, 2)
        moved = _pass(other)
        assert [c.kr for c in moved.scorecard.changes]
        assert other.snapshot_heads is not this.snapshot_heads
        # The other replica told people about the move: this one, whose kept snapshots
        # predate it, must not tell it again (it diffs against the other's snapshot).
        world.dataset.advance(timedelta(minutes=5))
        again = _pass(this)
    finally:
        this.close()
        other.close()
    assert not again.scorecard.changes
    assert not again.scorecard.deliveries


def test_snapshot_heads_given_a_snapshot_written_between_its_two_reads_decodes_the_newer(
    world: SandboxWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = load_plan(DEMO_PLAN)
    runtime = world.runtime(plan)
    try:
        _pass(runtime)
        _finish_on_call_work(world, 1)
        _pass(runtime)
        store = runtime.store
        assert isinstance(store, Store)
        stale_marks = store.snapshot_marks()
        _finish_on_call_work(world, 1)
        runtime.snapshot_heads = snapshot_heads.SnapshotHeads()
        _pass(runtime)
        newest = store.snapshot_marks()
        assert newest != stale_marks
        # The marks name an older snapshot than the head read then finds (a writer came
        # in between): the pass reads as without kept snapshots, and keeps nothing.
        monkeypatch.setattr(Store, "snapshot_marks", lambda self: stale_marks)
        heads = snapshot_heads.SnapshotHeads()
        published_id, _, latest = heads.previous(store, plan.cycle.name)
        assert heads.decoded == 0
        monkeypatch.undo()
        # Nothing was kept under the stale marks: the newest is decoded (and kept) now.
        again_id, _, again = heads.previous(store, plan.cycle.name)
        assert heads.decoded >= 1
        decoded = heads.decoded
        heads.previous(store, plan.cycle.name)
        assert heads.decoded == decoded
    finally:
        runtime.close()
    assert latest is not None and newest[0] is not None
    fresh = store.snapshot_head(published_only=False)
    assert fresh is not None and fresh.id == newest[0].id
    assert latest.scorecard == PassSnapshot.from_json(fresh.document).scorecard
    assert again is not None and again.scorecard == latest.scorecard
    assert published_id == again_id == newest[1].id if newest[1] else published_id is None


def test_pass_given_a_running_process_builds_each_measure_jql_once(
    world: SandboxWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    from okr_sync.sync import pipeline

    built = _count_calls(monkeypatch, pipeline, "measure_jqls")
    plan = load_plan(DEMO_PLAN)
    runtime = world.runtime(plan)
    try:
        _pass(runtime)
        first = built[0]
        for _ in range(2):
            _finish_on_call_work(world, 1)
            _pass(runtime)
    finally:
        runtime.close()
    # Before: once per source every pass; the plan does not change within a runtime.
    assert first == len(runtime.fetch_plan or {})
    assert built[0] == first
