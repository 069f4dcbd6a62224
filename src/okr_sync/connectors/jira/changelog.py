"""Issue changelogs from Jira, as plain records (no OKR logic).

* Cloud: ``POST /rest/api/3/changelog/bulkfetch`` for up to 1000 issues at a time,
  filtered by up to 10 field ids, paged by ``nextPageToken``. Where that endpoint is
  not there or not allowed (404, 403, 405, 410), each issue's
  ``GET /rest/api/3/issue/{id}/changelog`` (offset pages, ``isLast``) instead.
* Data Center: ``expand=changelog`` on ``/rest/api/2/search`` by ``id in (...)``. A
  changelog Jira cut short (``total`` above the histories sent) is an error naming the
  issue, never a silently shorter history. Jira refuses (400) an ``id in (...)`` naming
  an issue it no longer has ("An issue with key '10042' does not exist for field
  'id'"): that batch is read issue by issue instead (``GET /rest/api/2/issue/{id}
  ?expand=changelog``), a 404 meaning deleted (:attr:`Changelogs.missing`).

Everything goes through the client's transport: the same retries, pacing and typed
errors as every other Jira call. Issues Jira no longer has (deleted) simply have no
histories here; per-issue reads report them in :attr:`Changelogs.missing`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from okr_sync.connectors.errors import MalformedResponseError, PermanentError
from okr_sync.connectors.jira.client import JiraClient
from okr_sync.connectors.jira.paging import OffsetPage
from okr_sync.connectors.jira.records import issue_id_text, parse_jira_datetime
from okr_sync.connectors.jira.transport import JiraQueryError, QueryContext

__all__ = ["BULK_MAX_FIELDS", "BULK_MAX_ISSUES", "ChangeEntry", "ChangeItem",
           "ChangelogTruncatedError", "Changelogs", "project_keys", "read_changelogs",
           "status_categories"]

BULK_MAX_ISSUES = 1000
BULK_MAX_FIELDS = 10
BULK_PAGE_SIZE = 1000
ISSUE_PAGE_SIZE = 100
#: Issues per Data Center search with ``expand=changelog`` (the histories make pages heavy).
DC_BATCH = 50
#: Statuses meaning "this site has no bulk changelog for us": fall back to per issue.
_NO_BULK = frozenset({403, 404, 405, 410})


class ChangelogTruncatedError(PermanentError):
    """Jira sent fewer histories than the issue has: a backfill from it would be wrong."""


@dataclass(frozen=True)
class ChangeItem:
    """One changed field in a history (Jira's ``ChangeDetails``)."""

    field: str
    field_id: str | None
    from_value: str | None
    from_string: str | None
    to_value: str | None
    to_string: str | None


@dataclass(frozen=True)
class ChangeEntry:
    """One history: when, and what changed."""

    id: str
    created: datetime
    items: tuple[ChangeItem, ...]


@dataclass
class Changelogs:
    """Histories by issue id (oldest first), and how they were read."""

    histories: dict[str, list[ChangeEntry]] = field(default_factory=dict)
    #: Ids Jira answered 404 for (per-issue reads only: bulk leaves them out silently).
    missing: set[str] = field(default_factory=set)
    #: "bulk", "per-issue" or "search", as used.
    methods: set[str] = field(default_factory=set)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return str(value)
    raise MalformedResponseError(f"Jira sent a change value of type {type(value).__name__}")


def _created(value: Any) -> datetime:
    if isinstance(value, int | float) and not isinstance(value, bool):
        # The bulk endpoint's example shows epoch numbers: milliseconds when that large.
        seconds = value / 1000 if value > 100_000_000_000 else value
        return datetime.fromtimestamp(seconds, UTC)
    if isinstance(value, str):
        return parse_jira_datetime(value)
    raise MalformedResponseError("Jira sent a changelog entry without a creation time")


def parse_history(raw: Any) -> ChangeEntry:
    """A ``Changelog`` object as a record (a malformed one is a transient error)."""
    if not isinstance(raw, Mapping) or not isinstance(raw.get("items"), list):
        raise MalformedResponseError("Jira sent a changelog entry without items")
    items = []
    for item in raw["items"]:
        if not isinstance(item, Mapping) or not isinstance(item.get("field"), str):
            raise MalformedResponseError("Jira sent a change item without a field")
        items.append(ChangeItem(
            item["field"], _text(item.get("fieldId")), _text(item.get("from")),
            _text(item.get("fromString")), _text(item.get("to")), _text(item.get("toString"))))
    return ChangeEntry(str(raw.get("id", "")), _created(raw.get("created")), tuple(items))


def _chunks(ids: Sequence[str], size: int) -> Iterable[list[str]]:
    for start in range(0, len(ids), size):
        yield list(ids[start : start + size])


def _keep(entry: ChangeEntry, field_ids: frozenset[str] | None) -> ChangeEntry | None:
    if field_ids is None:
        return entry
    # An item without a fieldId (Jira sends some, e.g. a move's "Key") cannot be told
    # apart by id: it is kept, and the reader decides by its name.
    items = tuple(i for i in entry.items if i.field_id is None or i.field_id in field_ids)
    return ChangeEntry(entry.id, entry.created, items) if items else None


def read_changelogs(
    client: JiraClient,
    issue_ids: Iterable[str],
    field_ids: Sequence[str] | None = None,
    *,
    progress: Callable[[int], None] | None = None,
) -> Changelogs:
    """The histories of ``issue_ids``, only their items of ``field_ids`` when given.

    ``progress`` is called with how many issues are done so far.
    """
    ids = sorted({i for i in issue_ids if issue_id_text(i) is not None}, key=int)
    wanted = None if field_ids is None else frozenset(field_ids)
    result = Changelogs()
    if not client.is_cloud:
        _dc_search(client, ids, wanted, result, progress)
        return result
    # More fields than the bulk filter takes: read every field, keep the wanted ones.
    bulk_fields = sorted(wanted) if wanted is not None and len(wanted) <= BULK_MAX_FIELDS \
        else None
    done = 0
    for chunk in _chunks(ids, BULK_MAX_ISSUES):
        try:
            _bulk(client, chunk, bulk_fields, wanted, result)
        except PermanentError as error:
            if error.status not in _NO_BULK:
                raise
            _per_issue(client, ids[done:], wanted, result, progress, done)
            return result
        done += len(chunk)
        if progress is not None:
            progress(done)
    return result


def _add(result: Changelogs, issue_id: str, entry: ChangeEntry,
         wanted: frozenset[str] | None) -> None:
    kept = _keep(entry, wanted)
    if kept is not None:
        result.histories.setdefault(issue_id, []).append(kept)


def _bulk(client: JiraClient, ids: list[str], bulk_fields: list[str] | None,
          wanted: frozenset[str] | None, result: Changelogs) -> None:
    token: str | None = None
    used: set[str] = set()
    for _ in range(100_000):
        body: dict[str, Any] = {"issueIdsOrKeys": ids, "maxResults": BULK_PAGE_SIZE}
        if bulk_fields is not None:
            body["fieldIds"] = bulk_fields
        if token is not None:
            body["nextPageToken"] = token
        page = client.transport.call("POST", "changelog/bulkfetch", version="3", body=body,
                                     parse=_bulk_page)
        result.methods.add("bulk")
        for issue_id, entries in page[0]:
            for entry in entries:
                _add(result, issue_id, entry, wanted)
        token = page[1]
        if token is None:
            return
        if token in used:
            raise MalformedResponseError(
                f"Jira at {client.site} repeated a changelog page token")
        used.add(token)
    raise MalformedResponseError(f"Jira at {client.site}: changelog paging did not end")


def _bulk_page(data: Any) -> tuple[list[tuple[str, list[ChangeEntry]]], str | None]:
    if not isinstance(data, Mapping) or not isinstance(data.get("issueChangeLogs", []), list):
        raise MalformedResponseError("Jira sent a malformed bulk changelog page")
    out = []
    for log in data.get("issueChangeLogs", []):
        issue_id = issue_id_text(log.get("issueId")) if isinstance(log, Mapping) else None
        histories = log.get("changeHistories") or [] if isinstance(log, Mapping) else None
        if issue_id is None or not isinstance(histories, list):
            raise MalformedResponseError("Jira sent a bulk changelog without an issue id")
        out.append((issue_id, [parse_history(h) for h in histories]))
    token = data.get("nextPageToken")
    if token is not None and not isinstance(token, str):
        raise MalformedResponseError("Jira sent a non-string nextPageToken")
    return out, token or None


def _per_issue(client: JiraClient, ids: list[str], wanted: frozenset[str] | None,
               result: Changelogs, progress: Callable[[int], None] | None,
               done: int) -> None:
    for count, issue_id in enumerate(ids, start=done + 1):
        start = 0
        for _ in range(100_000):
            try:
                page = client.transport.call(
                    "GET", f"issue/{issue_id}/changelog", version="3",
                    params={"startAt": start, "maxResults": ISSUE_PAGE_SIZE},
                    parse=_issue_page)
            except PermanentError as error:
                if error.status != 404:
                    raise
                result.missing.add(issue_id)  # deleted, or no longer visible to us
                break
            result.methods.add("per-issue")
            for entry in page[0]:
                _add(result, issue_id, entry, wanted)
            start += len(page[0])
            if page[1] or not page[0]:
                break
        if progress is not None:
            progress(count)


def _issue_page(data: Any) -> tuple[list[ChangeEntry], bool]:
    if not isinstance(data, Mapping) or not isinstance(data.get("values"), list):
        raise MalformedResponseError("Jira sent a malformed changelog page")
    entries = [parse_history(h) for h in data["values"]]
    total = data.get("total")
    start = data.get("startAt", 0)
    last = data.get("isLast")
    if not isinstance(last, bool):
        last = isinstance(total, int) and isinstance(start, int) and start + len(entries) >= total
    return entries, last


def _dc_search(client: JiraClient, ids: list[str], wanted: frozenset[str] | None,
               result: Changelogs, progress: Callable[[int], None] | None) -> None:
    done = 0
    for chunk in _chunks(ids, DC_BATCH):
        try:
            found = _dc_batch(client, chunk)
        except JiraQueryError as error:
            if error.status != 400:
                raise
            # An id of the batch is gone (deleted since the mirror saw it): Jira refuses
            # the whole query, so each issue is read alone and a 404 marks the gone one.
            found = _dc_each(client, chunk, result)
        else:
            result.methods.add("search")
        for issue_id, entries in found:
            for entry in entries:
                _add(result, issue_id, entry, wanted)
        done += len(chunk)
        if progress is not None:
            progress(done)


def _dc_batch(client: JiraClient, chunk: list[str]) -> list[tuple[str, list[ChangeEntry]]]:
    jql = f"id in ({', '.join(chunk)}) ORDER BY id ASC"
    query = QueryContext(jql, "changelog")
    found: list[tuple[str, list[ChangeEntry]]] = []
    start, size = 0, DC_BATCH
    for _ in range(100_000):
        params = {"jql": jql, "startAt": start, "maxResults": size, "fields": "id",
                  "expand": "changelog"}
        page = client.transport.call(
            "GET", "search", version="2", params=params, query=query,
            parse=lambda data: OffsetPage.parse(data, _dc_issue, client.site))
        found.extend(page.items)
        start += len(page.items)
        if not page.items or start >= page.total:
            break
        if page.max_results is not None and 0 < page.max_results < size:
            size = page.max_results
    return found


def _dc_each(client: JiraClient, chunk: list[str], result: Changelogs
             ) -> list[tuple[str, list[ChangeEntry]]]:
    found: list[tuple[str, list[ChangeEntry]]] = []
    for issue_id in chunk:
        try:
            found.append(client.transport.call(
                "GET", f"issue/{issue_id}", version="2",
                params={"fields": "id", "expand": "changelog"}, parse=_dc_one))
        except PermanentError as error:
            if error.status != 404:
                raise
            result.missing.add(issue_id)  # deleted, or no longer visible to us
        else:
            result.methods.add("per-issue")
    return found


def _dc_one(data: Any) -> tuple[str, list[ChangeEntry]]:
    if not isinstance(data, Mapping):
        raise MalformedResponseError("Jira sent a malformed issue")
    return _dc_issue(data)


def _dc_issue(raw: Mapping[str, Any]) -> tuple[str, list[ChangeEntry]]:
    issue_id = issue_id_text(raw.get("id"))
    if issue_id is None:
        raise MalformedResponseError("Jira sent an issue without a usable id")
    log = raw.get("changelog")
    if not isinstance(log, Mapping) or not isinstance(log.get("histories"), list):
        raise MalformedResponseError(
            f"Jira sent issue {issue_id} without the changelog asked for (expand=changelog)")
    histories = log["histories"]
    total = log.get("total")
    if isinstance(total, int) and total > len(histories):
        raise ChangelogTruncatedError(
            f"Jira sent {len(histories)} of the {total} changelog entries of issue "
            f"{raw.get('key') or issue_id}; a history read from it would be wrong")
    return issue_id, [parse_history(h) for h in histories]


def status_categories(client: JiraClient) -> dict[str, str]:
    """``GET status``: status id and lower-cased name -> status category key."""

    def parse(data: Any) -> dict[str, str]:
        if not isinstance(data, list):
            raise MalformedResponseError(f"Jira at {client.site} sent a malformed status list")
        out: dict[str, str] = {}
        for status in data:
            if not isinstance(status, Mapping):
                continue
            category = status.get("statusCategory")
            key = category.get("key") if isinstance(category, Mapping) else None
            if not isinstance(key, str):
                continue
            if status.get("id") is not None:
                out[str(status["id"])] = key
            if isinstance(status.get("name"), str):
                out[f"name:{status['name'].casefold()}"] = key
        return out

    return client.transport.call("GET", "status", version="3" if client.is_cloud else "2",
                                 parse=parse)


def project_keys(client: JiraClient) -> dict[str, str]:
    """``GET project``: project id -> key (a move's ``project`` item names ids)."""

    def parse(data: Any) -> dict[str, str]:
        if not isinstance(data, list):
            raise MalformedResponseError(f"Jira at {client.site} sent a malformed project list")
        return {str(p["id"]): str(p["key"]) for p in data
                if isinstance(p, Mapping) and p.get("id") is not None
                and isinstance(p.get("key"), str)}

    return client.transport.call("GET", "project", version="3" if client.is_cloud else "2",
                                 parse=parse)
