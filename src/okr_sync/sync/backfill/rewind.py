"""An issue's state at past instants, from its mirrored record and its changelog (pure).

The mirrored record is the issue as Jira sent it when its ``updated`` was what the
record says: every history up to then is in it, later ones are not (a record may be
older than the last change if no pass has run since). So the state *before* an instant
``c`` is the record with the histories in ``[c, updated]`` undone (newest first, each
field back to its ``from``), or with the histories in ``(updated, c)`` applied (oldest
first, each field to its ``to``).

An issue exists from its ``created`` on, until the mirror saw it gone (``deleted_at``,
recorded by the live pass that noticed the deletion or the move out of scope). Jira
keeps no changelog of a deleted issue: until its deletion it has the record's state,
which is exactly what the live passes measured of it after they last read it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from okr_sync.connectors.jira.changelog import ChangeEntry, ChangeItem
from okr_sync.connectors.jira.records import JiraIssue

#: Display names Jira uses for story-point fields (when a change item has no fieldId).
_POINT_NAMES = frozenset({"story point estimate", "story points"})
_PARENT_NAMES = frozenset({"issueparentassociation", "parent"})
_USER_FIELDS = frozenset({"assignee", "reporter"})


@dataclass(frozen=True)
class FieldRoles:
    """Which field ids mean what on this site (ids differ between instances)."""

    story_points: frozenset[str] = frozenset()
    epic_link: str | None = None
    extra: frozenset[str] = frozenset()
    #: Project id -> key: a move's ``project`` item names ids (used when its history
    #: has no ``Key`` item, which a field filter may leave out).
    projects: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class IssueTimeline:
    record: JiraIssue
    #: Oldest first.
    entries: Sequence[ChangeEntry] = ()
    deleted_at: datetime | None = None


def _role(item: ChangeItem, roles: FieldRoles) -> str | None:
    fid = item.field_id
    name = item.field.casefold()
    if fid == "issuekey" or (fid is None and name == "key"):
        return "key"
    if fid == "project" or (fid is None and name == "project"):
        return "project"
    if fid in ("status", "resolution", "priority", "issuetype", "summary", "labels"):
        return fid
    if fid is None and name in ("status", "resolution", "priority", "issuetype", "summary",
                                "labels"):
        return name
    if fid == "components" or name == "component":
        return "components"
    if fid == "fixVersions" or name == "fix version":
        return "fix_versions"
    if fid == "parent" or name in _PARENT_NAMES:
        return "parent"
    if (roles.epic_link is not None and fid == roles.epic_link) or name == "epic link":
        return "epic"
    if fid in roles.story_points or (fid is None and name in _POINT_NAMES):
        return "points"
    if fid in _USER_FIELDS or (fid is None and name in _USER_FIELDS):
        # Only a mirrored user field is rewound (an unmirrored one stays unknown).
        return "user" if (fid or name) in roles.extra else None
    if fid is not None and fid in roles.extra:
        return "extra"
    return None


def _number(text: str | None) -> float | None:
    if text is None or not text.strip():
        return None
    try:
        return float(text)
    except ValueError:
        return None


class _State:
    """A record's fields while histories are undone or applied."""

    def __init__(self, record: JiraIssue, categories: Mapping[str, str],
                 roles: FieldRoles) -> None:
        self.values: dict[str, Any] = {}
        self.record = record
        self.categories = categories
        self.roles = roles
        self.fields = dict(record.fields)

    def get(self, name: str) -> Any:
        return self.values.get(name, getattr(self.record, name))

    def change(self, entry: ChangeEntry, forward: bool) -> None:
        items = entry.items if forward else tuple(reversed(entry.items))
        keyed = any(_role(item, self.roles) == "key" for item in items)
        for item in items:
            if keyed and _role(item, self.roles) == "project":
                continue  # the key names the project (and the key number)
            self._item(item, entry, forward)

    def _item(self, item: ChangeItem, entry: ChangeEntry, forward: bool) -> None:
        role = _role(item, self.roles)
        ident, text = (item.to_value, item.to_string) if forward else (
            item.from_value, item.from_string)
        if role == "key" and text:
            self.values["key"] = text
            self.values["project"] = text.rpartition("-")[0]
        elif role == "project" and ident is not None and ident in self.roles.projects:
            self.values["project"] = self.roles.projects[ident]
        elif role == "status":
            self.values["status"] = text or ""
            category = (self.categories.get(ident or "")
                        or self.categories.get(f"name:{(text or '').casefold()}"))
            self.values["status_category"] = category or "undefined"
        elif role == "resolution":
            self.values["resolution"] = text or None
            if not text:
                self.values["resolution_date"] = None
            elif forward:
                self.values["resolution_date"] = entry.created
        elif role == "priority":
            self.values["priority"] = text or None
        elif role == "issuetype":
            self.values["issuetype"] = text or ""
        elif role == "summary":
            self.values["summary"] = text or ""
        elif role == "labels":
            self.values["labels"] = tuple((text or "").split())
        elif role in ("components", "fix_versions"):
            self._multi(role, item, forward)
        elif role == "parent":
            self.values["parent_id"] = ident or None
            self.values["parent_key"] = text or None
        elif role == "epic":
            # Epic Link items carry the epic's id in from/to (its key in the strings); the
            # measures match parent_id first, so it must move with the key.
            self.values["parent_id"] = ident or None
            self.values["parent_key"] = text or None
        elif role == "user" and item.field_id is not None:
            self.fields[item.field_id] = self._person(item.field_id, ident)
        elif role == "points":
            self.values["story_points"] = _number(text)
        elif role == "extra" and item.field_id is not None:
            number = _number(text)
            self.fields[item.field_id] = number if number is not None else (text or None)

    def _person(self, name: str, ident: str | None) -> Mapping[str, str] | None:
        """A user field as the record holds one (local JQL compares its ``accountId``).

        The item's from/to hold the user's id (fromString/toString the display name, which
        JQL never compares): an account id on Cloud. Data Center sends user keys; its
        records name users by ``key`` (no ``accountId``), so a past value keeps that shape.
        """
        if not ident:
            return None
        current = self.record.fields.get(name)
        if isinstance(current, Mapping) and "accountId" not in current and "key" in current:
            return {"key": ident}
        return {"accountId": ident}

    def _multi(self, name: str, item: ChangeItem, forward: bool) -> None:
        values = list(self.get(name))
        added, removed = item.to_string, item.from_string
        if not forward:
            added, removed = removed, added
        if removed and removed in values:
            values.remove(removed)
        if added and added not in values:
            values.append(added)
        self.values[name] = tuple(values)

    def issue(self, updated: datetime) -> JiraIssue:
        return replace(self.record, **self.values, updated=updated, fields=self.fields)


