"""Builders for Jira issue records in tests."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from okr_sync.connectors.jira.records import JiraIssue

_ids = itertools.count(10_000)
CYCLE_START = datetime(2026, 10, 1, tzinfo=UTC)
BEFORE_START = datetime(2026, 9, 15, tzinfo=UTC)
AFTER_START = datetime(2026, 10, 20, tzinfo=UTC)


def issue(
    key: str, *, done: bool = False, points: float | None = None, **changes: Any
) -> JiraIssue:
    """An issue in project ``key``'s prefix; keyword arguments override any field."""
    project = key.rsplit("-", 1)[0]
    fields = changes.pop("fields", {})
    base = JiraIssue(
        id=str(changes.pop("id", next(_ids))),
        key=key,
        project=project,
        issuetype="Story",
        is_subtask=False,
        parent_id=None,
        parent_key=None,
        summary=f"Work on {key}",
        status="Done" if done else "In Progress",
        status_category="done" if done else "indeterminate",
        resolution="Done" if done else None,
        resolution_date=None,
        priority="Medium",
        labels=(),
        components=(),
        fix_versions=(),
        story_points=points,
        created=BEFORE_START,
        updated=BEFORE_START,
        fields=MappingProxyType(dict(fields)),
    )
    return replace(base, **changes)


def reopen(item: JiraIssue) -> JiraIssue:
    return replace(item, status="Reopened", status_category="new", resolution=None)


def finish(item: JiraIssue) -> JiraIssue:
    return replace(item, status="Готово", status_category="done", resolution="Done")


def by_id(*items: JiraIssue) -> dict[str, JiraIssue]:
    return {item.id: item for item in items}
