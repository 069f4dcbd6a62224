"""Render sandbox records as Jira's wire JSON: issues, the field catalogue, timestamps."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from okr_sync.sandbox.jira.data import (
    PRIORITIES,
    RESOLUTIONS,
    STATUS_CATEGORIES,
    IssueRecord,
    JiraDataset,
    issue_type_named,
    status_named,
)

__all__ = ["FieldSelection", "FieldSetup", "IssueRenderer", "format_jira_datetime"]

STORY_POINTS_SCHEMA = "com.pyxis.greenhopper.jira:jsw-story-points"
FLOAT_SCHEMA = "com.atlassian.jira.plugin.system.customfieldtypes:float"
_ID_KEY = frozenset({"id", "key", "issuekey"})


def format_jira_datetime(instant: datetime, tz: ZoneInfo) -> str:
    """``2019-09-25T08:37:05.392-0500``: milliseconds and an offset without a colon."""
    local = instant.astimezone(tz)
    return local.strftime("%Y-%m-%dT%H:%M:%S.") + f"{local.microsecond // 1000:03d}" + \
        local.strftime("%z")


def _custom_id(field_id: str) -> int:
    return int(field_id.removeprefix("customfield_"))


@dataclass(frozen=True)
class FieldSetup:
    """Which custom fields this Jira has; ids and names differ between instances."""

    story_points_id: str = "customfield_10016"
    story_points_name: str = "Story point estimate"
    story_points_schema: str = STORY_POINTS_SCHEMA
    epic_link_id: str = "customfield_10014"
    sprint_id: str = "customfield_10020"
    # A second, empty "Story Points" float field, as many Cloud sites have next to the real one.
    decoy_story_points_id: str | None = None

    @classmethod
    def data_center(cls) -> FieldSetup:
        return cls("customfield_10106", "Story Points", FLOAT_SCHEMA, "customfield_10101",
                   "customfield_10104")

    def _clauses(self, field_id: str, name: str) -> list[str]:
        return [f"cf[{_custom_id(field_id)}]", name]

    def custom_clauses(self) -> dict[str, tuple[str, str]]:
        """Lower-cased JQL clause names -> (role, display name), for :class:`JqlContext`."""
        out: dict[str, tuple[str, str]] = {}
        roles = [(self.story_points_id, self.story_points_name, "story_points"),
                 (self.epic_link_id, "Epic Link", "epic_link")]
        if self.decoy_story_points_id:
            roles.insert(0, (self.decoy_story_points_id, "Story Points", "unset_number"))
        for field_id, name, role in roles:
            for clause in (*self._clauses(field_id, name), field_id):
                out[clause.lower()] = (role, name)
        return out

    def catalog(self) -> list[dict[str, Any]]:
        """``GET /field``: FieldDetails for the system fields and the custom fields we have."""
        def system(fid: str, name: str, clauses: list[str], schema: dict[str, str] | None,
                   *, orderable: bool = True, searchable: bool = True) -> dict[str, Any]:
            out: dict[str, Any] = {
                "id": fid, "key": fid, "name": name, "custom": False, "orderable": orderable,
                "navigable": True, "searchable": searchable, "clauseNames": clauses}
            if schema is not None:
                out["schema"] = {**schema, "system": fid}
            return out

        def custom(fid: str, name: str, schema: dict[str, Any]) -> dict[str, Any]:
            return {"id": fid, "key": fid, "name": name, "custom": True, "orderable": True,
                    "navigable": True, "searchable": True, "clauseNames": self._clauses(fid, name),
                    "schema": {**schema, "customId": _custom_id(fid)}}

        fields = [
            system("issuekey", "Key", ["id", "issue", "issuekey", "key"], None,
                   orderable=False, searchable=False),
            system("summary", "Summary", ["summary"], {"type": "string"}),
            system("issuetype", "Issue Type", ["issuetype", "type"], {"type": "issuetype"}),
            system("project", "Project", ["project"], {"type": "project"}, orderable=False),
            system("status", "Status", ["status"], {"type": "status"}, orderable=False),
            system("statusCategory", "Status Category", ["statusCategory"], None,
                   orderable=False),
            system("priority", "Priority", ["priority"], {"type": "priority"}),
            system("resolution", "Resolution", ["resolution"], {"type": "resolution"}),
            system("labels", "Labels", ["labels"], {"type": "array", "items": "string"}),
            system("components", "Components", ["component"],
                   {"type": "array", "items": "component"}),
            system("fixVersions", "Fix versions", ["fixVersion"],
                   {"type": "array", "items": "version"}),
            system("assignee", "Assignee", ["assignee"], {"type": "user"}),
            system("reporter", "Reporter", ["reporter"], {"type": "user"}),
            system("parent", "Parent", ["parent"], None, orderable=False, searchable=False),
            system("created", "Created", ["created", "createdDate"], {"type": "datetime"},
                   orderable=False),
            system("updated", "Updated", ["updated", "updatedDate"], {"type": "datetime"},
                   orderable=False),
            system("resolutiondate", "Resolved", ["resolutiondate", "resolved"],
                   {"type": "datetime"}, orderable=False),
            custom(self.story_points_id, self.story_points_name,
                   {"type": "number", "custom": self.story_points_schema}),
            custom(self.epic_link_id, "Epic Link",
                   {"type": "any", "custom": "com.pyxis.greenhopper.jira:gh-epic-link"}),
            custom(self.sprint_id, "Sprint", {"type": "array", "items": "json",
                                              "custom": "com.pyxis.greenhopper.jira:gh-sprint"}),
        ]
        if self.decoy_story_points_id:
            fields.append(custom(self.decoy_story_points_id, "Story Points",
                                 {"type": "number", "custom": FLOAT_SCHEMA}))
        return fields

    def renderable(self) -> list[str]:
        """Field ids ``*all`` / ``*navigable`` return, in Jira's usual order."""
        ids = ["summary", "issuetype", "project", "status", "priority", "labels", "components",
               "fixVersions", "parent", "assignee", "reporter", "created", "updated",
               "resolutiondate", "resolution",
               self.story_points_id, self.epic_link_id]
        if self.decoy_story_points_id:
            ids.append(self.decoy_story_points_id)
        return ids


