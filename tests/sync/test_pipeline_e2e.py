"""The whole pass against the Jira, Slack and Teams sandboxes over real loopback HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from okr_sync.config.plan_loader import load_plan
from okr_sync.sync.pipeline import PassOptions
from okr_sync.sync.sandbox_world import (
    DEMO_CHANNEL,
    DEMO_CONVERSATION,
    SandboxWorld,
    sandbox_world,
)
from support.paths import DEMO_PLAN


@pytest.fixture
def world(tmp_path: Path) -> Iterator[SandboxWorld]:
    with sandbox_world(tmp_path, issues=600, seed=7) as w:
        yield w


def _open_on_call(world: SandboxWorld, count: int) -> list[int]:
    issues = world.dataset.issues.values()
    chosen = [
        i.id for i in sorted(issues, key=lambda i: i.id)
        if i.project == "OPS" and "on-call" in i.labels and "infra" not in i.labels
        and i.status_category != "done" and not i.is_subtask
    ]
    assert len(chosen) >= count
    return chosen[:count]


def test_pass_given_sandboxes_posts_once_stays_quiet_then_edits_and_notes_changes(
    world: SandboxWorld,
) -> None:
    plan = load_plan(DEMO_PLAN)
    runtime = world.runtime(plan)

    first = runtime.run_locked(PassOptions())
    assert first.exit_code == 0, first.failures
    assert [(d.target, d.action, d.status) for d in first.scorecard.deliveries] == [
        ("slack:C0DEMO0001", "post", "sent"),
        ("teams_bot:19:demo@thread.tacv2", "post", "sent"),
        ("teams_workflow:OKR_SYNC_DEMO_TEAMS_WORKFLOW_URL", "post", "sent"),
    ]
    assert len(world.slack.messages(DEMO_CHANNEL)) == 1
    assert len(world.teams.activities(DEMO_CONVERSATION)) == 1
    assert len(world.teams.workflow_posts(world.workflow_id)) == 1

    # Pass 2, nothing changed in Jira: no Slack or Teams request, one Jira search.
    slack_before, teams_before = sum(world.slack.counters.values()), sum(
        world.teams.counters.values())
    world.jira.log.clear()
    second = runtime.run_locked(PassOptions())
    assert second.exit_code == 0
    assert second.scorecard.changes == () and second.scorecard.deliveries == ()
    assert sum(world.slack.counters.values()) == slack_before
    assert sum(world.teams.counters.values()) == teams_before
    assert world.jira.log.count(path="/search/jql") <= 1  # the scope's incremental search
    # plus at most one cheap count probing the rest of the site for raw-JQL measures
    assert world.jira.log.count(path="/search/approximate-count") <= 1

    # Pass 3 after progress on the on-call backlog: edit in place, one change note.
    world.dataset.advance(timedelta(minutes=30))
    for issue_id in _open_on_call(world, 4):
        world.dataset.transition(issue_id, "done")
    third = runtime.run_locked(PassOptions())
    assert third.exit_code == 0, third.failures
    assert [c.kr for c in third.scorecard.changes] == ["OPS-1.KR2"]
    change = third.scorecard.changes[0]
    assert change.reasons == ("+4 done",)
    assert (change.from_band, change.to_band) == ("missed", "progress")
    assert sorted((d.target, d.action, d.status) for d in third.scorecard.deliveries) == sorted([
        ("slack:C0DEMO0001", "update", "sent"),
        ("teams_bot:19:demo@thread.tacv2", "update", "sent"),
        ("teams_workflow:OKR_SYNC_DEMO_TEAMS_WORKFLOW_URL", "post", "sent"),
        ("slack:C0DEMO0001", "reply", "sent"),
        ("teams_bot:19:demo@thread.tacv2", "post", "sent"),
    ])
    top = world.slack.top_level(DEMO_CHANNEL)
    assert len(top) == 1 and top[0].edited
    replies = world.slack.replies(DEMO_CHANNEL, top[0].ts)
    assert len(replies) == 1
    note = replies[0].text + json.dumps(replies[0].blocks)
    assert "+4 done" in note
    other_krs = [kr.id for kr in third.scorecard.key_results() if kr.id != "OPS-1.KR2"]
    assert not [kr for kr in other_krs if kr in note]
    activities = world.teams.activities(DEMO_CONVERSATION)
    assert len(activities) == 2 and activities[0].updated
    assert len(world.teams.workflow_posts(world.workflow_id)) == 2
    # What people read: owners by name (the standing message pings nobody), a change
    # note naming what moved, and bot activities whose notifications say something.
    standing = top[0].text + json.dumps(top[0].blocks)
    assert "owner Alice Ng" in standing and "<@" not in standing
    assert "owner Platform team" in note and "expected" in note
    assert activities[0].activity["summary"].startswith("OKR scorecard · 2026-Q4: ")
    assert activities[1].activity["summary"].startswith("1 key result changed: OPS-1.KR2 ")


def test_pass_given_small_moves_adds_them_up_until_they_are_news(world: SandboxWorld) -> None:
    plan = load_plan(DEMO_PLAN)
    runtime = world.runtime(plan)
    assert runtime.run_locked(PassOptions()).exit_code == 0
    # OPS-1.KR2 has 40 items: one more done moves it 0.025, below notify.min_delta 0.05.
    first, second = _open_on_call(world, 2)
    world.dataset.advance(timedelta(minutes=10))
    world.dataset.transition(first, "done")
    quiet = runtime.run_locked(PassOptions())
    assert quiet.scorecard.changes == () and quiet.scorecard.deliveries == ()
    assert runtime.store is not None
    snapshots_after_quiet = runtime.store.latest_snapshot()
    assert snapshots_after_quiet is not None and not snapshots_after_quiet.published
    world.dataset.advance(timedelta(minutes=10))
    world.dataset.transition(second, "done")
    news = runtime.run_locked(PassOptions())
    assert [(c.kr, c.reasons) for c in news.scorecard.changes] == [("OPS-1.KR2", ("+2 done",))]
    assert news.scorecard.changes[0].to_score - news.scorecard.changes[0].from_score == (
        pytest.approx(0.05))


def test_pass_given_nothing_changed_stores_no_new_snapshot(world: SandboxWorld) -> None:
    runtime = world.runtime(load_plan(DEMO_PLAN))
    runtime.run_locked(PassOptions())
    assert runtime.store is not None
    before = runtime.store.latest_snapshot()
    runtime.run_locked(PassOptions())
    runtime.run_locked(PassOptions())
    after = runtime.store.latest_snapshot()
    assert before is not None and after is not None and after.id == before.id
    assert runtime.store.last_run() is not None


def test_resync_given_update_the_cursor_missed_refetches_named_kr(world: SandboxWorld) -> None:
    runtime = world.runtime(load_plan(DEMO_PLAN))
    runtime.run_locked(PassOptions())
    # Change an infra issue behind the cursor's back (as eventual consistency can):
    # its `updated` stays old, so an incremental pass cannot see it.
    start = datetime(2026, 10, 1, tzinfo=UTC)
    infra = next(i for i in sorted(world.dataset.issues.values(), key=lambda i: i.id)
                 if i.project == "OPS" and "infra" in i.labels and i.status_category != "done"
                 and not i.is_subtask and i.created < start)
    infra.status, infra.resolution = "Done", "Done"
    quiet = runtime.run_locked(PassOptions())
    assert quiet.scorecard.changes == ()
    before = quiet.scorecard.key_result("OPS-1.KR1")
    resync = runtime.run_locked(PassOptions(kind="resync", refetch=frozenset({"OPS-1.KR1"})))
    after = resync.scorecard.key_result("OPS-1.KR1")
    assert before.items is not None and after.items is not None
    assert after.items.done == before.items.done + 1
    assert ("OPS-1.KR1", "+1 done") in [(c.kr, c.reasons[0]) for c in resync.scorecard.changes]


def test_pass_given_checkin_with_note_notes_it_and_mentions_the_owner(
    world: SandboxWorld,
) -> None:
    plan = load_plan(DEMO_PLAN)  # CO-1.KR3 is bob's: people.bob.slack = U0DEMOBOB
    runtime = world.runtime(plan)
    assert runtime.run_locked(PassOptions()).exit_code == 0
    assert runtime.store is not None
    runtime.store.add_checkin("CO-1.KR3", value=8, note="Two more signed this week",
                              confidence="on_track")

    second = runtime.run_locked(PassOptions())

    assert second.exit_code == 0, second.failures
    assert [c.kr for c in second.scorecard.changes] == ["CO-1.KR3"]
    top = world.slack.top_level(DEMO_CHANNEL)
    standing = top[0].text + json.dumps(top[0].blocks)
    assert "owner Bob Ray" in standing and "<@" not in standing  # the standing message
    (reply,) = world.slack.replies(DEMO_CHANNEL, top[0].ts)
    note = json.dumps(reply.blocks, ensure_ascii=False)
    assert "40% → 80% (+40 pp)" in note and "at risk → on track" in note
    assert "Two more signed this week" in note
    assert "owner <@U0DEMOBOB>" in note
    latest = world.teams.activities(DEMO_CONVERSATION)[-1].activity
    assert latest["summary"].startswith("1 key result changed: CO-1.KR3 Sign 10 lighthouse")
    assert "Two more signed this week" in json.dumps(latest, ensure_ascii=False)
