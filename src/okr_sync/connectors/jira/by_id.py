"""Issues read by id, where some of the ids may be gone (no OKR logic).

A JQL ``id in (...)`` naming an issue Jira no longer has (deleted) is refused whole
with HTTP 400 ("An issue with key '10042' does not exist for field 'id'"), by Cloud
and Data Center alike, rather than leaving the gone issue out. So each batch is
searched, and on that refusal (:class:`JiraQueryError`, a typed 400) its issues are
read one by one with ``GET /rest/api/{3|2}/issue/{id}``, where a 404 means deleted
(or out of the user's sight): reported in :attr:`IssuesById.missing`.

Every call goes through the client's transport: the same retries, pacing and typed
errors as the rest of the connector.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from okr_sync.connectors.errors import MalformedResponseError, PermanentError
from okr_sync.connectors.jira.client import JiraClient
from okr_sync.connectors.jira.records import (
    STANDARD_FIELDS,
    JiraIssue,
    JiraIssueIdentityError,
)
from okr_sync.connectors.jira.transport import JiraQueryError

__all__ = ["DEFAULT_BATCH", "IssuesById", "read_issues_by_id"]

DEFAULT_BATCH = 100


@dataclass
class IssuesById:
    """The issues Jira still has, and the ids it answered 404 for."""

    issues: list[JiraIssue] = field(default_factory=list)
    #: Ids Jira no longer shows (per-issue reads only: a search leaves them out).
    missing: set[str] = field(default_factory=set)


def read_issues_by_id(
    client: JiraClient,
    ids: Sequence[str],
    fields: Sequence[str] = (),
    *,
    context: str | None = None,
    batch: int = DEFAULT_BATCH,
) -> IssuesById:
    """The issues of ``ids`` (numeric ids only) with the extra raw ``fields``."""
    result = IssuesById()
    for start in range(0, len(ids), batch):
        chunk = list(ids[start : start + batch])
        try:
            found = list(client.search(f"id in ({', '.join(chunk)})", fields, context=context))
        except JiraQueryError as error:
            if error.status != 400:
                raise
            # One id of the batch is gone: Jira refuses the whole query, so each issue
            # is read alone and a 404 names the gone one.
            found = _each(client, chunk, fields, result)
        result.issues.extend(found)
    return result


def _each(client: JiraClient, ids: list[str], fields: Sequence[str],
          result: IssuesById) -> list[JiraIssue]:
    points = client.story_points_fields()
    epic_link = client.epic_link_field()
    wanted = list(dict.fromkeys(
        [*STANDARD_FIELDS, *points, *([epic_link] if epic_link else []), *fields]))
    version = "3" if client.is_cloud else "2"

    def parse(data: Any) -> JiraIssue | None:
        if not isinstance(data, Mapping):
            raise MalformedResponseError(f"Jira at {client.site} sent a malformed issue")
        try:
            return JiraIssue.from_json(data, story_points_fields=points,
                                       epic_link_field=epic_link, extra_fields=fields)
        except JiraIssueIdentityError as error:
            # The same skip-and-count the search applies to such an issue.
            client.skipped_issues.setdefault((error.issue_id, error.issue_key), error)
            return None

    found: list[JiraIssue] = []
    for issue_id in ids:
        try:
            issue = client.transport.call("GET", f"issue/{issue_id}", version=version,
                                          params={"fields": ",".join(wanted)}, parse=parse)
        except PermanentError as error:
            if error.status != 404:
                raise
            result.missing.add(issue_id)  # deleted, or no longer visible to us
            continue
        if issue is not None:
            found.append(issue)
    return found
