"""A raw JQL answered on the mirror that falls back to Jira for a pass.

An issue mirrored without a status leaves a query that reads statuses to Jira. Jira's
answer is then the latest one: a later pass must use it (or ask again), never the
older answer the mirror gave before.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from okr_sync.config.plan import Plan
from okr_sync.sandbox.jira.model import IssueRecord
from okr_sync.sync.pipeline import PassOptions, PassResult
from okr_sync.sync.runtime import Runtime
from okr_sync.sync.sandbox_world import SandboxWorld, sandbox_world
from support.plan_builders import PlanBuilder, objective

COUNT = "project = SUP AND issuetype = Bug AND statusCategory != Done"


def _plan() -> Plan:
    return (
        PlanBuilder()
        .set("jira", {"main": {"projects": ["SUP"]}})
        .with_objective(objective("O", {
            "id": "COUNT", "title": "Open bugs", "baseline": 60, "target": 5,
            "measure": {"kind": "count", "jql": COUNT}}))
        .build()
    )


@pytest.fixture
def world(tmp_path: Path) -> Iterator[SandboxWorld]:
    with sandbox_world(tmp_path, issues=200, seed=11) as w:
        yield w


def _runtime(world: SandboxWorld) -> Runtime:
    runtime = world.runtime(_plan())
    runtime.clock = world.dataset.now
    return runtime


def _open_bugs(world: SandboxWorld) -> list[IssueRecord]:
    return sorted((r for r in world.dataset.issues.values()
                   if r.project == "SUP" and r.issuetype == "Bug"
                   and r.status_category != "done"), key=lambda r: r.id)


def _value(result: PassResult) -> float | None:
    assert result.exit_code == 0, result.failures
    return result.scorecard.key_result("COUNT").value


def _without_status(issue_id: object) -> Any:
    def spoil(payload: Any) -> Any:
        for issue in payload.get("issues") or []:
            if str(issue.get("id")) == str(issue_id):
                issue.setdefault("fields", {}).pop("status", None)
        return payload

    return spoil


def test_pass_given_local_count_fell_back_to_jira_next_quiet_pass_uses_jiras_answer(
    world: SandboxWorld,
) -> None:
    runtime = _runtime(world)
    assert runtime.fetch_plan is not None
    assert runtime.fetch_plan["main"].memberships[0].local is not None
    assert _value(runtime.run_locked(PassOptions())) == len(_open_bugs(world))

    # A bug is fixed, and Jira's search shows it without a status: the mirror cannot
    # tell whether it is done, so Jira answers the count this pass.
    world.dataset.advance(timedelta(minutes=10))
    fixed = _open_bugs(world)[0]
    world.dataset.transition(fixed.id, "done")
    world.jira.faults.rewrite(_without_status(fixed.id), paths="/search/jql")
    world.jira.log.clear()
    assert _value(runtime.run_locked(PassOptions())) == len(_open_bugs(world))
    assert world.jira.log.matching(path="approximate-count")

    # Later an unrelated issue changes: the bug, still shown without a status, is not
    # counted (Jira's answer), where the mirror's older answer counted it as open.
    world.dataset.advance(timedelta(minutes=30))
    other = next(r for r in sorted(world.dataset.issues.values(), key=lambda r: r.id)
                 if r.project == "SUP" and r.issuetype != "Bug")
    world.dataset.update(other.id, summary=other.summary + " (edited)")
    assert _value(runtime.run_locked(PassOptions())) == len(_open_bugs(world))
    # Nothing new (the bug is no longer re-read): still Jira's answer.
    world.jira.faults.clear()
    world.dataset.advance(timedelta(minutes=30))
    for _ in range(2):
        assert _value(runtime.run_locked(PassOptions())) == len(_open_bugs(world))
