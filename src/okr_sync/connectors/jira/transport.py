"""One HTTP exchange with Jira: send, classify the outcome, retry (one layer).

A plain :class:`requests.Session` does the sending (see
:func:`~okr_sync.connectors.jira.client.jira_session`); a refused answer or a
raised exception is resolved by :data:`JIRA_ERROR_TABLE` (the shared table
with Jira's rows) and turned into a typed error by the row's
:class:`~okr_sync.connectors.http.Problem`, never by any text.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit

import requests
import urllib3

from okr_sync.connectors.errors import (
    AuthError,
    ConnectorError,
    MalformedResponseError,
    PermanentError,
    RateLimitedError,
    TransientError,
)
from okr_sync.connectors.http import (
    DEFAULT_ERROR_TABLE,
    UNLISTED_FAILS,
    Action,
    ErrorTable,
    Problem,
    RequestDeadlineError,
    Retrier,
    parse_retry_after,
)

T = TypeVar("T")


def _as_is(data: Any) -> Any:
    return data


# Server-supplied messages are echoed into errors; an HTML error page or a
# runaway message must not flood logs.
_MAX_MESSAGE_CHARS = 500
_MAX_MESSAGES = 5
# Bytes asked of one socket read while streaming a body: ``read1`` returns what
# one read brings, so the deadline is checked between reads however slow they are.
_READ_CHUNK = 64 * 1024



class JiraQueryError(PermanentError):
    """Jira refused a JQL query (HTTP 400): bad syntax, unknown field or value."""

    def __init__(
        self,
        message: str,
        *,
        jql: str,
        messages: tuple[str, ...],
        context: str | None,
        status: int | None = 400,
    ) -> None:
        super().__init__(message, status=status)
        self.jql = jql
        self.messages = messages
        self.context = context


class JiraPageTokenError(JiraQueryError):
    """Jira refused a ``nextPageToken`` (they expire after 7 days): re-run the search."""


class JiraPagingError(PermanentError):
    """Paging did not end within the hard page limit, or the server repeated a page."""


class JiraMalformedCountError(MalformedResponseError, PermanentError):
    """A count that cannot be one (negative, not an integer, absurdly large).

    Malformed, and permanent too: Jira answers the same query the same way, so
    it is not retried, and the owner of the query fails like a refused query
    (its KR keeps its last value) instead of being scored on a made-up number.
    """

    def __init__(self, message: str, *, jql: str, context: str | None) -> None:
        super().__init__(message)
        self.jql = jql
        self.context = context


class JiraAuthError(AuthError):
    """Jira rejected the credentials (401) or refused access (403)."""


class JiraNotFoundError(PermanentError):
    """Jira answered 404: no such resource (a project key, a path) for these credentials."""


class JiraApiRemovedError(PermanentError):
    """Jira answered 410 Gone: the endpoint was removed and the client must migrate."""


def site_label(base_url: str) -> str:
    """``scheme://host[:port][/path]`` of a site, for messages (never credentials)."""
    parts = urlsplit(base_url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path.rstrip('/')}"


@dataclass(frozen=True)
class QueryContext:
    """What a request was for, so errors can name the query and its owner."""

    jql: str
    context: str | None = None
    page_token: bool = False

    def owner(self) -> str:
        return f"the query of {self.context}" if self.context else "a query"


def jira_messages(response: requests.Response | None) -> tuple[str, ...]:
    """Jira's ``errorMessages`` and ``errors`` from an error body (best effort)."""
    if response is None:
        return ()
    try:
        body = response.json()
    except ValueError:
        return ()
    return jira_body_messages(body)


def jira_body_messages(body: Any) -> tuple[str, ...]:
    """Jira's ``errorMessages`` and ``errors`` from a decoded error body (best effort)."""
    if not isinstance(body, Mapping):
        return ()
    found: list[str] = []
    listed = body.get("errorMessages")
    if isinstance(listed, list):
        found.extend(str(item) for item in listed)
    by_field = body.get("errors")
    if isinstance(by_field, Mapping):
        found.extend(f"{name}: {text}" for name, text in by_field.items())
    for key in ("message", "errorMessage"):
        if isinstance(body.get(key), str):
            found.append(body[key])
    return tuple(text[:_MAX_MESSAGE_CHARS] for text in found[:_MAX_MESSAGES])


def retry_after_seconds(headers: Mapping[str, str], now: datetime) -> float | None:
    """Seconds to wait from ``Retry-After`` (seconds or HTTP date), else ``X-RateLimit-Reset``."""
    retry_after = parse_retry_after(headers.get("Retry-After"), now=now)
    if retry_after is not None:
        return retry_after
    reset = headers.get("X-RateLimit-Reset")
    if not reset:
        return None
    try:
        # Jira sends an ISO-8601 instant such as 2026-11-15T10:00Z here.
        when = datetime.fromisoformat(reset.strip())
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


