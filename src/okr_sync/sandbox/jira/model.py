"""The Jira sandbox's data model: issue records, catalogues, a controllable clock, mutations.

Records are plain data; :mod:`.render` turns them into Jira's wire JSON. Every mutation
bumps ``updated`` to the sandbox clock, as Jira does, so incremental pulls can see it.
Import from :mod:`.data`, which adds the seeded generator.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

__all__ = [
    "ISSUE_TYPES",
    "PRIORITIES",
    "RESOLUTIONS",
    "STATUSES",
    "STATUS_CATEGORIES",
    "ChangeHistory",
    "IssueRecord",
    "IssueType",
    "JiraDataset",
    "Mutation",
    "NamedItem",
    "Project",
    "SandboxClock",
    "Status",
    "StatusCategory",
    "issue_type_named",
    "status_named",
]


@dataclass(frozen=True)
class StatusCategory:
    id: int
    key: str
    color_name: str
    name: str


STATUS_CATEGORIES: dict[str, StatusCategory] = {
    "new": StatusCategory(2, "new", "blue-gray", "To Do"),
    "indeterminate": StatusCategory(4, "indeterminate", "yellow", "In Progress"),
    "done": StatusCategory(3, "done", "green", "Done"),
}


@dataclass(frozen=True)
class Status:
    id: int
    name: str
    category: str  # key into STATUS_CATEGORIES


STATUSES: tuple[Status, ...] = (
    Status(10000, "Backlog", "new"),
    Status(10001, "To Do", "new"),
    Status(3, "In Progress", "indeterminate"),
    Status(10002, "In Review", "indeterminate"),
    Status(10003, "Done", "done"),
    Status(10004, "Won't Do", "done"),
)


@dataclass(frozen=True)
class IssueType:
    id: int
    name: str
    subtask: bool
    hierarchy_level: int


ISSUE_TYPES: tuple[IssueType, ...] = (
    IssueType(10000, "Epic", False, 1),
    IssueType(10001, "Story", False, 0),
    IssueType(10002, "Task", False, 0),
    IssueType(10003, "Bug", False, 0),
    IssueType(10004, "Sub-task", True, -1),
)


@dataclass(frozen=True)
class NamedItem:
    id: int
    name: str


# Jira orders priorities by sequence: Highest is first.
PRIORITIES: tuple[NamedItem, ...] = (
    NamedItem(1, "Highest"), NamedItem(2, "High"), NamedItem(3, "Medium"),
    NamedItem(4, "Low"), NamedItem(5, "Lowest"),
)
RESOLUTIONS: tuple[NamedItem, ...] = (
    NamedItem(10000, "Done"), NamedItem(10001, "Won't Do"), NamedItem(10002, "Duplicate"),
    NamedItem(10003, "Cannot Reproduce"),
)

_STATUS_BY_NAME = {s.name.lower(): s for s in STATUSES}
_TYPE_BY_NAME = {t.name.lower(): t for t in ISSUE_TYPES}


def status_named(name: str) -> Status:
    return _STATUS_BY_NAME[name.lower()]


def issue_type_named(name: str) -> IssueType:
    return _TYPE_BY_NAME[name.lower()]


@dataclass
class Project:
    id: int
    key: str
    name: str
    components: dict[str, int] = field(default_factory=dict)  # name -> id
    versions: dict[str, tuple[int, bool]] = field(default_factory=dict)  # name -> (id, released)


@dataclass
class IssueRecord:
    """One issue as the sandbox stores it; datetimes are aware UTC with millisecond precision."""

    id: int
    key: str
    project: str
    issuetype: str
    summary: str
    status: str
    priority: str | None
    created: datetime
    updated: datetime
    labels: list[str] = field(default_factory=list)
    components: list[str] = field(default_factory=list)
    fix_versions: list[str] = field(default_factory=list)
    parent_id: int | None = None
    story_points: float | None = None
    resolution: str | None = None
    resolutiondate: datetime | None = None
    key_history: list[str] = field(default_factory=list)
    #: Account ids (Cloud), or None when nobody is assigned / the reporter is unknown.
    assignee: str | None = None
    reporter: str | None = None

    @property
    def status_category(self) -> str:
        return status_named(self.status).category

    @property
    def is_subtask(self) -> bool:
        return issue_type_named(self.issuetype).subtask

    @property
    def key_number(self) -> int:
        return int(self.key.rsplit("-", 1)[1])


@dataclass(frozen=True)
class Mutation:
    kind: str  # created | transitioned | story_points | updated | deleted | moved
    issue_id: int
    at: datetime
    detail: str = ""


#: The record attributes a changelog tracks, in the order Jira lists a history's items.
TRACKED = ("key", "project", "issuetype", "parent_id", "status", "resolution", "priority",
           "story_points", "labels", "components", "fix_versions", "summary")


@dataclass(frozen=True)
class ChangeHistory:
    """One changelog entry: what one mutation changed, as (attribute, before, after).

    Values are the record's own (status and resolution names, the parent's id, lists);
    :mod:`.changelog` renders them as Jira's change items.
    """

    id: int
    issue_id: int
    at: datetime
    items: tuple[tuple[str, object, object], ...]


def _ident(value: object) -> object:
    # A parent is (id, key): only a new id is a change (the parent's own move is not).
    return value[0] if isinstance(value, tuple) else value


def _ms(value: datetime) -> datetime:
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


class SandboxClock:
    """The sandbox's notion of now: frozen (tests) or running from a start instant (demo)."""

    def __init__(self, start: datetime | None = None, *, frozen: bool = True) -> None:
        self._base = (start or datetime.now(UTC)).astimezone(UTC)
        self._frozen = frozen
        self._mark = time.monotonic()

    def now(self) -> datetime:
        if self._frozen:
            return _ms(self._base)
        return _ms(self._base + timedelta(seconds=time.monotonic() - self._mark))

    def set(self, instant: datetime) -> None:
        if instant.tzinfo is None:
            raise ValueError("the sandbox clock needs an aware datetime")
        self._base = instant.astimezone(UTC)
        self._mark = time.monotonic()

    def advance(self, delta: timedelta) -> datetime:
        self.set(self.now() + delta)
        return self.now()


