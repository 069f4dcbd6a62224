"""Rewinding one issue through its changelog (pure): undo before the record, apply after."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from okr_sync.connectors.jira.changelog import ChangeEntry, ChangeItem
from okr_sync.sync.backfill.rewind import FieldRoles, IssueTimeline, states_before
from support.issue_builders import issue

T0 = datetime(2026, 10, 1, tzinfo=UTC)
CATEGORIES = {"1": "new", "3": "indeterminate", "10003": "done"}
ROLES = FieldRoles(story_points=frozenset({"customfield_10016"}))


def _entry(day: int, *items: ChangeItem) -> ChangeEntry:
    return ChangeEntry(str(day), T0 + timedelta(days=day, hours=12), items)


def _status(old: tuple[str, str], new: tuple[str, str]) -> ChangeItem:
    return ChangeItem("status", "status", old[0], old[1], new[0], new[1])


ENTRIES = (
    _entry(2, _status(("1", "To Do"), ("3", "In Progress")),
          ChangeItem("Story point estimate", "customfield_10016", None, None, None, "3")),
    _entry(4, ChangeItem("Key", "issuekey", None, "ENT-7", None, "SUP-2"),
          ChangeItem("Component", "components", None, None, "11", "Auth"),
          ChangeItem("labels", "labels", None, "", None, "sso beta")),
    _entry(6, _status(("3", "In Progress"), ("10003", "Done")),
          ChangeItem("IssueParentAssociation", "parent", None, None, "10001", "ENT-1")),
)


def _at(day: int) -> datetime:
    return T0 + timedelta(days=day + 1)


def test_states_before_given_record_after_all_changes_undoes_them_per_day() -> None:
    record = issue("SUP-2", done=True, points=3.0, status="Done", components=("Auth",),
                   labels=("sso", "beta"), parent_id="10001", parent_key="ENT-1",
                   created=T0, updated=_at(6) - timedelta(hours=1))
    days = [_at(d) for d in (0, 2, 4, 6)]
    states = states_before(IssueTimeline(record, ENTRIES), days, CATEGORIES, ROLES)

    first, second, third, last = (states[d] for d in days)
    assert first is not None and second is not None and third is not None
    assert (first.key, first.project, first.status_category, first.story_points) == (
        "ENT-7", "ENT", "new", None)
    assert (first.components, first.labels, first.parent_id) == ((), (), None)
    assert (second.status, second.story_points, second.key) == ("In Progress", 3.0, "ENT-7")
    assert (third.key, third.components, third.labels) == ("SUP-2", ("Auth",), ("sso", "beta"))
    assert third.status_category == "indeterminate" and third.parent_id is None
    assert last == record


def test_states_before_given_stale_record_applies_later_changes() -> None:
    record = issue("ENT-7", status="To Do", status_category="new", created=T0,
                   updated=T0 + timedelta(hours=1))
    states = states_before(IssueTimeline(record, ENTRIES), [_at(0), _at(6)], CATEGORIES, ROLES)
    now = states[_at(6)]
    assert states[_at(0)] is not None and states[_at(0)].key == "ENT-7"
    assert now is not None and (now.key, now.status_category, now.parent_id) == (
        "SUP-2", "done", "10001")


def test_states_before_given_creation_and_deletion_exists_only_between() -> None:
    record = issue("ENT-9", created=T0 + timedelta(days=3), updated=T0 + timedelta(days=3))
    timeline = IssueTimeline(record, (), deleted_at=T0 + timedelta(days=5, hours=23))
    states = states_before(timeline, [_at(d) for d in (2, 3, 4, 5)], CATEGORIES, ROLES)
    # Gone at the end of the day a pass saw it gone (as that pass measured it).
    assert [states[_at(d)] is not None for d in (2, 3, 4, 5)] == [False, True, True, False]


def test_states_before_given_move_without_key_item_takes_the_project_by_id() -> None:
    # A field filter (or a Jira that sends no fieldId for "Key") may leave only the
    # project item of a move: its ids name the projects.
    roles = FieldRoles(projects={"10000": "ENT", "10001": "SUP"})
    move = _entry(3, ChangeItem("project", "project", "10000", "Enterprise", "10001",
                                "Customer Support"))
    record = issue("SUP-4", created=T0, updated=_at(3))
    states = states_before(IssueTimeline(record, (move,)), [_at(1), _at(3)], CATEGORIES, roles)
    before, after = states[_at(1)], states[_at(3)]
    assert before is not None and before.project == "ENT"
    assert after is not None and after.project == "SUP"
