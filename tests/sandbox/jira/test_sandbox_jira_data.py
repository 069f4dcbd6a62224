"""The sandbox dataset: a deterministic, realistic generator and mutations between passes."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict
from datetime import UTC, datetime, timedelta

import pytest

from okr_sync.sandbox.jira.data import (
    DEFAULT_CYCLE_START,
    JiraDataset,
    generate_dataset,
)

_NOW = datetime(2026, 11, 16, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def big() -> JiraDataset:
    return generate_dataset(seed=1, issues=5000)


def test_generate_dataset_given_same_seed_and_size_is_identical() -> None:
    first = [asdict(i) for i in generate_dataset(seed=3, issues=800)]
    second = [asdict(i) for i in generate_dataset(seed=3, issues=800)]
    assert first == second


def test_generate_dataset_given_other_seed_differs() -> None:
    first = [asdict(i) for i in generate_dataset(seed=3, issues=300)]
    other = [asdict(i) for i in generate_dataset(seed=4, issues=300)]
    assert first != other


def test_generate_dataset_given_size_builds_exactly_that_many_issues(big: JiraDataset) -> None:
    assert len(big) == 5000
    assert sorted(big.projects) == ["ENT", "OPS", "SUP"]
    assert len({i.id for i in big}) == 5000
    assert big.now() == _NOW


def test_generate_dataset_gives_each_project_gapless_keys_in_creation_order(
    big: JiraDataset,
) -> None:
    for project in big.projects:
        issues = sorted((i for i in big if i.project == project), key=lambda i: i.key_number)
        assert [i.key_number for i in issues] == list(range(1, len(issues) + 1))
        assert [i.created for i in issues] == sorted(i.created for i in issues)
    by_id = sorted(big, key=lambda i: i.id)
    assert [i.created for i in by_id] == sorted(i.created for i in by_id)


def test_generate_dataset_mixes_issue_types_like_a_real_backlog(big: JiraDataset) -> None:
    types = Counter(i.issuetype for i in big)
    assert 0.04 < types["Epic"] / 5000 < 0.08
    assert 0.12 < types["Sub-task"] / 5000 < 0.18
    assert types["Story"] > types["Task"] > 0
    assert types["Bug"] > 0
    bugs_share = {p: sum(1 for i in big if i.project == p and i.issuetype == "Bug") /
                  sum(1 for i in big if i.project == p) for p in big.projects}
    assert bugs_share["SUP"] > bugs_share["ENT"]


def test_generate_dataset_links_epics_children_and_subtasks(big: JiraDataset) -> None:
    for issue in big:
        if issue.issuetype == "Sub-task":
            parent = big.get(issue.parent_id or -1)
            assert parent.project == issue.project
            assert parent.issuetype in ("Story", "Task", "Bug")
            assert parent.created <= issue.created
        elif issue.parent_id is not None:
            assert big.get(issue.parent_id).issuetype == "Epic"
        if issue.issuetype == "Epic":
            assert issue.parent_id is None
    epics = [i for i in big if i.issuetype == "Epic"]
    with_children = [e for e in epics if big.children(e.id)]
    assert len(with_children) > 0.8 * len(epics)


def test_generate_dataset_leaves_gaps_in_story_points(big: JiraDataset) -> None:
    stories = [i for i in big if i.issuetype == "Story"]
    pointed = [i for i in stories if i.story_points is not None]
    assert 0.75 < len(pointed) / len(stories) < 0.95
    assert {i.story_points for i in pointed} <= {1.0, 2.0, 3.0, 5.0, 8.0, 13.0}
    assert all(i.story_points is None for i in big if i.issuetype == "Epic")


def test_generate_dataset_has_a_realistic_status_mix(big: JiraDataset) -> None:
    categories = Counter(i.status_category for i in big)
    for key in ("new", "indeterminate", "done"):
        assert 0.2 < categories[key] / 5000 < 0.5, categories
    statuses = Counter(i.status for i in big)
    assert set(statuses) == {"Backlog", "To Do", "In Progress", "In Review", "Done", "Won't Do"}
    priorities = Counter(i.priority for i in big)
    assert priorities.most_common(1)[0][0] == "Medium"
    assert len(priorities) == 5
    assert sum(1 for i in big if i.labels) > 2500
    assert sum(1 for i in big if i.components) > 2500


def test_generate_dataset_keeps_timestamps_and_resolutions_consistent(big: JiraDataset) -> None:
    for issue in big:
        assert issue.created <= issue.updated <= _NOW
        done = issue.status_category == "done"
        assert (issue.resolutiondate is not None) == done, issue
        assert (issue.resolution is not None) == done, issue
        if issue.resolutiondate is not None:
            assert issue.created <= issue.resolutiondate <= issue.updated
        assert issue.created.microsecond % 1000 == 0
    created = sorted(i.created for i in big)
    assert created[0] < DEFAULT_CYCLE_START < created[-1]


def test_generate_dataset_epic_status_follows_children(big: JiraDataset) -> None:
    for epic in (i for i in big if i.issuetype == "Epic"):
        kids = [k.status_category for k in big.children(epic.id)]
        if epic.status_category == "done":
            assert kids and all(k == "done" for k in kids)
        if kids and all(k == "new" for k in kids):
            assert epic.status == "To Do"


def _small() -> JiraDataset:
    return generate_dataset(seed=2, issues=200)


def test_transition_given_done_resolves_and_bumps_updated() -> None:
    data = _small()
    issue = next(i for i in data if i.status_category == "new" and i.issuetype == "Story")
    later = data.advance(timedelta(minutes=3))
    data.transition(issue.id, "done")
    assert (issue.status, issue.status_category, issue.resolution) == ("Done", "done", "Done")
    assert issue.resolutiondate == later == issue.updated
    assert data.mutations[-1].kind == "transitioned"
    assert data.changed_since(later) == [issue.id]


def test_reopen_given_done_issue_clears_resolution() -> None:
    data = _small()
    issue = next(i for i in data if i.status == "Done")
    data.reopen(issue.id)
    assert (issue.status, issue.resolution, issue.resolutiondate) == ("To Do", None, None)
    assert issue.updated == data.now()


def test_transition_given_status_name_uses_it() -> None:
    data = _small()
    issue = next(i for i in data if i.status_category == "new")
    data.transition(issue.id, "In Review")
    assert (issue.status, issue.status_category) == ("In Review", "indeterminate")


def test_set_story_points_given_gap_fills_it_and_bumps_updated() -> None:
    data = _small()
    issue = next(i for i in data if i.story_points is None)
    data.set_now(_NOW + timedelta(hours=1))
    data.set_story_points(issue.id, 5.0)
    assert (issue.story_points, issue.updated) == (5.0, _NOW + timedelta(hours=1))


def test_add_issue_given_project_takes_next_key_and_id() -> None:
    data = _small()
    top = max(i.id for i in data)
    count = sum(1 for i in data if i.project == "OPS")
    issue = data.add_issue("OPS", "Bug", "Pager storm", story_points=2.0, labels=["infra"])
    assert (issue.id, issue.key) == (top + 1, f"OPS-{count + 1}")
    assert issue.created == issue.updated == data.now()
    assert data.by_key(issue.key) is issue
    sub = data.add_issue("OPS", "Sub-task", parent=issue.id)
    assert sub.parent_id == issue.id


def test_add_issue_given_subtask_without_parent_refuses() -> None:
    with pytest.raises(ValueError, match="parent"):
        _small().add_issue("ENT", "Sub-task")


def test_update_given_unknown_field_refuses() -> None:
    data = _small()
    issue = next(iter(data))
    data.update(issue.id, labels=["new-label"], priority="High")
    assert (issue.labels, issue.priority) == (["new-label"], "High")
    with pytest.raises(ValueError, match="status"):
        data.update(issue.id, status="Done")


def test_delete_given_parent_removes_subtasks_and_orphans_epic_children() -> None:
    data = _small()
    story = next(i for i in data if any(c.is_subtask for c in data.children(i.id)))
    subtasks = [c.id for c in data.children(story.id)]
    assert sorted(data.delete(story.id)) == sorted([story.id, *subtasks])
    assert all(i not in data.issues for i in [story.id, *subtasks])
    assert story.id in data.deleted
    epic = next(i for i in data if i.issuetype == "Epic" and data.children(i.id))
    kids = data.children(epic.id)
    data.advance(timedelta(minutes=1))
    data.delete(epic.id)
    assert all(k.parent_id is None and k.updated == data.now() for k in kids)


def test_move_given_new_project_changes_key_but_not_id() -> None:
    data = _small()
    story = next(i for i in data if i.project == "ENT" and i.issuetype == "Story"
                 and any(c.is_subtask for c in data.children(i.id)))
    old_key, issue_id = story.key, story.id
    subtasks = [c for c in data.children(story.id) if c.is_subtask]
    data.advance(timedelta(seconds=30))
    moved = data.move(issue_id, "SUP")
    assert moved.id == issue_id and moved.project == "SUP" and moved.key.startswith("SUP-")
    assert moved.key_history == [old_key]
    assert data.resolve_key(old_key) == issue_id
    assert moved.updated == data.now()
    assert all(s.project == "SUP" and s.key_history for s in subtasks)
    assert all(c in data.projects["SUP"].components for c in moved.components)
    with pytest.raises(ValueError):
        data.move(subtasks[0].id, "OPS")


def test_clock_given_naive_datetime_refuses() -> None:
    with pytest.raises(ValueError):
        _small().set_now(datetime(2026, 11, 1))
