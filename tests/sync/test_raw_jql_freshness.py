"""Raw-JQL KRs over issues outside ``jira.main.projects`` stay as fresh as the scope.

Their members' details come from the mirror; these passes run against the Jira
sandbox and check each value against a plain-Python computation over the
sandbox's own records (not through okr-sync's measures).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from okr_sync.sandbox.jira.data import generate_dataset
from okr_sync.sandbox.jira.model import IssueRecord
from okr_sync.sync.pipeline import PassOptions, PassResult
from okr_sync.sync.runtime import Runtime
from okr_sync.sync.sandbox_world import SandboxWorld, sandbox_world
from support.plan_builders import PlanBuilder, objective

# OPS lies outside the plan's projects: only the raw-JQL KRs reach it.
RAW_JQL = "project = OPS AND labels in (infra, k8s) AND priority != Low"
Pick = Callable[[IssueRecord], bool]


def _raw_member(record: IssueRecord) -> bool:
    return (record.project == "OPS" and bool({"infra", "k8s"} & set(record.labels))
            and record.priority != "Low")


def _done(record: IssueRecord) -> bool:
    return record.status_category == "done"


def _expected(records: list[IssueRecord]) -> dict[str, float]:
    members = [r for r in records if _raw_member(r)]
    points = sum(r.story_points or 0 for r in members)
    return {
        "RAW_RATIO": sum(_done(r) for r in members) / len(members) if members else 0.0,
        "RAW_POINTS": (sum(r.story_points or 0 for r in members if _done(r)) / points)
        if points else 0.0,
        "RAW_SUM": float(sum(r.story_points or 0 for r in members if _done(r))),
        "RAW_MILESTONE": 1.0 if members and all(_done(r) for r in members) else 0.0,
    }


def _plan() -> PlanBuilder:
    def kr(kr_id: str, measure: dict[str, object], **extra: object) -> dict[str, object]:
        return {"id": kr_id, "title": kr_id, "measure": measure, **extra}

    return (
        PlanBuilder()
        .set("jira", {"main": {"projects": ["ENT"]}})
        .with_objective(objective(
            "O",
            kr("SCOPED", {"kind": "done_ratio", "select": {"labels": "sso"}}),
            kr("RAW_RATIO", {"kind": "done_ratio", "jql": RAW_JQL}),
            kr("RAW_POINTS", {"kind": "done_ratio", "unit": "story_points", "jql": RAW_JQL}),
            kr("RAW_SUM", {"kind": "sum", "field": "story_points", "done_only": True,
                           "jql": RAW_JQL}, target=5000),
            kr("RAW_MILESTONE", {"kind": "milestone", "jql": RAW_JQL}),
        ))
    )


@pytest.fixture
def world(tmp_path: Path) -> Iterator[SandboxWorld]:
    with sandbox_world(tmp_path, dataset=generate_dataset(seed=11, issues=900)) as w:
        yield w


@pytest.fixture
def runtime(world: SandboxWorld) -> Iterator[Runtime]:
    runtime = world.runtime(_plan().build())
    # Our clock and Jira's agree (up to the overlap), as in production.
    runtime.clock = world.dataset.now
    yield runtime
    runtime.close()


def _members(world: SandboxWorld) -> list[IssueRecord]:
    return sorted((r for r in world.dataset.issues.values() if _raw_member(r)),
                  key=lambda r: r.id)


def _values(result: PassResult) -> dict[str, float | None]:
    return {kr.id: kr.value for kr in result.scorecard.key_results() if kr.id.startswith("RAW")}


def _assert_matches_sandbox(world: SandboxWorld, result: PassResult) -> None:
    expected = _expected(list(world.dataset.issues.values()))
    assert _values(result) == pytest.approx(
        {k: round(v, 4) for k, v in expected.items()}, abs=1e-4)


def test_pass_given_out_of_scope_members_changed_reports_their_new_values(
    world: SandboxWorld, runtime: Runtime,
) -> None:
    first = runtime.run_locked(PassOptions())
    assert first.exit_code == 0, first.failures
    _assert_matches_sandbox(world, first)
    members = _members(world)
    open_members = [r for r in members if not _done(r)]
    done_members = [r for r in members if _done(r)]
    assert open_members and done_members
    world.dataset.advance(timedelta(minutes=10))
    world.dataset.transition(open_members[0].id, "done")
    world.dataset.set_story_points(done_members[0].id, (done_members[0].story_points or 0) + 13)
    second = runtime.run_locked(PassOptions())
    assert second.exit_code == 0, second.failures
    assert _values(second) != _values(first)
    _assert_matches_sandbox(world, second)


def test_resync_full_given_member_update_the_cursor_missed_repairs_the_value(
    world: SandboxWorld, runtime: Runtime,
) -> None:
    runtime.run_locked(PassOptions())
    # Changed behind the cursor's back (as eventual consistency can): `updated`
    # stays old, so no incremental pass can see it.
    missed = next(r for r in _members(world) if not _done(r))
    missed.status, missed.resolution = "Done", "Done"
    stale = runtime.run_locked(PassOptions())
    assert _values(stale)["RAW_RATIO"] != pytest.approx(
        round(_expected(list(world.dataset.issues.values()))["RAW_RATIO"], 4), abs=1e-4)
    repaired = runtime.run_locked(PassOptions(kind="resync", full=True))
    assert repaired.exit_code == 0, repaired.failures
    _assert_matches_sandbox(world, repaired)


def test_resync_kr_given_member_update_the_cursor_missed_rereads_its_members(
    world: SandboxWorld, runtime: Runtime,
) -> None:
    runtime.run_locked(PassOptions())
    missed = next(r for r in _members(world) if not _done(r))
    missed.status, missed.resolution = "Done", "Done"
    before = _values(runtime.run_locked(PassOptions()))["RAW_RATIO"]
    resync = runtime.run_locked(PassOptions(kind="resync", refetch=frozenset({"RAW_RATIO"})))
    after = _values(resync)["RAW_RATIO"]
    assert before is not None and after is not None and after > before
    assert after == pytest.approx(
        round(_expected(list(world.dataset.issues.values()))["RAW_RATIO"], 4), abs=1e-4)


def test_pass_given_nothing_changed_makes_one_search_that_also_probes_the_site(
    world: SandboxWorld, runtime: Runtime,
) -> None:
    runtime.run_locked(PassOptions())
    world.jira.log.clear()
    quiet = runtime.run_locked(PassOptions())
    assert quiet.scorecard.changes == ()
    # One search, which also probes the rest of the site (it was a scope search and an
    # approximate count before it read fields); the runtime keeps its Jira session and
    # the site's facts (server info, user, fields) between passes.
    assert [r.path.rsplit("/", 1)[-1] for r in world.jira.log.records] == ["jql"]


def test_pass_given_out_of_scope_non_member_updated_keeps_it_out_of_the_mirror(
    world: SandboxWorld, runtime: Runtime,
) -> None:
    runtime.run_locked(PassOptions())
    stranger = next(r for r in sorted(world.dataset.issues.values(), key=lambda r: r.id)
                    if r.project == "SUP")
    world.dataset.advance(timedelta(minutes=10))
    world.dataset.transition(stranger.id, "done")
    world.jira.log.clear()
    result = runtime.run_locked(PassOptions())
    assert result.exit_code == 0, result.failures
    assert runtime.store is not None
    mirrored = {doc["id"] for doc in runtime.store.get_issues("main")}
    assert str(stranger.id) not in mirrored
    # It may have joined a JQL, so the memberships were re-run.
    assert world.jira.log.count(path="/search/jql") > 1
    _assert_matches_sandbox(world, result)


def test_pass_given_outside_issue_joins_a_jql_takes_its_details_from_the_one_search(
    world: SandboxWorld, runtime: Runtime,
) -> None:
    runtime.run_locked(PassOptions())
    joiner = next(r for r in sorted(world.dataset.issues.values(), key=lambda r: r.id)
                  if r.project == "OPS" and not _raw_member(r) and r.priority != "Low"
                  and not r.is_subtask)
    world.dataset.advance(timedelta(minutes=10))
    world.dataset.update(joiner.id, labels=[*joiner.labels, "k8s"])
    world.jira.log.clear()
    result = runtime.run_locked(PassOptions())
    assert result.exit_code == 0, result.failures
    by_id = [r.body["jql"] for r in world.jira.log.matching(path="/search/jql")
             if isinstance(r.body, dict) and str(r.body["jql"]).startswith("id in")]
    assert by_id == []
    _assert_matches_sandbox(world, result)
