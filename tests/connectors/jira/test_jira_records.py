"""JiraIssue built from Jira's issue JSON (pure)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from okr_sync.connectors.errors import MalformedResponseError, PermanentError, TransientError
from okr_sync.connectors.jira.records import JiraIssue, JiraIssueShapeError, parse_jira_datetime


def issue_json(**fields: Any) -> dict[str, Any]:
    """A realistic Cloud search hit; keyword arguments override fields."""
    base: dict[str, Any] = {
        "summary": "Ship SSO",
        "issuetype": {"id": "10001", "name": "Story", "subtask": False},
        "project": {"id": "10000", "key": "ENT", "name": "Enterprise"},
        "parent": {"id": "20100", "key": "ENT-100", "fields": {"summary": "SSO epic"}},
        "status": {
            "name": "Готово",
            "statusCategory": {"id": 3, "key": "done", "colorName": "green"},
        },
        "resolution": {"id": "10000", "name": "Done"},
        "resolutiondate": "2026-11-02T10:15:00.000+0000",
        "priority": {"id": "2", "name": "High"},
        "labels": ["okr", "sso"],
        "components": [{"id": "1", "name": "Auth"}, {"id": "2", "name": "Web"}],
        "fixVersions": [{"id": "7", "name": "2026.11"}],
        "created": "2019-09-25T08:37:05.392-0500",
        "updated": "2026-11-02T10:15:00.120+0000",
        "customfield_10016": None,
        "customfield_10028": 5,
        "customfield_10050": {"value": "Gold"},
    }
    base.update(fields)
    return {
        "id": "20123",
        "key": "ENT-123",
        "self": "https://x/rest/api/3/issue/20123",
        "fields": base,
    }


def test_from_json_given_full_cloud_issue_maps_every_field() -> None:
    issue = JiraIssue.from_json(
        issue_json(),
        story_points_fields=("customfield_10016", "customfield_10028"),
        extra_fields=("customfield_10050",),
    )
    assert issue == JiraIssue(
        id="20123",
        key="ENT-123",
        project="ENT",
        issuetype="Story",
        is_subtask=False,
        parent_id="20100",
        parent_key="ENT-100",
        summary="Ship SSO",
        status="Готово",
        status_category="done",
        resolution="Done",
        resolution_date=datetime(2026, 11, 2, 10, 15, tzinfo=UTC),
        priority="High",
        labels=("okr", "sso"),
        components=("Auth", "Web"),
        fix_versions=("2026.11",),
        story_points=5.0,
        created=datetime(2019, 9, 25, 8, 37, 5, 392_000, tzinfo=timezone(timedelta(hours=-5))),
        updated=datetime(2026, 11, 2, 10, 15, 0, 120_000, tzinfo=UTC),
        fields={"customfield_10050": {"value": "Gold"}},
    )


def test_from_json_given_minimal_issue_uses_empty_defaults() -> None:
    raw = issue_json(
        parent=None,
        resolution=None,
        resolutiondate=None,
        priority=None,
        labels=[],
        components=[],
        fixVersions=[],
        status={"name": "Open"},
    )
    issue = JiraIssue.from_json(raw)
    assert (issue.parent_id, issue.parent_key, issue.resolution, issue.priority) == (
        None,
        None,
        None,
        None,
    )
    assert issue.status_category == "undefined"
    assert issue.story_points is None
    assert issue.labels == issue.components == issue.fix_versions == ()
    assert dict(issue.fields) == {}


def test_from_json_given_subtask_sets_flag() -> None:
    raw = issue_json(issuetype={"name": "Sub-task", "subtask": True})
    assert JiraIssue.from_json(raw).is_subtask is True


def test_from_json_given_epic_link_and_no_parent_uses_epic_key() -> None:
    raw = issue_json(parent=None, customfield_10014="ENT-7")
    issue = JiraIssue.from_json(raw, epic_link_field="customfield_10014")
    assert (issue.parent_id, issue.parent_key) == (None, "ENT-7")


def test_from_json_given_first_candidate_has_points_prefers_it() -> None:
    raw = issue_json(customfield_10016=3, customfield_10028=5)
    points = ("customfield_10016", "customfield_10028")
    assert JiraIssue.from_json(raw, story_points_fields=points).story_points == 3.0


@pytest.mark.parametrize(
    ("value", "expected"), [("2.5", 2.5), ("n/a", None), (True, None), (0, 0.0)]
)
def test_from_json_given_odd_story_point_values_reads_numbers_only(
    value: object, expected: float | None
) -> None:
    raw = issue_json(customfield_10028=value)
    assert JiraIssue.from_json(raw, story_points_fields=("customfield_10028",)).story_points == (
        expected
    )


def test_from_json_given_missing_created_raises_permanent_shape_error_naming_issue() -> None:
    raw = issue_json()
    del raw["fields"]["created"]
    with pytest.raises(JiraIssueShapeError, match=r"ENT-123 \(id 20123\)") as raised:
        JiraIssue.from_json(raw)
    assert isinstance(raised.value, PermanentError)
    assert not isinstance(raised.value, TransientError)
    assert (raised.value.issue_key, raised.value.issue_id) == ("ENT-123", "20123")


def test_from_json_given_missing_fields_object_raises_shape_error() -> None:
    with pytest.raises(JiraIssueShapeError, match="A-1"):
        JiraIssue.from_json({"id": "1", "key": "A-1"})


@pytest.mark.parametrize(
    "fields",
    [
        {"updated": "next tuesday"},
        {"status": "Done"},
        {"components": [{"id": "1"}]},
        {"labels": 5},
        {"labels": "okr"},  # iterable, but not labels o, k and r
        {"labels": {"okr": True}},
        {"project": None},
    ],
)
def test_from_json_given_unreadable_field_raises_shape_error_naming_issue(
    fields: dict[str, Any],
) -> None:
    with pytest.raises(JiraIssueShapeError) as raised:
        JiraIssue.from_json(issue_json(**fields))
    assert "ENT-123" in str(raised.value)


def test_from_json_given_no_key_or_id_says_so() -> None:
    with pytest.raises(JiraIssueShapeError, match="no key or id") as raised:
        JiraIssue.from_json({"fields": {}})
    assert (raised.value.issue_key, raised.value.issue_id) == (None, None)


def test_jira_issue_given_frozen_record_is_hashable_and_immutable() -> None:
    issue = JiraIssue.from_json(issue_json(), extra_fields=("customfield_10050",))
    assert hash(issue) == hash(JiraIssue.from_json(issue_json()))
    with pytest.raises(AttributeError):
        issue.key = "X-1"  # type: ignore[misc]
    with pytest.raises(TypeError):
        issue.fields["customfield_10050"] = 1  # type: ignore[index]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2019-09-25T08:37:05.392-0500", datetime(2019, 9, 25, 13, 37, 5, 392_000, tzinfo=UTC)),
        ("2019-09-25T08:37:05-0500", datetime(2019, 9, 25, 13, 37, 5, tzinfo=UTC)),
        ("2019-09-25T19:07:05.000+0530", datetime(2019, 9, 25, 13, 37, 5, tzinfo=UTC)),
        ("2019-09-25T13:37:05.392+00:00", datetime(2019, 9, 25, 13, 37, 5, 392_000, tzinfo=UTC)),
    ],
)
def test_parse_jira_datetime_given_jira_formats_returns_aware_instant(
    text: str, expected: datetime
) -> None:
    parsed = parse_jira_datetime(text)
    assert parsed.tzinfo is not None
    assert parsed == expected


@pytest.mark.parametrize("text", ["2019-09-25T08:37:05.392", "yesterday", ""])
def test_parse_jira_datetime_given_naive_or_garbage_raises_malformed(text: str) -> None:
    with pytest.raises(MalformedResponseError):
        parse_jira_datetime(text)


def test_from_json_given_issues_decoded_apart_shares_their_names_and_zones() -> None:
    # Each hit decoded on its own, as pages are: JSON gives every value its own string.
    first, second = (JiraIssue.from_json(json.loads(json.dumps(issue_json(
        created="2019-09-25T08:37:05.392-0500", updated=f"2026-11-0{n}T10:15:00.000-0500"))))
        for n in (1, 2))

    # A full pull holds every issue it read: what they share is held once.
    for name in ("project", "issuetype", "status", "status_category", "priority",
                 "resolution"):
        assert getattr(first, name) is getattr(second, name)
    assert all(a is b for a, b in zip(first.labels + first.components,
                                      second.labels + second.components, strict=True))
    assert first.created.tzinfo is second.created.tzinfo is second.updated.tzinfo
    assert second.updated.utcoffset() == timedelta(hours=-5)
    assert second.updated == datetime(2026, 11, 2, 15, 15, tzinfo=UTC)
