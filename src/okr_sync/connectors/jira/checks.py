"""Read-only verbs of :class:`~okr_sync.connectors.jira.client.JiraClient` for
``okr-sync doctor``: who the credentials are, which projects and fields exist, whether
JQL is accepted. Nothing here searches for issues or writes anything.

A mixin so the client stays one class (and one file under the size limit); the
methods reach the client's transport through the :class:`_Site` protocol.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol
from urllib.parse import quote

from okr_sync.connectors.errors import MalformedResponseError
from okr_sync.connectors.jira.jql import split_order_by
from okr_sync.connectors.jira.paging import field_catalog
from okr_sync.connectors.jira.transport import JiraNotFoundError, JiraQueryError, JiraTransport

#: What Cloud's search endpoints answer to a query without a condition; ``jql/parse``
#: accepts such a query, so it is told apart here.
UNBOUNDED = (
    "Unbounded JQL queries are not allowed here. Please add a search restriction to your query."
)


class _Site(Protocol):
    _transport: JiraTransport

    @property
    def site(self) -> str: ...

    @property
    def is_cloud(self) -> bool: ...

    @property
    def _api(self) -> str: ...

    def approximate_count(self, jql: str, *, context: str | None = None) -> int: ...


class JiraChecks:
    """``myself``, project and field existence, JQL validation (read-only)."""

    def myself(self: _Site) -> Mapping[str, Any]:
        """``GET myself``: the user the credentials sign in as."""
        data: Any = self._transport.call("GET", "myself", version=self._api)
        if not isinstance(data, Mapping):
            raise MalformedResponseError(f"Jira at {self.site} sent a malformed JSON object")
        return data

    def missing_projects(self: _Site, keys: Iterable[str]) -> list[str]:
        """Those of ``keys`` with no project this user can see (``GET project/{key}``,
        one request each: Data Center has no search by keys, and plans name few)."""
        missing = []
        for key in keys:
            try:
                self._transport.call("GET", f"project/{quote(key, safe='')}", version=self._api)
            except JiraNotFoundError:
                missing.append(key)
        return missing

    def field_ids(self: _Site) -> frozenset[str]:
        """The ids of every field of the site (``GET field``)."""
        catalog = self._transport.call(
            "GET", "field", version=self._api, parse=lambda data: field_catalog(data, self.site)
        )
        return frozenset(str(entry["id"]) for entry in catalog)

    def jql_errors(self: _Site, queries: Sequence[str]) -> dict[str, tuple[str, ...]]:
        """Jira's reasons to refuse each query (empty when it accepts it), without a search.

        Cloud: one ``POST jql/parse?validation=strict`` for all of them, plus the
        boundedness the search endpoints demand. Data Center has no parser: each query
        gets an empty ``search`` page (``maxResults=0``), which only counts.
        """
        if not queries:
            return {}
        if not self.is_cloud:
            found: dict[str, tuple[str, ...]] = {}
            for jql in queries:
                try:
                    self.approximate_count(jql)
                    found[jql] = ()
                except JiraQueryError as error:
                    found[jql] = error.messages or ("refused (no reason given)",)
            return found
        parsed = self._transport.call(
            "POST", "jql/parse", version="3", params={"validation": "strict"},
            body={"queries": list(queries)},
            parse=lambda data: _parsed(data, self.site, len(queries)),
        )  # fmt: skip
        result = {}
        for jql, errors in zip(queries, parsed, strict=True):
            if not errors and not split_order_by(jql)[0].strip():
                errors = (UNBOUNDED,)
            result[jql] = errors
        return result


def _parsed(data: Any, site: str, count: int) -> list[tuple[str, ...]]:
    """The errors of each parsed query, in the order asked (one answer per query)."""
    answers = data.get("queries") if isinstance(data, Mapping) else None
    if not isinstance(answers, list) or len(answers) != count \
            or not all(isinstance(a, Mapping) for a in answers):
        raise MalformedResponseError(f"Jira at {site} sent a malformed jql/parse answer")
    out = []
    for answer in answers:
        errors = answer.get("errors") or []
        if not isinstance(errors, list):
            raise MalformedResponseError(f"Jira at {site} sent a malformed jql/parse answer")
        out.append(tuple(str(e) for e in errors))
    return out
