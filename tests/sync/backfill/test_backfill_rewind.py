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


def test_states_before_given_epic_link_change_moves_the_parent_id_with_the_key() -> None:
    # measures match parent_id first: a stale id would count the issue in E-1 too early.
    roles = FieldRoles(epic_link="customfield_10014")
    join = _entry(3, ChangeItem("Epic Link", "customfield_10014", "10005", "ENT-5",
                                "10001", "ENT-1"))
    record = issue("ENT-7", parent_id="10001", parent_key="ENT-1", created=T0,
                   updated=_at(5))
    states = states_before(IssueTimeline(record, (join,)), [_at(2), _at(5)], CATEGORIES, roles)

    before, after = states[_at(2)], states[_at(5)]
    assert before is not None and (before.parent_id, before.parent_key) == ("10005", "ENT-5")
    assert after is not None and (after.parent_id, after.parent_key) == ("10001", "ENT-1")


def test_states_before_given_assignee_changes_keeps_account_ids_not_display_names() -> None:
    roles = FieldRoles(extra=frozenset({"assignee"}))
    entries = (
        _entry(2, ChangeItem("assignee", "assignee", None, None, "acc-ann", "Ann Lee")),
        _entry(4, ChangeItem("assignee", "assignee", "acc-ann", "Ann Lee", "acc-bob", "Bob")),
    )
    record = issue("ENT-7", created=T0, updated=_at(5),
                   fields={"assignee": {"accountId": "acc-bob", "displayName": "Bob"}})
    days = [_at(1), _at(3), _at(5)]
    states = states_before(IssueTimeline(record, entries), days, CATEGORIES, roles)

    assert [s.fields["assignee"] if s else "gone" for s in (states[d] for d in days)] == [
        None, {"accountId": "acc-ann"}, record.fields["assignee"]]


def test_states_before_given_data_center_user_keys_keeps_the_records_key_shape() -> None:
    roles = FieldRoles(extra=frozenset({"assignee"}))
    change = _entry(2, ChangeItem("assignee", "assignee", "JIRAUSER1", "Ann", "JIRAUSER2",
                                  "Bob"))
    record = issue("ENT-7", created=T0, updated=_at(5),
                   fields={"assignee": {"key": "JIRAUSER2", "name": "bob"}})
    states = states_before(IssueTimeline(record, (change,)), [_at(1)], CATEGORIES, roles)

    before = states[_at(1)]
    assert before is not None and before.fields["assignee"] == {"key": "JIRAUSER1"}


def test_states_before_given_undone_reopen_restores_the_earlier_resolution_date() -> None:
    def resolution(old: str | None, new: str | None) -> ChangeItem:
        return ChangeItem("resolution", "resolution", old and "1", old, new and "1", new)

    entries = (_entry(3, resolution(None, "Done")), _entry(5, resolution("Done", None)),
               _entry(8, resolution(None, "Done")))
    record = issue("ENT-7", done=True, created=T0, updated=_at(9),
                   resolution_date=entries[2].created)
    states = states_before(IssueTimeline(record, entries), [_at(4), _at(6)], CATEGORIES, ROLES)

    resolved, reopened = states[_at(4)], states[_at(6)]
    assert resolved is not None and (resolved.resolution, resolved.resolution_date) == (
        "Done", entries[0].created)
    assert reopened is not None and (reopened.resolution, reopened.resolution_date) == (
        None, None)