#: Where Jira differs from the default table: only the listed statuses retry, so
#: an unlisted one (501, 418...) fails at once as a plain refusal, and a 400 is
#: told apart from it (on a search it is a refused query: bad JQL, expired token).
JIRA_ERROR_TABLE = DEFAULT_ERROR_TABLE.with_unlisted(UNLISTED_FAILS)


@dataclass(frozen=True)
class _Answer:
    """A refused answer, as the error builders below see it."""

    status: int
    headers: Mapping[str, str]
    detail: str
    messages: tuple[str, ...]
    site: str
    operation: str
    query: QueryContext | None
    now: datetime


def _auth_error(answer: _Answer) -> ConnectorError:
    reason = answer.headers.get("X-Authentication-Denied-Reason")
    extra = f" ({reason[:_MAX_MESSAGE_CHARS]})" if reason else ""
    what = (
        "rejected the credentials"
        if answer.status == 401
        else "refused access: the credentials were rejected or lack permission"
    )
    return JiraAuthError(
        f"Jira at {answer.site} {what} (HTTP {answer.status}, {answer.operation}){extra}; check "
        "the configured email and API token (Cloud) or personal access token (Data Center)",
        status=answer.status,
    )


def _gone(answer: _Answer) -> ConnectorError:
    return JiraApiRemovedError(
        f"Jira at {answer.site} says {answer.operation} was removed (HTTP 410){answer.detail}; "
        "the client must migrate to the current API",
        status=answer.status,
    )


def _rate_limited(answer: _Answer) -> ConnectorError:
    return RateLimitedError(
        f"Jira at {answer.site} rate-limited {answer.operation} (HTTP 429)",
        status=answer.status,
        retry_after=retry_after_seconds(answer.headers, answer.now),
    )


def _bad_query(answer: _Answer) -> ConnectorError:
    query = answer.query
    if query is None:
        return _refused(answer)
    reason = answer.detail or " (no reason given)"
    kind: type[JiraQueryError] = JiraQueryError
    message = f"Jira at {answer.site} rejected {query.owner()}{reason}; JQL: {query.jql}"
    if query.page_token:
        kind = JiraPageTokenError
        message = (
            f"Jira at {answer.site} rejected the nextPageToken while paging {query.owner()}"
            f"{reason}; page tokens expire after 7 days, re-run the search; JQL: {query.jql}"
        )
    return kind(
        message, jql=query.jql, messages=answer.messages, context=query.context,
        status=answer.status,
    )  # fmt: skip


def _not_found(answer: _Answer) -> ConnectorError:
    return JiraNotFoundError(
        f"Jira at {answer.site} has no {answer.operation} (HTTP 404){answer.detail}; "
        "check the base URL",
        status=answer.status,
    )


def _refused(answer: _Answer) -> ConnectorError:
    return PermanentError(
        f"Jira at {answer.site} refused {answer.operation} (HTTP {answer.status}){answer.detail}",
        status=answer.status,
    )


def _transient(answer: _Answer) -> ConnectorError:
    return TransientError(
        f"Jira at {answer.site} failed {answer.operation} (HTTP {answer.status}){answer.detail}",
        status=answer.status,
        retry_after=retry_after_seconds(answer.headers, answer.now),
    )


#: Problem -> the typed error of a refused answer. Retried rows not listed here
#: are transient; failing rows not listed are a plain refusal.
_STATUS_ERRORS: Mapping[Problem, Callable[[_Answer], ConnectorError]] = {
    Problem.AUTH: _auth_error,
    Problem.FORBIDDEN: _auth_error,
    Problem.GONE: _gone,
    Problem.RATE_LIMITED: _rate_limited,
    Problem.INVALID_REQUEST: _bad_query,
    Problem.NOT_FOUND: _not_found,
}


def classify_status(
    status: int,
    headers: Mapping[str, str],
    messages: tuple[str, ...],
    *,
    site: str,
    operation: str,
    query: QueryContext | None,
    now: datetime,
    table: ErrorTable = JIRA_ERROR_TABLE,
) -> ConnectorError:
    """The typed error for a non-2xx Jira answer, by the table's row for ``status``."""
    row = table.for_status(status)
    detail = f": {'; '.join(messages)}" if messages else ""
    answer = _Answer(status, headers, detail, messages, site, operation, query, now)
    fallback = _transient if row.retries else _refused
    return _STATUS_ERRORS.get(row.problem, fallback)(answer)


def _exception_error(error: BaseException, site: str, operation: str) -> ConnectorError:
    """The typed error for a request that raised, by the table's row for the exception."""
    row = JIRA_ERROR_TABLE.for_exception(error)
    kind = type(error).__name__
    if row.retries:
        return TransientError(f"Jira at {site}: {operation} failed ({kind}: {error})")
    if row.problem is Problem.TLS:
        # TLS setup (untrusted certificate, intercepting proxy), not weather: the
        # type name only, as the exception's text may quote the request.
        return PermanentError(
            f"Jira at {site}: {operation} could not be sent ({kind}); check the "
            "site's certificate and any proxy"
        )
    return PermanentError(f"Jira at {site}: {operation} could not be sent ({kind})")


