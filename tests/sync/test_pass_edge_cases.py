"""Edge cases of the pass and its deliveries, against the sandboxes."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

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
    with sandbox_world(tmp_path, issues=300, seed=21) as w:
        yield w


def _plan(tmp_path: Path, change) -> Path:
    doc = yaml.safe_load(DEMO_PLAN.read_text())
    change(doc)
    path = tmp_path / f"plan-{len(list(tmp_path.iterdir()))}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def _finish_on_call(world: SandboxWorld, count: int) -> None:
    world.dataset.advance(timedelta(minutes=15))
    open_items = [i for i in sorted(world.dataset.issues.values(), key=lambda i: i.id)
                  if i.project == "OPS" and "on-call" in i.labels and i.status_category != "done"
                  and not i.is_subtask]
    for issue in open_items[:count]:
        world.dataset.transition(issue.id, "done")


def test_pass_given_checkin_from_last_cycle_ignores_it(world, tmp_path) -> None:
    runtime = world.runtime(load_plan(DEMO_PLAN))
    assert runtime.store is not None
    runtime.store.add_checkin("CO-1.KR3", value=9, confidence="blocked",
                              at=datetime(2026, 9, 20, tzinfo=UTC))
    result = runtime.run_locked(PassOptions())
    kr = result.scorecard.key_result("CO-1.KR3")
    assert (kr.value, kr.confidence) != (9, "blocked")
    assert kr.value == 4  # the plan's `current`


def test_pass_given_new_cycle_does_not_diff_against_last_cycle(world, tmp_path) -> None:
    runtime = world.runtime(load_plan(DEMO_PLAN))
    runtime.run_locked(PassOptions())
    next_cycle = _plan(tmp_path, lambda d: d["cycle"].update(
        name="2027-Q1", start="2027-01-01", end="2027-03-31"))
    later = world.runtime(load_plan(next_cycle))
    result = later.run_locked(PassOptions(as_of=datetime(2027, 1, 10, tzinfo=UTC)))
    assert result.scorecard.changes == ()


def test_pass_given_plan_needs_a_new_field_refetches_the_mirror(world, tmp_path) -> None:
    runtime = world.runtime(load_plan(DEMO_PLAN))
    runtime.run_locked(PassOptions())
    world.jira.log.clear()

    def add_custom_sum(doc):
        doc["objectives"][2]["key_results"].append({
            "id": "OPS-1.KR3", "title": "Custom field sum", "target": 100,
            "measure": {"kind": "sum", "field": "customfield_10050",
                        "select": {"project": "OPS"}}})

    wider = world.runtime(load_plan(_plan(tmp_path, add_custom_sum)))
    wider.run_locked(PassOptions())
    searches = world.jira.log.matching(path="/search/jql")
    fields = [r.body.get("fields", []) for r in searches if isinstance(r.body, dict)]
    assert any("customfield_10050" in f for f in fields)
    assert sum(1 for r in searches) >= 3  # a full pull, paged, not just the overlap window


def test_deliver_given_deleted_teams_standing_card_posts_a_new_one(world) -> None:
    runtime = world.runtime(load_plan(DEMO_PLAN))
    runtime.run_locked(PassOptions())
    first = world.teams.activities(DEMO_CONVERSATION)[0]
    world.teams.delete_activity(DEMO_CONVERSATION, first.id)
    _finish_on_call(world, 4)
    result = runtime.run_locked(PassOptions())
    bot = [d for d in result.scorecard.deliveries if d.target.startswith("teams_bot")]
    assert {d.status for d in bot} == {"sent"}
    assert len(world.teams.activities(DEMO_CONVERSATION)) == 2  # new standing + change note
    _finish_on_call(world, 4)
    again = runtime.run_locked(PassOptions())
    assert any(d.action == "update" and d.status == "sent" and d.target.startswith("teams_bot")
               for d in again.scorecard.deliveries)


def test_plan_given_two_routes_on_one_channel_posts_one_standing_message(world, tmp_path) -> None:
    def split_routes(doc):
        doc["routes"] = {"leadership": [{"slack": {"channel": DEMO_CHANNEL}}],
                         "ops": [{"slack": {"channel": DEMO_CHANNEL}}]}
        doc["objectives"][2]["notify"] = ["ops"]

    runtime = world.runtime(load_plan(_plan(tmp_path, split_routes)))
    result = runtime.run_locked(PassOptions())
    assert [(d.route, d.status) for d in result.scorecard.deliveries] == [
        ("leadership,ops", "sent")]
    [standing] = world.slack.top_level(DEMO_CHANNEL)
    text = str(standing.blocks)
    assert "CO-1" in text and "OPS-1" in text


def test_deliver_given_dead_channel_does_not_queue_a_scorecard_every_pass(world, tmp_path) -> None:
    runtime = world.runtime(load_plan(_plan(tmp_path, lambda d: d["routes"].update(
        leadership=[{"slack": {"channel": "C0GONE"}}]))))
    assert runtime.run_locked(PassOptions()).exit_code == 1
    for _ in range(3):
        runtime.run_locked(PassOptions())
    assert runtime.store is not None
    rows = runtime.store.list_outbox(target="slack:C0GONE", limit=None)
    assert len(rows) == 1 and rows[0].status == "failed"