@dataclass(frozen=True)
class FieldSelection:
    """The ``fields`` parameter: ids, ``*all``, ``*navigable``, ``-excluded``."""

    everything: bool = False
    include: frozenset[str] = frozenset()
    exclude: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, values: Iterable[str], default: str) -> FieldSelection:
        tokens = [t.strip() for v in values for t in v.split(",") if t.strip()]
        if not tokens:
            tokens = [default]
        everything = any(t in ("*all", "*navigable") for t in tokens)
        include = frozenset(t for t in tokens if not t.startswith(("*", "-")))
        exclude = frozenset(t[1:] for t in tokens if t.startswith("-"))
        return cls(everything, include, exclude)

    @property
    def id_or_key_only(self) -> bool:
        return not self.everything and self.include <= _ID_KEY

    def field_ids(self, available: list[str]) -> list[str]:
        wanted = {f.lower() for f in self.include}
        dropped = {f.lower() for f in self.exclude}
        return [f for f in available
                if (self.everything or f.lower() in wanted) and f.lower() not in dropped]

    def field_names(self) -> frozenset[str]:
        return self.include


@dataclass
class IssueRenderer:
    """Turns records into issue JSON for one request (base URL, API version, user zone)."""

    dataset: JiraDataset
    base_url: str
    api_version: str
    tz: ZoneInfo
    fields: FieldSetup
    cloud: bool = True
    category_names: Mapping[str, str] = field(default_factory=dict)

    def _self(self, kind: str, ident: object) -> str:
        return f"{self.base_url}/rest/api/{self.api_version}/{kind}/{ident}"

    def names(self, ids: list[str]) -> dict[str, str]:
        by_id = {f["id"]: f["name"] for f in self.fields.catalog()}
        return {fid: by_id[fid] for fid in ids if fid in by_id}

    def issue(self, record: IssueRecord, selection: FieldSelection) -> dict[str, Any]:
        if selection.id_or_key_only and not (selection.include & {"key", "issuekey"}):
            return {"id": str(record.id)}
        out: dict[str, Any] = {
            "expand": "renderedFields,names,schema,operations,editmeta,changelog,"
                      "versionedRepresentations",
            "id": str(record.id), "self": self._self("issue", record.id), "key": record.key,
        }
        ids = selection.field_ids(self.fields.renderable())
        if ids:
            fields: dict[str, Any] = {}
            for fid in ids:
                self._put(fields, fid, record)
            out["fields"] = fields
        return out

    def _put(self, fields: dict[str, Any], fid: str, r: IssueRecord) -> None:
        if fid == "parent":
            parent = self._parent(r)
            if parent is not None:
                fields["parent"] = parent
            return
        if fid == self.fields.story_points_id:
            fields[fid] = r.story_points
        elif fid == self.fields.epic_link_id:
            fields[fid] = self._epic_link(r)
        elif fid == self.fields.decoy_story_points_id:
            fields[fid] = None
        else:
            fields[fid] = self._system(fid, r)

    def _system(self, fid: str, r: IssueRecord) -> Any:
        if fid == "summary":
            return r.summary
        if fid == "issuetype":
            return self._issuetype(r.issuetype)
        if fid == "project":
            return self._project(r.project)
        if fid == "status":
            return self._status(r.status)
        if fid == "priority":
            return self._priority(r.priority)
        if fid == "labels":
            return list(r.labels)
        if fid == "components":
            comps = self.dataset.projects[r.project].components
            return [{"self": self._self("component", comps.get(c, 0)), "id": str(comps.get(c, 0)),
                     "name": c} for c in r.components]
        if fid == "fixVersions":
            versions = self.dataset.projects[r.project].versions
            return [{"self": self._self("version", versions[v][0]), "id": str(versions[v][0]),
                     "name": v, "archived": False, "released": versions[v][1]}
                    for v in r.fix_versions if v in versions]
        if fid in ("created", "updated", "resolutiondate"):
            value: datetime | None = getattr(r, fid)
            return None if value is None else format_jira_datetime(value, self.tz)
        if fid == "resolution":
            return self._resolution(r.resolution)
        if fid in ("assignee", "reporter"):
            return self._user(getattr(r, fid))
        raise KeyError(fid)

    def _user(self, account_id: str | None) -> dict[str, Any] | None:
        if account_id is None:
            return None
        return {"self": f"{self.base_url}/rest/api/{self.api_version}/user?accountId="
                        f"{account_id}",
                "accountId": account_id, "displayName": f"User {account_id[-4:]}",
                "active": True, "accountType": "atlassian"}

    def _issuetype(self, name: str) -> dict[str, Any]:
        t = issue_type_named(name)
        return {"self": self._self("issuetype", t.id), "id": str(t.id), "description": "",
                "name": t.name, "subtask": t.subtask, "hierarchyLevel": t.hierarchy_level}

    def _project(self, key: str) -> dict[str, Any]:
        p = self.dataset.projects[key]
        return {"self": self._self("project", p.id), "id": str(p.id), "key": p.key,
                "name": p.name, "projectTypeKey": "software", "simplified": False}

    def status(self, name: str) -> dict[str, Any]:
        """A status as ``GET /status`` and issues show it."""
        return self._status(name)

    def _status(self, name: str) -> dict[str, Any]:
        s = status_named(name)
        c = STATUS_CATEGORIES[s.category]
        return {"self": self._self("status", s.id), "description": "", "name": s.name,
                "id": str(s.id),
                "statusCategory": {"self": self._self("statuscategory", c.id), "id": c.id,
                                   "key": c.key, "colorName": c.color_name,
                                   "name": self.category_names.get(c.key, c.name)}}

    def _priority(self, name: str | None) -> dict[str, Any] | None:
        match = [p for p in PRIORITIES if p.name == name]
        if not match:
            return None
        return {"self": self._self("priority", match[0].id), "name": name,
                "id": str(match[0].id)}

    def _resolution(self, name: str | None) -> dict[str, Any] | None:
        match = [x for x in RESOLUTIONS if x.name == name]
        if not match:
            return None
        return {"self": self._self("resolution", match[0].id), "id": str(match[0].id),
                "description": "", "name": name}

    def _parent_record(self, r: IssueRecord) -> IssueRecord | None:
        if r.parent_id is None:
            return None
        return self.dataset.issues.get(r.parent_id)

    def _parent(self, r: IssueRecord) -> dict[str, Any] | None:
        parent = self._parent_record(r)
        # Data Center links epic children through "Epic Link" only; `parent` is for sub-tasks.
        if parent is None or (not self.cloud and not r.is_subtask):
            return None
        return {"id": str(parent.id), "key": parent.key, "self": self._self("issue", parent.id),
                "fields": {"summary": parent.summary, "status": self._status(parent.status),
                           "priority": self._priority(parent.priority),
                           "issuetype": self._issuetype(parent.issuetype)}}

    def _epic_link(self, r: IssueRecord) -> str | None:
        parent = self._parent_record(r)
        if self.cloud or parent is None or r.is_subtask or parent.issuetype != "Epic":
            return None
        return parent.key