class JiraDataset:
    """Issues of a few projects, mutable between sync passes; thread-safe for the server."""

    def __init__(
        self,
        projects: Iterable[Project],
        issues: Iterable[IssueRecord] = (),
        *,
        clock: SandboxClock | None = None,
    ) -> None:
        self.lock = threading.RLock()
        self.projects: dict[str, Project] = {p.key: p for p in projects}
        self.issues: dict[int, IssueRecord] = {}
        self.deleted: dict[int, IssueRecord] = {}
        self.mutations: list[Mutation] = []
        #: Issue id -> its changelog, oldest first (kept after a deletion, never served).
        self.changelog: dict[int, list[ChangeHistory]] = {}
        self._next_history_id = 10000
        self.clock = clock or SandboxClock()
        self._by_key: dict[str, int] = {}  # current and historical keys -> id
        self._next_number: dict[str, int] = {k: 1 for k in self.projects}
        self._next_id = 10000
        for issue in issues:
            self._index(issue)

    def _index(self, issue: IssueRecord) -> None:
        self.issues[issue.id] = issue
        for key in (*issue.key_history, issue.key):
            self._by_key[key.upper()] = issue.id
        project, number = issue.key.rsplit("-", 1)
        self._next_number[project] = max(self._next_number.get(project, 1), int(number) + 1)
        self._next_id = max(self._next_id, issue.id + 1)

    # ------------------------------------------------------------------ reading
    def now(self) -> datetime:
        return self.clock.now()

    def set_now(self, instant: datetime) -> None:
        self.clock.set(instant)

    def advance(self, delta: timedelta) -> datetime:
        return self.clock.advance(delta)

    def __len__(self) -> int:
        return len(self.issues)

    def __iter__(self) -> Iterator[IssueRecord]:
        with self.lock:  # a snapshot, so the server thread may mutate meanwhile
            return iter(list(self.issues.values()))

    def get(self, issue_id: int) -> IssueRecord:
        return self.issues[issue_id]

    def resolve_key(self, key: str) -> int | None:
        """The id behind a current or former key (Jira redirects old keys after a move)."""
        issue_id = self._by_key.get(key.upper())
        return issue_id if issue_id in self.issues else None

    def by_key(self, key: str) -> IssueRecord:
        issue_id = self.resolve_key(key)
        if issue_id is None:
            raise KeyError(key)
        return self.issues[issue_id]

    def children(self, issue_id: int) -> list[IssueRecord]:
        return [i for i in self.issues.values() if i.parent_id == issue_id]

    def component_names(self) -> set[str]:
        return {c.lower() for p in self.projects.values() for c in p.components}

    def version_names(self) -> set[str]:
        return {v.lower() for p in self.projects.values() for v in p.versions}

    def changed_since(self, instant: datetime) -> list[int]:
        """Ids of live issues whose ``updated`` is at or after ``instant`` (test helper)."""
        return sorted(i.id for i in self.issues.values() if i.updated >= instant)

    # ---------------------------------------------------------------- mutating
    def _touch(self, issue: IssueRecord, kind: str, detail: str = "",
               before: dict[str, object] | None = None) -> None:
        issue.updated = self.now()
        self.mutations.append(Mutation(kind, issue.id, issue.updated, detail))
        if before is not None:
            self._log_changes(issue, before)

    def _tracked(self, issue: IssueRecord) -> dict[str, object]:
        """The tracked attributes now; the parent as (id, its key now), as Jira's
        changelog keeps the key the parent had when the change was made."""
        values: dict[str, object] = {
            name: (list(v) if isinstance(v := getattr(issue, name), list) else v)
            for name in TRACKED}
        parent = self.issues.get(issue.parent_id) if issue.parent_id is not None else None
        values["parent_id"] = (None if issue.parent_id is None
                               else (issue.parent_id, parent.key if parent else None))
        return values

    def _log_changes(self, issue: IssueRecord, before: dict[str, object]) -> None:
        """Append a changelog entry for what changed since ``before`` (nothing if nothing)."""
        after = self._tracked(issue)
        items = tuple((name, before[name], after[name]) for name in TRACKED
                      if _ident(before[name]) != _ident(after[name]))
        if items:
            self.changelog.setdefault(issue.id, []).append(
                ChangeHistory(self._next_history_id, issue.id, issue.updated, items))
            self._next_history_id += 1

    def add_issue(
        self,
        project: str,
        issuetype: str = "Story",
        summary: str | None = None,
        *,
        parent: int | None = None,
        status: str = "To Do",
        priority: str | None = "Medium",
        story_points: float | None = None,
        labels: Iterable[str] = (),
        components: Iterable[str] = (),
        fix_versions: Iterable[str] = (),
    ) -> IssueRecord:
        with self.lock:
            if project not in self.projects:
                raise KeyError(f"unknown project {project}")
            itype = issue_type_named(issuetype)
            if itype.subtask and (parent is None or parent not in self.issues):
                raise ValueError("a sub-task needs an existing parent")
            number = self._next_number[project]
            now = self.now()
            issue = IssueRecord(
                id=self._next_id, key=f"{project}-{number}", project=project,
                issuetype=itype.name, summary=summary or f"New {itype.name.lower()} {number}",
                status=status_named(status).name, priority=priority, created=now, updated=now,
                labels=list(labels), components=list(components),
                fix_versions=list(fix_versions), parent_id=parent, story_points=story_points,
            )
            self._set_resolution(issue, status_named(status))
            self._index(issue)
            self.mutations.append(Mutation("created", issue.id, now))
            return issue

    def _set_resolution(self, issue: IssueRecord, status: Status) -> None:
        if status.category == "done":
            if issue.resolution is None:
                issue.resolution = "Won't Do" if status.name == "Won't Do" else "Done"
                issue.resolutiondate = self.now()
        else:
            issue.resolution = None
            issue.resolutiondate = None

    def transition(self, issue_id: int, target: str) -> IssueRecord:
        """Move to a status by name, or by category key (``done``, ``indeterminate``, ``new``)."""
        with self.lock:
            issue = self.issues[issue_id]
            before = self._tracked(issue)
            by_category = {"done": "Done", "indeterminate": "In Progress", "new": "To Do"}
            status = status_named(by_category.get(target.lower(), target))
            if status.category != "done":
                issue.resolution = None
            issue.status = status.name
            self._set_resolution(issue, status)
            self._touch(issue, "transitioned", status.name, before)
            return issue

    def reopen(self, issue_id: int) -> IssueRecord:
        return self.transition(issue_id, "To Do")

    def set_story_points(self, issue_id: int, points: float | None) -> IssueRecord:
        with self.lock:
            issue = self.issues[issue_id]
            before = self._tracked(issue)
            issue.story_points = points
            self._touch(issue, "story_points", repr(points), before)
            return issue

    def update(self, issue_id: int, **changes: object) -> IssueRecord:
        """Change plain fields (summary, priority, labels, components, fix_versions, parent_id,
        assignee, reporter)."""
        allowed = {"summary", "priority", "labels", "components", "fix_versions", "parent_id",
                   "assignee", "reporter"}
        unknown = set(changes) - allowed
        if unknown:
            raise ValueError(f"cannot update {sorted(unknown)}")
        with self.lock:
            issue = self.issues[issue_id]
            before = self._tracked(issue)
            updated = replace(issue, **changes)  # type: ignore[arg-type]
            for name in changes:
                setattr(issue, name, getattr(updated, name))
            self._touch(issue, "updated", ",".join(sorted(changes)), before)
            return issue

    def delete(self, issue_id: int) -> list[int]:
        """Delete an issue and its sub-tasks; epic children lose their parent. Returns ids."""
        with self.lock:
            if issue_id not in self.issues:
                raise KeyError(issue_id)
            doomed = [issue_id] + [c.id for c in self.children(issue_id) if c.is_subtask]
            for orphan in self.children(issue_id):
                if not orphan.is_subtask:
                    before = self._tracked(orphan)
                    orphan.parent_id = None
                    self._touch(orphan, "updated", "parent", before)
            at = self.now()
            for gone in doomed:
                self.deleted[gone] = self.issues.pop(gone)
                self.mutations.append(Mutation("deleted", gone, at))
            return doomed

    def move(self, issue_id: int, project: str) -> IssueRecord:
        """Move to another project: a NEW key, the SAME id; sub-tasks move along."""
        with self.lock:
            issue = self.issues[issue_id]
            if issue.is_subtask:
                raise ValueError("a sub-task moves with its parent")
            if project not in self.projects:
                raise KeyError(f"unknown project {project}")
            for moving in [issue, *(c for c in self.children(issue_id) if c.is_subtask)]:
                self._move_one(moving, self.projects[project])
            return issue

    def _move_one(self, issue: IssueRecord, target: Project) -> None:
        old_key = issue.key
        before = self._tracked(issue)
        number = self._next_number[target.key]
        issue.key_history.append(old_key)
        issue.key = f"{target.key}-{number}"
        issue.project = target.key
        issue.components = [c for c in issue.components if c in target.components]
        issue.fix_versions = [v for v in issue.fix_versions if v in target.versions]
        self._index(issue)
        self._touch(issue, "moved", f"{old_key}->{issue.key}", before)

