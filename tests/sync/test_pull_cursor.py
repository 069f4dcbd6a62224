"""The incremental cursor: it follows Jira's own `updated` stamps, never a Date header."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from okr_sync.config.plan_loader import load_plan
from okr_sync.sync.pipeline import PassOptions
from okr_sync.sync.runtime import Runtime
from okr_sync.sync.sandbox_world import SandboxWorld, sandbox_world
from okr_sync.sync.store.store import Store
from support.paths import DEMO_PLAN

BURST = 40


@pytest.fixture
def world(tmp_path: Path) -> Iterator[SandboxWorld]:
    with sandbox_world(tmp_path, issues=600, seed=11) as w:
        yield w


def _burst(world: SandboxWorld, runtime: Runtime) -> list[int]:
    """A synced store, then a bulk edit of ``BURST`` issues at one instant, pulled."""
    runtime.run_locked(PassOptions())
    data = world.dataset
    data.advance(timedelta(minutes=10))
    edited = sorted(r.id for r in data if r.issuetype != "Epic")[:BURST]
    for issue_id in edited:
        data.update(issue_id, summary=f"bulk edit {issue_id}")
    assert runtime.run_locked(PassOptions()).issues_fetched >= BURST
    return edited


def _summary(world: SandboxWorld, issue_id: int) -> str:
    (record,) = Store(world.database_url).get_issues("main", ids=[str(issue_id)])
    return str(record["summary"])


def test_pass_given_a_date_header_ahead_of_jiras_clock_still_reads_the_next_edit(
    world: SandboxWorld,
) -> None:
    # A proxy in front of Jira answers with its own Date, 12 minutes ahead. The cursor
    # follows the issues' own `updated` (Jira's clock), never that header: a cursor taken
    # from it would start the next search after edits Jira stamps in between.
    runtime = world.runtime(load_plan(DEMO_PLAN))
    _burst(world, runtime)
    world.jira.date_skew = timedelta(minutes=12)
    world.dataset.advance(timedelta(minutes=10))
    runtime.run_locked(PassOptions())
    world.dataset.advance(timedelta(minutes=2))
    edited = sorted(r.id for r in world.dataset if r.issuetype != "Epic")[-1]
    world.dataset.update(edited, summary="edited two minutes after a pass")

    after = runtime.run_locked(PassOptions())

    assert after.issues_fetched >= 1
    assert _summary(world, edited) == "edited two minutes after a pass"


def test_pass_given_an_update_indexed_after_the_search_reads_it_next_pass(
    world: SandboxWorld,
) -> None:
    runtime = world.runtime(load_plan(DEMO_PLAN))
    edited = _burst(world, runtime)
    data = world.dataset
    data.advance(timedelta(minutes=10))
    runtime.run_locked(PassOptions())
    # Updated a minute before that pass's search began, but not searchable until after
    # it (index lag): the next search, an overlap before the new cursor, still reads it.
    late = data.now()
    data.set_now(late - timedelta(minutes=1))
    data.update(edited[0], summary="indexed late")
    data.set_now(late + timedelta(minutes=10))

    runtime.run_locked(PassOptions())

    assert _summary(world, edited[0]) == "indexed late"


def test_pass_given_its_search_fails_keeps_the_cursor(world: SandboxWorld) -> None:
    runtime = world.runtime(load_plan(DEMO_PLAN))
    _burst(world, runtime)
    (before,) = Store(world.database_url).list_cursors()
    world.dataset.advance(timedelta(minutes=10))
    world.jira.faults.revoke(paths="search/jql")

    failed = runtime.run_locked(PassOptions())

    assert failed.source_failures
    (after,) = Store(world.database_url).list_cursors()
    assert after.high_water_mark == before.high_water_mark