class JiraTransport:
    """Sends JSON requests over one :class:`requests.Session` under one :class:`Retrier`."""

    def __init__(
        self,
        session: requests.Session,
        base_url: str,
        retrier: Retrier,
        clock: Callable[[], datetime],
        *,
        timeout: float | None = None,
    ) -> None:
        self._session = session
        self._base_url = base_url.rstrip("/")
        self._site = site_label(base_url)
        self._retrier = retrier
        self._clock = clock
        self._timeout = timeout if timeout is not None else retrier.policy.timeout
        self._deadline = retrier.policy.deadline
        self._monotonic = time.monotonic
        self.request_count = 0
        #: The ``Date`` header of the last answer (Jira's clock), when it had one.
        self.server_date: datetime | None = None

    @property
    def site(self) -> str:
        return self._site

    def call(
        self,
        method: str,
        path: str,
        *,
        version: str,
        params: Mapping[str, Any] | None = None,
        body: Mapping[str, Any] | None = None,
        query: QueryContext | None = None,
        parse: Callable[[Any], T] = _as_is,
    ) -> T:
        """``parse`` of the decoded JSON of ``/rest/api/{version}/{path}``.

        ``parse`` runs inside the retried operation: a body that is not JSON
        at all, or a page of the wrong shape (:class:`MalformedResponseError`),
        is retried; one issue that cannot be read
        (:class:`~okr_sync.connectors.jira.records.JiraIssueShapeError`, a
        permanent error) fails at once, as Jira would serve it the same again.
        """

        def attempt() -> T:
            data = self._once(method, path, version=version, params=params, body=body, query=query)
            return parse(data)

        return self._retrier.call(attempt)

    def _once(
        self,
        method: str,
        path: str,
        *,
        version: str,
        params: Mapping[str, Any] | None,
        body: Mapping[str, Any] | None,
        query: QueryContext | None,
    ) -> Any:
        url = f"{self._base_url}/rest/api/{version}/{path}"
        operation = f"{method} /rest/api/{version}/{path}"
        self.request_count += 1
        started = self._monotonic()
        try:
            # Streamed, so the body is read under the overall deadline: requests'
            # timeout bounds each socket read, not the whole answer.
            response = self._session.request(
                method,
                url,
                params=dict(params) if params is not None else None,
                data=json.dumps(body) if body is not None else None,
                timeout=self._timeout,
                stream=True,
            )
        except requests.RequestException as error:
            # ``from None``: the exception's context may hold the request.
            raise _exception_error(error, self._site, operation) from None
        try:
            content = self._read_body(response, started, operation)
        except BaseException:
            # A body left half-read: the connection cannot be reused.
            response.close()
            raise
        # Read to the end by hand (not through ``content``), so requests does not
        # know it is consumed: hand the connection back to the pool for keep-alive.
        response.raw.release_conn()
        self.server_date = _http_date(response.headers.get("Date")) or self.server_date
        if JIRA_ERROR_TABLE.for_status(response.status_code).action is not Action.IGNORE:
            # ``from None`` like every connector error: nothing chained can carry the request.
            raise classify_status(
                response.status_code,
                response.headers,
                jira_body_messages(_json_or_none(content)),
                site=self._site,
                operation=operation,
                query=query,
                now=self._clock(),
            ) from None
        try:
            return json.loads(content)
        except ValueError:
            raise MalformedResponseError(
                f"Jira at {self._site} answered {operation} with a body that is not JSON "
                f"(HTTP {response.status_code}, {len(content)} bytes)",
                status=response.status_code,
            ) from None

    def _read_body(self, response: requests.Response, started: float, operation: str) -> bytes:
        chunks: list[bytes] = []
        try:
            while True:
                self._check_deadline(started, operation)
                chunk = response.raw.read1(_READ_CHUNK, decode_content=True)
                if not chunk:
                    return b"".join(chunks)
                chunks.append(chunk)
        except (urllib3.exceptions.HTTPError, requests.RequestException, OSError) as error:
            raise _exception_error(error, self._site, operation) from None

    def _check_deadline(self, started: float, operation: str) -> None:
        if self._deadline is not None and self._monotonic() - started > self._deadline:
            raise RequestDeadlineError(
                f"Jira at {self._site}: {operation} did not complete within the "
                f"{self._deadline:g} s request deadline (the answer arrived too slowly)"
            )


def _http_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _json_or_none(content: bytes) -> Any:
    try:
        return json.loads(content)
    except ValueError:
        return None
