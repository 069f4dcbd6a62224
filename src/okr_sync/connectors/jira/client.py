"""Jira connector: search, id-only membership, counts, reconcile.

Built on a plain :class:`requests.Session` (:func:`jira_session`: auth and the
headers Jira expects), so :class:`~okr_sync.connectors.http.Retrier` is the only
retry layer and every request is one we chose to send (the README says why the
`jira` package is not used). Paging is done here, on the wire protocol of the site:

- Cloud: ``POST /rest/api/3/search/jql``, paging on ``nextPageToken`` until
  it is absent or ``isLast`` (never on page length).
- Data Center: ``GET /rest/api/2/search`` with ``startAt``, reading back the
  server's ``maxResults`` (it may cap it) and ``total``.

No OKR logic: plain data in (JQL, field ids), plain records out.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple, TypeVar
from zoneinfo import ZoneInfo

from okr_sync.connectors.errors import MalformedResponseError
from okr_sync.connectors.http import Retrier
from okr_sync.connectors.jira.checks import JiraChecks
from okr_sync.connectors.jira.jql import DEFAULT_ORDER_BY, projects_jql, split_order_by
from okr_sync.connectors.jira.paging import (
    OffsetPage,
    TokenPage,
    epic_link_field_id,
    field_catalog,
    story_points_candidates,
    unique,
)
from okr_sync.connectors.jira.records import (
    STANDARD_FIELDS,
    JiraIssue,
    JiraIssueIdentityError,
    JiraIssueShapeError,
    issue_id_text,
    parse_jira_datetime,
)
from okr_sync.connectors.jira.session import jira_session
from okr_sync.connectors.jira.site import (
    clamp_to_server_time,
    describe_zone,
    is_cloud_site,
    load_timezone,
)
from okr_sync.connectors.jira.source import AUTO, JiraSource
from okr_sync.connectors.jira.transport import (
    JiraApiRemovedError,
    JiraAuthError,
    JiraMalformedCountError,
    JiraPageTokenError,
    JiraPagingError,
    JiraQueryError,
    JiraTransport,
    QueryContext,
)

__all__ = [
    "UNKNOWN_TIMEZONE_FALLBACK",
    "JiraApiRemovedError",
    "JiraAuthError",
    "JiraClient",
    "JiraIssue",
    "JiraIssueShapeError",
    "JiraMalformedCountError",
    "JiraPageTokenError",
    "JiraPagingError",
    "JiraQueryError",
    "JiraSource",
    "ReconcileResult",
    "jira_session",
    "parse_jira_datetime",
]

DEFAULT_PAGE_SIZE = 100
CLOUD_ID_PAGE_SIZE = 5000
# Data Center's default cap (jira.search.views.default.max); the server's
# answer is read back anyway.
DC_ID_PAGE_SIZE = 1000
#: No Jira site holds more issues than this: a larger count is not a count.
MAX_COUNT = 10**9
#: Pages in a row with no issue but a next token: a server paging nothing forever.
MAX_EMPTY_PAGES = 3
#: How far past the server's clock an ``updated`` may be before it is not believed.
UPDATED_SKEW = timedelta(minutes=5)

#: Used when /myself names no usable timezone: a literal read in the
#: westernmost zone is never later than the instant under any other zone.
UNKNOWN_TIMEZONE_FALLBACK = ZoneInfo("Etc/GMT+12")

_SERVER_INFO_VERSION = "2"

_log = logging.getLogger(__name__)

T = TypeVar("T")


class ReconcileResult(NamedTuple):
    """Known ids split by whether the scope still holds them (by immutable id)."""

    present_ids: frozenset[str]
    missing_ids: frozenset[str]
    new_ids: frozenset[str]


@dataclass(frozen=True)
class _FieldIds:
    story_points: tuple[str, ...]
    epic_link: str | None


def _utc_now() -> datetime:
    return datetime.now(UTC)


class JiraClient(JiraChecks):
    """A connection to one Jira site. Not thread-safe; one per sync pass is typical."""

    def __init__(
        self,
        source: JiraSource,
        *,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self._source = source
        # No I/O here: serverInfo is fetched on first need, through the retry layer.
        self._session = jira_session(source)
        self.retrier = Retrier(policy=source.retry, sleep=sleep, rng=rng or random.Random())
        self._transport = JiraTransport(
            self._session, source.base_url, self.retrier, clock,
            timeout=source.effective_timeout,
        )  # fmt: skip
        self._server_info: Mapping[str, Any] | None = None
        self._timezone: ZoneInfo | None = None
        self._field_ids: _FieldIds | None = None
        self._clock = clock
        self._facts_since = clock()  # the facts above are read from this pass on
        self._warned_future = False
        #: Issues skipped because their id or key is not what Jira promises, by id/key.
        self.skipped_issues: dict[tuple[str | None, str | None], JiraIssueIdentityError] = {}

    def __repr__(self) -> str:
        return f"JiraClient(site={self.site!r}, auth={self._source.auth_kind!r})"

    __str__ = __repr__

    # -- lifecycle -------------------------------------------------------
    def close(self) -> None:
        self._session.close()

    def begin_pass(self, *, facts_max_age: timedelta) -> None:
        """Another pass on this client (``serve``): counts start again; the session and
        the site's facts (serverInfo, time zone, fields) are kept until ``facts_max_age``."""
        self._transport.request_count = 0
        self.skipped_issues, now = {}, self._clock()
        if now - self._facts_since >= facts_max_age:
            self._server_info = self._timezone = self._field_ids = None
            self._facts_since = now

    def __enter__(self) -> JiraClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- site facts ------------------------------------------------------
    @property
    def site(self) -> str:
        return self._transport.site

    @property
    def transport(self) -> JiraTransport:
        """The retried, classified transport (for readers of other endpoints: changelogs)."""
        return self._transport

    @property
    def request_count(self) -> int:
        """HTTP requests sent by this client, retries included."""
        return self._transport.request_count

    def server_info(self) -> Mapping[str, Any]:
        """``GET /rest/api/2/serverInfo`` (once per client)."""
        if self._server_info is None:
            info = self._transport.call(
                "GET", "serverInfo", version=_SERVER_INFO_VERSION, parse=self._mapping
            )
            self._server_info = info
        return self._server_info

    def _mapping(self, data: Any) -> Mapping[str, Any]:
        if not isinstance(data, Mapping):
            raise MalformedResponseError(f"Jira at {self.site} sent a malformed JSON object")
        return data

    @property
    def is_cloud(self) -> bool:
        """Cloud by ``deploymentType`` when sent (the spec makes it optional), else by the
        host or by the fields only Cloud's serverInfo has."""
        return is_cloud_site(self._source.base_url, self.server_info())

    @property
    def _api(self) -> str:
        return "3" if self.is_cloud else "2"

    def user_timezone(self) -> ZoneInfo:
        """The calling user's profile timezone (``GET myself``), in which JQL dates are read."""
        if self._timezone is None:
            me = self._transport.call("GET", "myself", version=self._api, parse=self._mapping)
            zone = load_timezone(me.get("timeZone"))
            if zone is None:
                # Once per client: the zone is cached, so later passes do not repeat it.
                _log.warning(
                    "Jira at %s names no usable time zone for the user (timeZone %s); "
                    "JQL dates are read in %s",
                    self.site, describe_zone(me.get("timeZone")), UNKNOWN_TIMEZONE_FALLBACK.key,
                )
                zone = UNKNOWN_TIMEZONE_FALLBACK
            self._timezone = zone
        return self._timezone

    # -- fields ----------------------------------------------------------
    def _discover_fields(self) -> _FieldIds:
        if self._field_ids is None:
            catalog = self._transport.call(
                "GET", "field", version=self._api, parse=lambda d: field_catalog(d, self.site)
            )
            self._field_ids = _FieldIds(
                story_points=story_points_candidates(catalog),
                epic_link=epic_link_field_id(catalog),
            )
        return self._field_ids

    def story_points_fields(self) -> tuple[str, ...]:
        """Candidate story-point field ids, preferred first (the configured one if explicit)."""
        configured = self._source.story_points_field
        if configured != AUTO:
            return (configured,)
        return self._discover_fields().story_points

    def discover_story_points_field(self) -> str | None:
        """The story-point field id: configured, else found via ``GET field``, else ``None``."""
        candidates = self.story_points_fields()
        return candidates[0] if candidates else None

    def epic_link_field(self) -> str | None:
        """Data Center's "Epic Link" field id (Cloud's ``parent`` covers epics)."""
        configured = self._source.epic_link_field
        if configured != AUTO:
            return configured
        if self.is_cloud:
            return None
        return self._discover_fields().epic_link

    # -- search ----------------------------------------------------------
    def search(
        self,
        jql: str,
        fields: Sequence[str] = (),
        *,
        page_size: int = DEFAULT_PAGE_SIZE,
        context: str | None = None,
    ) -> Iterator[JiraIssue]:
        """Every issue matching ``jql`` once, as records; ``fields`` are extra raw fields.

        ``context`` names the caller's owner of the query (e.g. a KR id) in errors.
        """
        if page_size < 1:
            raise ValueError("page_size must be at least 1")
        points = self.story_points_fields()
        epic_link = self.epic_link_field()
        wanted = unique([*STANDARD_FIELDS, *points, *([epic_link] if epic_link else []), *fields])

        def record(raw: Mapping[str, Any]) -> JiraIssue | None:
            try:
                return JiraIssue.from_json(
                    raw, story_points_fields=points, epic_link_field=epic_link,
                    extra_fields=fields,
                )  # fmt: skip
            except JiraIssueIdentityError as error:
                self._skip(error)
                return None

        seen: set[str] = set()
        for page in self._pages(jql, wanted, page_size, context, record):
            for issue in page:
                if issue is not None and issue.id not in seen:
                    seen.add(issue.id)
                    yield issue

    def search_ids(self, jql: str, *, context: str | None = None) -> list[str]:
        """Ids of the issues matching ``jql`` (id-only pages, up to 5000 on Cloud)."""
        size = CLOUD_ID_PAGE_SIZE if self.is_cloud else DC_ID_PAGE_SIZE
        ids: dict[str, None] = {}
        for page in self._pages(jql, ["id"], size, context, self._issue_id):
            ids.update(dict.fromkeys(i for i in page if i is not None))
        return list(ids)

    def approximate_count(self, jql: str, *, context: str | None = None) -> int:
        """Cloud ``search/approximate-count``; Data Center: the ``total`` of an empty page."""
        query = QueryContext(jql, context)
        name = "count" if self.is_cloud else "total"
        # The body's shape is checked inside the retried call (a broken answer
        # may be weather), the number outside it: the same query gets the same count.
        if self.is_cloud:
            value = self._transport.call(
                "POST",
                "search/approximate-count",
                version="3",
                body={"jql": jql},
                query=query,
                parse=lambda data: self._mapping(data).get(name),
            )
        else:
            params = {"jql": jql, "startAt": 0, "maxResults": 0, "fields": "id"}
            value = self._transport.call(
                "GET",
                "search",
                version="2",
                params=params,
                query=query,
                parse=lambda data: self._mapping(data).get(name),
            )
        return self._count(value, name, query)

    def _count(self, value: Any, name: str, query: QueryContext) -> int:
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_COUNT:
            return value
        shown = repr(value)[:40] if value is not None else "nothing"
        raise JiraMalformedCountError(
            f"Jira at {self.site} answered the count of {query.owner()} with {name} {shown}, "
            f"not a whole number from 0 to {MAX_COUNT:,}; JQL: {query.jql}",
            jql=query.jql, context=query.context,
        )  # fmt: skip

    def _issue_id(self, raw: Mapping[str, Any]) -> str | None:
        ident = raw.get("id")
        if not isinstance(ident, str | int) or isinstance(ident, bool) or ident == "":
            raise JiraIssueShapeError.of(raw, f"no id (from {self.site})")
        text = issue_id_text(ident)
        if text is None:
            # Never put into ``id in (...)`` JQL: skipped and counted instead.
            self._skip(JiraIssueIdentityError.of(raw, "its id is not a number (ASCII digits)"))
        return text

    def _skip(self, error: JiraIssueIdentityError) -> None:
        ref = (error.issue_id, error.issue_key)
        if ref not in self.skipped_issues:
            self.skipped_issues[ref] = error
            _log.warning("%s; it is skipped (from %s)", error, self.site)

    # -- the incremental cursor ------------------------------------------
    def server_now(self) -> datetime:
        """Jira's clock: the ``Date`` of its last answer, else the time of the request."""
        return self._transport.server_date or self._clock()

    def high_water_mark(self, updates: Iterable[datetime]) -> datetime | None:
        """The newest of ``updates``, never later than the server's now plus a small skew.

        One issue ``updated`` in 2099 would move the cursor there and no newer
        change would ever be asked for again; such a value is clamped (with one
        warning per client) so the next pass still looks at the present.
        """
        newest = max(updates, default=None)
        if newest is None:
            return None
        clamped = clamp_to_server_time(newest, self.server_now(), UPDATED_SKEW)
        if clamped != newest and not self._warned_future:
            self._warned_future = True
            _log.warning(
                "Jira at %s sent an issue updated at %s, after the server's time; "
                "the sync cursor stays at %s", self.site, newest.isoformat(), clamped.isoformat(),
            )
        return clamped

    def _pages(
        self,
        jql: str,
        fields: Sequence[str],
        page_size: int,
        context: str | None,
        item: Callable[[Mapping[str, Any]], T],
    ) -> Iterator[list[T]]:
        if self.is_cloud:
            return self._token_pages(jql, fields, page_size, context, item)
        return self._offset_pages(jql, fields, page_size, context, item)

    def _token_pages(
        self,
        jql: str,
        fields: Sequence[str],
        page_size: int,
        context: str | None,
        item: Callable[[Mapping[str, Any]], T],
    ) -> Iterator[list[T]]:
        token: str | None = None
        used: set[str] = set()
        empty = 0
        for _ in range(self._source.max_pages):
            body: dict[str, Any] = {"jql": jql, "fields": list(fields), "maxResults": page_size}
            if token is not None:
                body["nextPageToken"] = token
            query = QueryContext(jql, context, page_token=token is not None)
            page = self._transport.call(
                "POST",
                "search/jql",
                version="3",
                body=body,
                query=query,
                parse=lambda data: TokenPage.parse(data, item, self.site),
            )
            yield page.items
            if page.is_last or page.next_token is None:
                return
            empty = 0 if page.items else empty + 1
            if empty >= MAX_EMPTY_PAGES:
                raise JiraPagingError(
                    f"Jira at {self.site} sent {empty} empty pages in a row, each with a new "
                    f"page token, while paging {query.owner()}; JQL: {jql}"
                )
            if page.next_token in used:
                raise JiraPagingError(
                    f"Jira at {self.site} repeated a page token while paging "
                    f"{query.owner()}; JQL: {jql}"
                )
            used.add(page.next_token)
            token = page.next_token
        raise JiraPagingError(
            f"Jira at {self.site}: paging {QueryContext(jql, context).owner()} did not end "
            f"within {self._source.max_pages} pages; JQL: {jql}"
        )

    def _offset_pages(
        self,
        jql: str,
        fields: Sequence[str],
        page_size: int,
        context: str | None,
        item: Callable[[Mapping[str, Any]], T],
    ) -> Iterator[list[T]]:
        start, size = 0, page_size
        query = QueryContext(jql, context)
        for _ in range(self._source.max_pages):
            params = {"jql": jql, "startAt": start, "maxResults": size, "fields": ",".join(fields)}
            page = self._transport.call(
                "GET",
                "search",
                version="2",
                params=params,
                query=query,
                parse=lambda data: OffsetPage.parse(data, item, self.site),
            )
            yield page.items
            # Advance by what arrived: the server may cap maxResults below the ask.
            start += len(page.items)
            if not page.items or start >= page.total:
                return
            if page.max_results is not None and 0 < page.max_results < size:
                size = page.max_results
        raise JiraPagingError(
            f"Jira at {self.site}: paging {query.owner()} did not end within "
            f"{self._source.max_pages} pages; JQL: {jql}"
        )

    # -- sync helpers ----------------------------------------------------
    def reconcile(
        self, scope: str | Sequence[str], known_ids: Iterable[str], *, context: str | None = None
    ) -> ReconcileResult:
        """Which known issue ids the scope still holds (deleted or moved-out ones go missing).

        The query is ordered (``created ASC`` unless the scope has its own
        ORDER BY) so Data Center's offset paging is stable. Issues moving
        while the pages are read can still shift an id past a page boundary,
        so ids missing from the first run are confirmed by a second one:
        only ids missing from both are reported, as deleting a live issue
        from the mirror is worse than noticing a deletion one pass late.
        """
        condition, order_by = split_order_by(
            scope if isinstance(scope, str) else projects_jql(scope)
        )
        if not condition:
            raise ValueError(
                "the reconcile scope has no condition (Jira refuses unbounded queries)"
            )
        jql = f"{condition} {order_by or DEFAULT_ORDER_BY}"
        known = frozenset(known_ids)
        current = frozenset(self.search_ids(jql, context=context))
        if known - current:
            current |= frozenset(self.search_ids(jql, context=context))
        return ReconcileResult(known & current, known - current, current - known)
