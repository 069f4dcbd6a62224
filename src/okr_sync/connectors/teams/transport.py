"""One HTTP exchange with Teams: send, and resolve a failure by the Teams error tables.

Exceptions from ``requests`` are never chained or quoted: their text can hold
the workflow URL (its ``sig``) or a request's headers. A refused answer or a
raised exception becomes a typed error by its :class:`~okr_sync.connectors.http.Problem`
(the tables' rows), never by any text.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import Any

import requests

from okr_sync.connectors.http import (
    DEFAULT_ERROR_TABLE,
    UNLISTED_FAILS,
    Action,
    ErrorTable,
    FailureType,
    Problem,
    Resolution,
    parse_retry_after,
    redact,
)
from okr_sync.connectors.teams.errors import (
    TeamsAuthError,
    TeamsError,
    TeamsNotFoundError,
    TeamsPayloadError,
    TeamsPermanentError,
    TeamsRateLimitedError,
    TeamsTransientError,
)

#: A Workflows webhook (Power Automate): the default rows; statuses without a row fail.
TEAMS_WORKFLOW_ERROR_TABLE = DEFAULT_ERROR_TABLE.with_unlisted(UNLISTED_FAILS)

#: The Bot Connector: Microsoft asks bots to retry 429, 412, 502 and 504 with
#: backoff; 503 joins them. Any other status (500 included) is permanent.
TEAMS_BOT_ERROR_TABLE = TEAMS_WORKFLOW_ERROR_TABLE.with_statuses({
    412: Resolution(Action.RETRY, FailureType.TRANSIENT, Problem.PRECONDITION),
    408: UNLISTED_FAILS,
    425: UNLISTED_FAILS,
    500: UNLISTED_FAILS,
})  # fmt: skip

#: Problem -> the typed error of a refused answer: retried rows not listed here
#: are plainly transient, failing rows not listed plainly permanent.
_TRANSIENT_ERRORS: Mapping[Problem, type[TeamsTransientError]] = {
    Problem.RATE_LIMITED: TeamsRateLimitedError,
}
_PERMANENT_ERRORS: Mapping[Problem, type[TeamsPermanentError]] = {
    Problem.AUTH: TeamsAuthError,
    Problem.FORBIDDEN: TeamsAuthError,
    Problem.NOT_FOUND: TeamsNotFoundError,
    Problem.INVALID_REQUEST: TeamsPayloadError,
    Problem.PAYLOAD_TOO_LARGE: TeamsPayloadError,
}

#: Problem -> the ``code`` of a request that raised (what operators see in reasons).
_EXCEPTION_CODES: Mapping[Problem, str] = {
    Problem.TIMEOUT: "timeout",
    Problem.CONNECT_TIMEOUT: "timeout",
    Problem.CONNECTION: "connection_error",
    Problem.INCOMPLETE_RESPONSE: "incomplete_response",
    Problem.TLS: "tls_error",
}


class _SecretUrlFilter(logging.Filter):
    """Redacts workflow URL parts from urllib3's DEBUG lines (it logs each request's path)."""

    def __init__(self) -> None:
        super().__init__()
        self._secrets: set[str] = set()
        self._lock = threading.Lock()

    def add(self, *secrets: str) -> None:
        with self._lock:
            self._secrets.update(secret for secret in secrets if secret)

    def filter(self, record: logging.LogRecord) -> bool:
        with self._lock:
            secrets = list(self._secrets)
        if secrets and isinstance(record.args, tuple):
            record.args = tuple(
                redact(arg, secrets) if isinstance(arg, str) else arg for arg in record.args
            )
        if secrets and isinstance(record.msg, str):
            record.msg = redact(record.msg, secrets)
        return True


SECRET_URLS = _SecretUrlFilter()
for _name in ("urllib3.connectionpool", "urllib3.util.retry"):
    logging.getLogger(_name).addFilter(SECRET_URLS)


def _error_body(response: requests.Response) -> tuple[str | None, str]:
    """``(code, message)`` from ``{"error": {"code", "message"}}`` (Bot Connector, Logic Apps)."""
    try:
        data = response.json()
    except ValueError:
        return None, ""
    error = data.get("error") if isinstance(data, dict) else None
    if not isinstance(error, dict):
        return None, ""
    code = error.get("code")
    return (code if isinstance(code, str) and code else None), str(error.get("message") or "")


def status_error(
    response: requests.Response, *, operation: str, target: str, table: ErrorTable,
    secrets: list[str],
) -> TeamsError:  # fmt: skip
    """The typed error of a non-2xx answer, by ``table``'s row for its status."""
    status = response.status_code
    code, detail = _error_body(response)
    code = code or f"http_{status}"
    detail = redact(detail, secrets)[:300]
    message = f"Teams {operation} to {target} failed: HTTP {status} {code}"
    message += f" ({detail})" if detail else ""
    row = table.for_status(status)
    if row.retries:
        transient = _TRANSIENT_ERRORS.get(row.problem, TeamsTransientError)
        return transient(
            message, code=code, operation=operation, target=target, status=status,
            retry_after=parse_retry_after(response.headers.get("Retry-After")),
        )  # fmt: skip
    permanent = _PERMANENT_ERRORS.get(row.problem, TeamsPermanentError)
    return permanent(message, code=code, operation=operation, target=target, status=status)


def request_failed(code: str, kind: str, operation: str, target: str) -> TeamsPermanentError:
    """A request that could not be sent as set up; ``kind`` is the exception's type name."""
    return TeamsPermanentError(
        f"Teams {operation} to {target} failed: {code} ({kind})",
        code=code, operation=operation, target=target,
    )  # fmt: skip


def exception_error(
    error: BaseException, *, operation: str, target: str, table: ErrorTable
) -> TeamsError:
    """The typed error of a request that raised, by ``table``'s row for the exception."""
    row = table.for_exception(error)
    kind = type(error).__name__
    code = _EXCEPTION_CODES.get(row.problem, "request_error")
    if not row.retries:
        # TLS setup (untrusted certificate, intercepting proxy) or a request that
        # cannot be built (invalid URL or header...): the type name only.
        return request_failed(code, kind, operation, target)
    message = f"Teams {operation} to {target} failed: {code}"
    if row.problem is Problem.INCOMPLETE_RESPONSE:
        # The reply broke off mid-body: the request arrived and may have worked.
        message += f" ({kind})"
    return TeamsTransientError(message, code=code, operation=operation, target=target)


def send(
    session: requests.Session, method: str, url: str, *, body: Mapping[str, Any],
    headers: Mapping[str, str], timeout: float, operation: str, target: str, table: ErrorTable,
) -> requests.Response:  # fmt: skip
    """The answer to one request (any status); a raised exception as a typed error."""
    try:
        return session.request(method, url, json=body, headers=dict(headers), timeout=timeout)
    except requests.RequestException as error:
        # ``from None``: requests' own messages hold the URL, which may be the
        # secret, and sometimes header values.
        raise exception_error(error, operation=operation, target=target, table=table) from None