def _restore_resolution_date(state: _State, entries: Sequence[ChangeEntry],
                             cutoff: datetime) -> None:
    """Undoing a reopen brings the resolution back but not its date (the item has none):
    it is the time of the latest history before the cutoff that set a resolution."""
    if state.get("resolution") is None:
        return
    date: datetime | None = state.get("resolution_date")
    if date is not None and date < cutoff:
        return
    resolved = [e.created for e in entries if e.created < cutoff and any(
        _role(item, state.roles) == "resolution" and (item.to_string or item.to_value)
        for item in e.items)]
    state.values["resolution_date"] = max(resolved, default=None)


def states_before(
    timeline: IssueTimeline,
    cutoffs: Iterable[datetime],
    categories: Mapping[str, str],
    roles: FieldRoles,
) -> dict[datetime, JiraIssue | None]:
    """The issue as it was just before each cutoff (None: not created yet, or gone)."""
    record = timeline.record
    anchor = record.updated
    entries = sorted(timeline.entries, key=lambda e: e.created)
    out: dict[datetime, JiraIssue | None] = {}
    for cutoff in cutoffs:
        gone = timeline.deleted_at is not None and timeline.deleted_at < cutoff
        if record.created >= cutoff or gone:
            out[cutoff] = None
            continue
        if not entries:
            # Most issues: nothing changed that the plan reads; the record is the state.
            out[cutoff] = record if cutoff > anchor else replace(record, updated=record.created)
            continue
        state = _State(record, categories, roles)
        updated = record.updated
        if cutoff > anchor:
            for entry in entries:
                if anchor < entry.created < cutoff:
                    state.change(entry, forward=True)
                    updated = entry.created
        else:
            for entry in reversed(entries):
                if cutoff <= entry.created <= anchor:
                    state.change(entry, forward=False)
            _restore_resolution_date(state, entries, cutoff)
            earlier = [e.created for e in entries if e.created < cutoff]
            updated = max(earlier, default=record.created)
        out[cutoff] = state.issue(updated)
    return out
