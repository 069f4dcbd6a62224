"""The sandbox's changelogs on the wire, as Jira serves them.

* Cloud ``POST /rest/api/3/changelog/bulkfetch`` (``BulkChangelogRequestBean``): up to
  1000 issue ids or keys, up to 10 ``fieldIds``, ``maxResults`` (default 1000, at most
  10000) histories per page, ``nextPageToken`` to go on; histories come oldest first,
  then by issue id, grouped per issue on each page. Issues that do not exist (deleted)
  are left out, as Jira does.
* ``GET /rest/api/{2,3}/issue/{idOrKey}/changelog`` (``PageBeanChangelog``): offset pages
  of at most 100 histories, ``isLast``; 404 for a deleted issue.
* ``expand=changelog`` on search: every issue carries ``changelog`` ``{startAt,
  maxResults, total, histories}``; Cloud's enhanced search caps it at 20 histories
  (api-facts A7), Data Center's ``/rest/api/2/search`` sends them all.

Each :class:`~.model.ChangeHistory` item becomes Jira's change item: ``status``,
``resolution``, ``priority`` and ``issuetype`` with ids in ``from``/``to`` and names in
``fromString``/``toString``; a move as ``project`` plus ``Key`` (``issuekey``); labels
as space-separated strings; one ``Component`` / ``Fix Version`` item per value added or
removed; story points as the custom field (strings only); the parent as Cloud's
``IssueParentAssociation`` (fieldId ``parent``) or Data Center's ``Epic Link`` custom
field for epic children.

Creation and deletion leave no history, as in Jira: an issue's creation is its
``created``; a deleted issue's changelog goes with it (bulkfetch leaves it out, the
per-issue endpoint answers 404). Histories carry the dataset clock's time of the
mutation (:class:`~.model.SandboxClock`, which tests set and advance).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Iterable, Iterator
from typing import Any

from okr_sync.sandbox.jira.data import (
    ISSUE_TYPES,
    PRIORITIES,
    RESOLUTIONS,
    STATUSES,
    ChangeHistory,
    JiraDataset,
)
from okr_sync.sandbox.jira.render import IssueRenderer, format_jira_datetime
from okr_sync.sandbox.jira.search import ApiError, param_int, validate_body

__all__ = ["MAX_BULK_FIELDS", "MAX_BULK_ISSUES", "bulk_changelogs", "embed_changelogs",
           "issue_changelog"]

MAX_BULK_ISSUES = 1000
MAX_BULK_FIELDS = 10
MAX_BULK_RESULTS = 10000
DEFAULT_BULK_RESULTS = 1000
ISSUE_PAGE_CAP = 100
CLOUD_SEARCH_CAP = 20

_BULK_BODY: dict[str, Any] = {
    "issueIdsOrKeys": list, "fieldIds": list, "maxResults": int, "nextPageToken": str,
}
_AUTHOR = {"accountId": "5b10a2844c20165700ede21g", "displayName": "Mia Krystof",
           "active": True, "timeZone": "Australia/Sydney"}
_STATUS_IDS = {s.name: s.id for s in STATUSES}
_TYPE_IDS = {t.name: t.id for t in ISSUE_TYPES}
_PRIORITY_IDS = {p.name: p.id for p in PRIORITIES}
_RESOLUTION_IDS = {r.name: r.id for r in RESOLUTIONS}


def _number(value: object) -> str | None:
    if value is None:
        return None
    number = float(str(value))
    return str(int(number)) if number.is_integer() else repr(number)


def _named(field: str, ids: dict[str, int], before: object, after: object) -> dict[str, Any]:
    def ident(name: object) -> str | None:
        return None if name is None else str(ids.get(str(name), 0))

    return {"field": field, "fieldtype": "jira", "fieldId": field, "from": ident(before),
            "fromString": None if before is None else str(before), "to": ident(after),
            "toString": None if after is None else str(after)}


class ChangeItems:
    """Renders :class:`ChangeHistory` entries for one request (ids, names, field ids)."""

    def __init__(self, dataset: JiraDataset, renderer: IssueRenderer) -> None:
        self.dataset = dataset
        self.renderer = renderer

    def history(self, entry: ChangeHistory, field_ids: frozenset[str] | None = None
                ) -> dict[str, Any] | None:
        items = [item for item in self._items(entry)
                 if field_ids is None or item["fieldId"] in field_ids]
        if not items:
            return None
        return {"id": str(entry.id), "author": _AUTHOR,
                "created": format_jira_datetime(entry.at, self.renderer.tz), "items": items}

    def _items(self, entry: ChangeHistory) -> Iterator[dict[str, Any]]:
        for name, before, after in entry.items:
            yield from self._item(entry, name, before, after)

    def _item(self, entry: ChangeHistory, name: str, before: object, after: object
              ) -> Iterator[dict[str, Any]]:
        fields = self.renderer.fields
        if name == "key":
            yield {"field": "Key", "fieldtype": "jira", "fieldId": "issuekey", "from": None,
                   "fromString": before, "to": None, "toString": after}
        elif name == "project":
            projects = self.dataset.projects

            def pid(key: object) -> str | None:
                return None if key is None else str(projects[str(key)].id)

            yield {"field": "project", "fieldtype": "jira", "fieldId": "project",
                   "from": pid(before), "fromString": projects[str(before)].name,
                   "to": pid(after), "toString": projects[str(after)].name}
        elif name == "status":
            yield _named("status", _STATUS_IDS, before, after)
        elif name == "resolution":
            yield _named("resolution", _RESOLUTION_IDS, before, after)
        elif name == "priority":
            yield _named("priority", _PRIORITY_IDS, before, after)
        elif name == "issuetype":
            yield _named("issuetype", _TYPE_IDS, before, after)
        elif name == "summary":
            yield {"field": "summary", "fieldtype": "jira", "fieldId": "summary", "from": None,
                   "fromString": before, "to": None, "toString": after}
        elif name == "story_points":
            yield {"field": fields.story_points_name, "fieldtype": "custom",
                   "fieldId": fields.story_points_id, "from": None,
                   "fromString": _number(before), "to": None, "toString": _number(after)}
        elif name == "labels":
            yield {"field": "labels", "fieldtype": "jira", "fieldId": "labels", "from": None,
                   "fromString": " ".join(before) if before else "",  # type: ignore[arg-type]
                   "to": None, "toString": " ".join(after) if after else ""}  # type: ignore[arg-type]
        elif name in ("components", "fix_versions"):
            yield from self._multi(name, before, after)
        elif name == "parent_id":
            yield self._parent(entry, before, after)

    def _multi(self, name: str, before: object, after: object) -> Iterator[dict[str, Any]]:
        old = list(before or ())  # type: ignore[call-overload]
        new = list(after or ())  # type: ignore[call-overload]
        label, fid = ("Component", "components") if name == "components" else (
            "Fix Version", "fixVersions")

        def ident(value: str) -> str:
            for project in self.dataset.projects.values():
                if name == "components" and value in project.components:
                    return str(project.components[value])
                if name == "fix_versions" and value in project.versions:
                    return str(project.versions[value][0])
            return "0"

        for value in old:
            if value not in new:
                yield {"field": label, "fieldtype": "jira", "fieldId": fid, "from": ident(value),
                       "fromString": value, "to": None, "toString": None}
        for value in new:
            if value not in old:
                yield {"field": label, "fieldtype": "jira", "fieldId": fid, "from": None,
                       "fromString": None, "to": ident(value), "toString": value}

    def _parent(self, entry: ChangeHistory, before: object, after: object) -> dict[str, Any]:
        def split(value: object) -> tuple[str | None, str | None]:
            if not isinstance(value, tuple):
                return None, None
            return str(value[0]), None if value[1] is None else str(value[1])

        (from_id, from_key), (to_id, to_key) = split(before), split(after)
        issue = self.dataset.issues.get(entry.issue_id) or self.dataset.deleted.get(
            entry.issue_id)
        subtask = issue is not None and issue.is_subtask
        if self.renderer.cloud or subtask:
            return {"field": "IssueParentAssociation", "fieldtype": "jira", "fieldId": "parent",
                    "from": from_id, "fromString": from_key, "to": to_id, "toString": to_key}
        return {"field": "Epic Link", "fieldtype": "custom",
                "fieldId": self.renderer.fields.epic_link_id, "from": from_id,
                "fromString": from_key, "to": to_id, "toString": to_key}


def _rendered(items: ChangeItems, entries: Iterable[ChangeHistory],
              field_ids: frozenset[str] | None = None) -> list[dict[str, Any]]:
    out = []
    for entry in entries:
        history = items.history(entry, field_ids)
        if history is not None:
            out.append(history)
    return out


def _issue_id(dataset: JiraDataset, ref: str) -> int | None:
    issue_id = int(ref) if ref.isdigit() else dataset.resolve_key(ref)
    return issue_id if issue_id is not None and issue_id in dataset.issues else None


def issue_changelog(dataset: JiraDataset, renderer: IssueRenderer, ref: str,
                    start_at: str | None, max_results: str | None, self_url: str,
                    ) -> tuple[int, Any]:
    """``GET issue/{ref}/changelog``: one offset page (404 for a missing issue)."""
    start = param_int(start_at, "startAt", 0)
    size = min(param_int(max_results, "maxResults", ISSUE_PAGE_CAP), ISSUE_PAGE_CAP)
    if start < 0 or size < 1:
        raise ApiError(400, "startAt must not be negative and maxResults must be positive.")
    with dataset.lock:
        issue_id = _issue_id(dataset, ref)
        if issue_id is None:
            return 404, {"errorMessages": [
                "Issue does not exist or you do not have permission to see it."], "errors": {}}
        histories = _rendered(ChangeItems(dataset, renderer), dataset.changelog.get(issue_id, []))
    page = histories[start : start + size]
    last = start + len(page) >= len(histories)
    out: dict[str, Any] = {"self": f"{self_url}?startAt={start}&maxResults={size}",
                           "maxResults": size, "startAt": start, "total": len(histories),
                           "isLast": last, "values": page}
    if not last:
        out["nextPage"] = f"{self_url}?startAt={start + size}&maxResults={size}"
    return 200, out


def _request_hash(ids: list[str], fields: list[str] | None) -> str:
    raw = json.dumps([ids, fields], separators=(",", ":")).encode()
    return hashlib.sha256(raw).hexdigest()[:16]


def _token(digest: str, offset: int) -> str:
    raw = json.dumps({"h": digest, "o": offset}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _offset(token: str, digest: str) -> int:
    try:
        decoded = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        offset, owner = int(decoded["o"]), str(decoded["h"])
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise ApiError(400, "The provided next page token is invalid.") from None
    if owner != digest or offset < 0:
        raise ApiError(400, "The next page token does not belong to this request.")
    return offset


def bulk_changelogs(dataset: JiraDataset, renderer: IssueRenderer, body: Any) -> dict[str, Any]:
    """``POST changelog/bulkfetch``: one page of every listed issue's histories."""
    payload = validate_body(body, _BULK_BODY, "BulkChangelogRequestBean")
    refs = [str(r) for r in payload.get("issueIdsOrKeys") or []]
    if not 1 <= len(refs) <= MAX_BULK_ISSUES:
        raise ApiError(400, f"issueIdsOrKeys must list between 1 and {MAX_BULK_ISSUES} issues.")
    raw_fields = payload.get("fieldIds")
    fields = None if raw_fields is None else [str(f) for f in raw_fields]
    if fields is not None and (len(fields) > MAX_BULK_FIELDS or len(set(fields)) != len(fields)):
        raise ApiError(400, f"fieldIds must list at most {MAX_BULK_FIELDS} unique field ids.")
    size = payload.get("maxResults")
    size = DEFAULT_BULK_RESULTS if size is None else size
    if not 1 <= size <= MAX_BULK_RESULTS:
        raise ApiError(400, f"maxResults must be between 1 and {MAX_BULK_RESULTS}.")
    digest = _request_hash(refs, fields)
    token = payload.get("nextPageToken")
    start = 0 if not token else _offset(token, digest)
    items = ChangeItems(dataset, renderer)
    wanted = None if not fields else frozenset(fields)
    with dataset.lock:
        ids = sorted({i for i in (_issue_id(dataset, r) for r in refs) if i is not None})
        entries = sorted((e for i in ids for e in dataset.changelog.get(i, [])),
                         key=lambda e: (e.at, e.issue_id, e.id))
        rendered = [(e.issue_id, h) for e in entries
                    if (h := items.history(e, wanted)) is not None]
    page = rendered[start : start + size]
    grouped: dict[int, list[dict[str, Any]]] = {}
    for issue_id, history in page:
        grouped.setdefault(issue_id, []).append(history)
    out: dict[str, Any] = {"issueChangeLogs": [
        {"issueId": str(issue_id), "changeHistories": histories}
        for issue_id, histories in grouped.items()]}
    if start + size < len(rendered):
        out["nextPageToken"] = _token(digest, start + size)
    return out


def embed_changelogs(out: dict[str, Any], dataset: JiraDataset, renderer: IssueRenderer,
                     *, cap: int | None) -> None:
    """``expand=changelog`` on a search page: each issue's histories (``cap`` at most)."""
    items = ChangeItems(dataset, renderer)
    with dataset.lock:
        for issue in out.get("issues", []):
            histories = _rendered(items, dataset.changelog.get(int(issue["id"]), []))
            shown = histories if cap is None else histories[-cap:]
            issue["changelog"] = {"startAt": 0, "maxResults": len(shown),
                                  "total": len(histories), "histories": shown}
