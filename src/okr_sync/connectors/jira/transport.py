"""One HTTP exchange with Jira: send, classify the outcome, retry (one layer).

The `jira` package's :class:`~jira.resilientsession.ResilientSession` does
the sending (auth, headers, timeout) with its own retries switched off; it
raises ``JIRAError`` carrying ``status_code`` and ``response``, which is
mapped here onto typed connector errors by status and headers only.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit

import requests
from jira.exceptions import JIRAError

from okr_sync.connectors.errors import (
    AuthError,
    ConnectorError,
    MalformedResponseError,
    PermanentError,
    RateLimitedError,
    TransientError,
)
from okr_sync.connectors.http import Retrier, RetryPolicy, parse_retry_after

T = TypeVar("T")


def _as_is(data: Any) -> Any:
    return data


# Server-supplied messages are echoed into errors; an HTML error page or a
# runaway message must not flood logs.
_MAX_MESSAGE_CHARS = 500
_MAX_MESSAGES = 5

# Network failures worth another try; any other RequestException (bad URL,
# bad TLS setup) is a configuration problem.
_TRANSIENT_NETWORK_ERRORS: tuple[type[Exception], ...] = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)


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


class JiraAuthError(AuthError):
    """Jira rejected the credentials (401) or refused access (403)."""


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


def classify_status(
    status: int,
    headers: Mapping[str, str],
    messages: tuple[str, ...],
    *,
    site: str,
    operation: str,
    query: QueryContext | None,
    policy: RetryPolicy,
    now: datetime,
) -> ConnectorError:
    """The typed error for a non-2xx Jira answer (decided by status and headers only)."""
    detail = f": {'; '.join(messages)}" if messages else ""
    if status in (401, 403):
        reason = headers.get("X-Authentication-Denied-Reason")
        extra = f" ({reason[:_MAX_MESSAGE_CHARS]})" if reason else ""
        what = (
            "rejected the credentials"
            if status == 401
            else "refused access: the credentials were rejected or lack permission"
        )
        return JiraAuthError(
            f"Jira at {site} {what} (HTTP {status}, {operation}){extra}; check the configured "
            "email and API token (Cloud) or personal access token (Data Center)",
            status=status,
        )
    if status == 410:
        return JiraApiRemovedError(
            f"Jira at {site} says {operation} was removed (HTTP 410){detail}; "
            "the client must migrate to the current API",
            status=status,
        )
    if status == 429:
        return RateLimitedError(
            f"Jira at {site} rate-limited {operation} (HTTP 429)",
            status=status,
            retry_after=retry_after_seconds(headers, now),
        )
    if policy.is_retryable_status(status):
        return TransientError(
            f"Jira at {site} failed {operation} (HTTP {status}){detail}",
            status=status,
            retry_after=retry_after_seconds(headers, now),
        )
    if status == 400 and query is not None:
        reason = detail or " (no reason given)"
        if query.page_token:
            return JiraPageTokenError(
                f"Jira at {site} rejected the nextPageToken while paging {query.owner()}"
                f"{reason}; page tokens expire after 7 days, re-run the search; "
                f"JQL: {query.jql}",
                jql=query.jql,
                messages=messages,
                context=query.context,
                status=status,
            )
        return JiraQueryError(
            f"Jira at {site} rejected {query.owner()}{reason}; JQL: {query.jql}",
            jql=query.jql,
            messages=messages,
            context=query.context,
            status=status,
        )
    if status == 404:
        return PermanentError(
            f"Jira at {site} has no {operation} (HTTP 404){detail}; check the base URL",
            status=status,
        )
    return PermanentError(
        f"Jira at {site} refused {operation} (HTTP {status}){detail}", status=status
    )


class JiraTransport:
    """Sends JSON requests over the `jira` client's session under one :class:`Retrier`."""

    def __init__(
        self,
        session: requests.Session,
        base_url: str,
        retrier: Retrier,
        clock: Callable[[], datetime],
    ) -> None:
        self._session = session
        self._base_url = base_url.rstrip("/")
        self._site = site_label(base_url)
        self._retrier = retrier
        self._clock = clock
        self.request_count = 0

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
        try:
            response = self._session.request(
                method,
                url,
                params=dict(params) if params is not None else None,
                data=json.dumps(body) if body is not None else None,
            )
        except JIRAError as error:
            # The JIRAError (its text holds response headers and body) is
            # dropped on purpose: only status, headers and Jira's messages go on.
            raise self._from_jira_error(error, operation, query) from None
        except requests.exceptions.SSLError:
            # TLS setup (untrusted certificate, intercepting proxy), not weather;
            # SSLError is a ConnectionError, so it is caught first.
            raise PermanentError(
                f"Jira at {self._site}: {operation} could not be sent (SSLError); check the "
                "site's certificate and any proxy"
            ) from None
        except _TRANSIENT_NETWORK_ERRORS as error:
            raise TransientError(
                f"Jira at {self._site}: {operation} failed ({type(error).__name__}: {error})"
            ) from None
        except requests.RequestException as error:
            raise PermanentError(
                f"Jira at {self._site}: {operation} could not be sent ({type(error).__name__})"
            ) from None
        try:
            return response.json()
        except ValueError:
            raise MalformedResponseError(
                f"Jira at {self._site} answered {operation} with a body that is not JSON "
                f"(HTTP {response.status_code}, {len(response.content)} bytes)",
                status=response.status_code,
            ) from None

    def _from_jira_error(
        self, error: JIRAError, operation: str, query: QueryContext | None
    ) -> ConnectorError:
        response: requests.Response | None = error.response
        status = error.status_code
        if status is None or response is None:
            return TransientError(f"Jira at {self._site}: {operation} got no response")
        return classify_status(
            int(status),
            response.headers,
            jira_messages(response),
            site=self._site,
            operation=operation,
            query=query,
            policy=self._retrier.policy,
            now=self._clock(),
        )
