"""One HTTP policy for every connector, kept as data.

Two tables decide what a failed exchange means, in the manner of Airbyte's
``default_error_mapping``: :data:`EXCEPTION_RESOLUTIONS` (exception type ->
:class:`Resolution`, most specific first) and :data:`STATUS_RESOLUTIONS`
(HTTP status -> :class:`Resolution`). A connector that knows more about its API
(Slack's ``error`` codes, Teams' 412) extends them with
:meth:`ErrorTable.with_statuses` / :meth:`ErrorTable.with_codes` instead of
writing its own ``if`` ladder; it then turns a resolution into its own typed
error by the resolution's :class:`Problem`, never by any text.

The retry policy itself is data too: :class:`RetryPolicy` rows
(:data:`REQUEST_POLICY` for one call, retried in-process; :data:`DELIVERY_POLICY`
for an outbox row, retried on later passes). Waits grow exponentially with
jitter, are capped, and are **never shorter than the server's ``Retry-After``**.
A server-requested wait longer than :attr:`RetryPolicy.max_delay` is not slept
in-process: the error is re-raised at once (with its ``retry_after``) so the
caller can reschedule the work instead of holding a worker, a lock or a pass for
minutes. Sleeping is injectable so tests run instantly while still asserting the
waits that would have happened.
"""

from __future__ import annotations

import http.client
import math
import random
import socket
import ssl
import time
import urllib.error
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import StrEnum
from typing import TypeVar

import requests
import urllib3
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
)

from okr_sync.connectors.errors import TransientError

T = TypeVar("T")

DEFAULT_TIMEOUT_SECONDS = 30.0
_SHARED_RNG = random.Random()


class Action(StrEnum):
    """What to do about one answer or exception."""

    RETRY = "retry"  # transient: try again after a backoff
    RATE_LIMITED = "rate_limited"  # transient: try again, never before Retry-After
    FAIL = "fail"  # retrying the same request cannot help
    IGNORE = "ignore"  # not a failure (a 2xx/3xx status)


class FailureType(StrEnum):
    """Whose problem a failure is, which decides who is told and how."""

    TRANSIENT = "transient"  # weather: a later attempt may work
    CONFIG = "config"  # the operator's settings (credentials, URL, TLS) need fixing
    PERMANENT = "permanent"  # this request cannot work (bad input, missing target)


class Problem(StrEnum):
    """The kind of failure; connectors map it onto their typed errors."""

    NONE = "none"
    AUTH = "auth"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    GONE = "gone"
    INVALID_REQUEST = "invalid_request"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    PRECONDITION = "precondition"
    RATE_LIMITED = "rate_limited"
    SERVER_ERROR = "server_error"
    TIMEOUT = "timeout"
    CONNECT_TIMEOUT = "connect_timeout"
    CONNECTION = "connection_error"
    INCOMPLETE_RESPONSE = "incomplete_response"
    TLS = "tls_error"
    REQUEST_SETUP = "request_error"
    UNLISTED = "unlisted"  # a 4xx/5xx the connector's table has no row for


@dataclass(frozen=True)
class Resolution:
    """One row of a table: the action, whose problem it is, and what kind.

    ``ambiguous`` marks failures after which the request may have reached the
    server and taken effect (a read timeout, a reply cut off mid-body): a
    non-idempotent call such as posting a message must check before repeating.
    """

    action: Action
    failure: FailureType | None
    problem: Problem
    ambiguous: bool = False

    @property
    def retries(self) -> bool:
        return self.action in (Action.RETRY, Action.RATE_LIMITED)


def _retry(problem: Problem, *, ambiguous: bool = False) -> Resolution:
    return Resolution(Action.RETRY, FailureType.TRANSIENT, problem, ambiguous)


def _fail(failure: FailureType, problem: Problem) -> Resolution:
    return Resolution(Action.FAIL, failure, problem)


SUCCESS = Resolution(Action.IGNORE, None, Problem.NONE)
RATE_LIMITED = Resolution(Action.RATE_LIMITED, FailureType.TRANSIENT, Problem.RATE_LIMITED)
SERVER_ERROR = _retry(Problem.SERVER_ERROR)
CLIENT_ERROR = _fail(FailureType.PERMANENT, Problem.INVALID_REQUEST)
#: For tables whose API documents exactly which statuses to retry: any other fails.
UNLISTED_FAILS = _fail(FailureType.PERMANENT, Problem.UNLISTED)

#: HTTP status -> resolution. Statuses not listed: other 5xx retry, other 4xx fail.
STATUS_RESOLUTIONS: Mapping[int, Resolution] = {
    400: _fail(FailureType.PERMANENT, Problem.INVALID_REQUEST),
    401: _fail(FailureType.CONFIG, Problem.AUTH),
    403: _fail(FailureType.CONFIG, Problem.FORBIDDEN),
    404: _fail(FailureType.PERMANENT, Problem.NOT_FOUND),
    408: _retry(Problem.TIMEOUT),
    410: _fail(FailureType.PERMANENT, Problem.GONE),
    413: _fail(FailureType.PERMANENT, Problem.PAYLOAD_TOO_LARGE),
    425: _retry(Problem.SERVER_ERROR),
    429: RATE_LIMITED,
    500: SERVER_ERROR,
    502: SERVER_ERROR,
    503: SERVER_ERROR,
    504: SERVER_ERROR,
}

#: Exception type -> resolution, the first ``isinstance`` match wins (most specific
#: first). Covers ``requests`` and the standard library (``urllib``, as used by
#: ``slack_sdk``). TLS failures are setup, not weather; a connect timeout means
#: nothing was sent, any later failure may have been after the server acted.
EXCEPTION_RESOLUTIONS: tuple[tuple[type[BaseException], Resolution], ...] = (
    (requests.exceptions.SSLError, _fail(FailureType.CONFIG, Problem.TLS)),
    (ssl.SSLError, _fail(FailureType.CONFIG, Problem.TLS)),
    (requests.exceptions.ConnectTimeout, _retry(Problem.CONNECT_TIMEOUT)),
    (requests.exceptions.Timeout, _retry(Problem.TIMEOUT, ambiguous=True)),
    (socket.timeout, _retry(Problem.TIMEOUT, ambiguous=True)),
    (ConnectionRefusedError, _retry(Problem.CONNECTION)),
    (requests.exceptions.ChunkedEncodingError, _retry(Problem.INCOMPLETE_RESPONSE, ambiguous=True)),
    (requests.exceptions.ContentDecodingError, _retry(Problem.INCOMPLETE_RESPONSE, ambiguous=True)),
    (http.client.IncompleteRead, _retry(Problem.INCOMPLETE_RESPONSE, ambiguous=True)),
    # urllib3's own, raised while a streamed body is read (requests wraps them
    # only inside ``iter_content``).
    (urllib3.exceptions.SSLError, _fail(FailureType.CONFIG, Problem.TLS)),
    (urllib3.exceptions.ReadTimeoutError, _retry(Problem.TIMEOUT, ambiguous=True)),
    (urllib3.exceptions.ProtocolError, _retry(Problem.INCOMPLETE_RESPONSE, ambiguous=True)),
    (urllib3.exceptions.DecodeError, _retry(Problem.INCOMPLETE_RESPONSE, ambiguous=True)),
    (requests.exceptions.ConnectionError, _retry(Problem.CONNECTION, ambiguous=True)),
    (ConnectionError, _retry(Problem.CONNECTION, ambiguous=True)),
    (http.client.HTTPException, _retry(Problem.CONNECTION, ambiguous=True)),
    (requests.exceptions.RequestException, _fail(FailureType.CONFIG, Problem.REQUEST_SETUP)),
    (ValueError, _fail(FailureType.CONFIG, Problem.REQUEST_SETUP)),
    # Last, as requests' exceptions are OSErrors too: DNS failures (socket.gaierror),
    # unreachable networks and hosts from urllib (slack_sdk). Nothing was sent.
    (OSError, _retry(Problem.CONNECTION)),
)


@dataclass(frozen=True)
class ErrorTable:
    """Statuses, API error codes and exceptions -> :class:`Resolution`, for one connector."""

    statuses: Mapping[int, Resolution] = field(default_factory=lambda: dict(STATUS_RESOLUTIONS))
    #: API-level error codes (Slack's ``"error"`` field...), looked up before the status.
    codes: Mapping[str, Resolution] = field(default_factory=dict)
    exceptions: tuple[tuple[type[BaseException], Resolution], ...] = EXCEPTION_RESOLUTIONS
    #: The rows of a 5xx / a 4xx status not listed in ``statuses``.
    other_server_errors: Resolution = SERVER_ERROR
    other_client_errors: Resolution = CLIENT_ERROR

    def with_statuses(self, rows: Mapping[int, Resolution]) -> ErrorTable:
        return replace(self, statuses={**self.statuses, **rows})

    def with_unlisted(self, row: Resolution) -> ErrorTable:
        """This table with every 4xx/5xx status it has no row for resolved by ``row``."""
        return replace(self, other_server_errors=row, other_client_errors=row)

    def with_codes(self, rows: Mapping[str, Resolution]) -> ErrorTable:
        return replace(self, codes={**self.codes, **rows})

    def for_status(self, status: int) -> Resolution:
        if 200 <= status < 400:
            return SUCCESS
        row = self.statuses.get(status)
        if row is not None:
            return row
        return self.other_server_errors if status >= 500 else self.other_client_errors

    def for_code(self, code: str | None) -> Resolution | None:
        """The row of an API error code, ``None`` when the table does not know it."""
        return self.codes.get(code) if code else None

    def for_exception(self, error: BaseException) -> Resolution:
        """The row of an exception raised while sending; unknown ones are request setup."""
        if isinstance(error, urllib.error.URLError) and isinstance(error.reason, BaseException):
            # urllib wraps the socket-level cause; the cause decides.
            return self.for_exception(error.reason)
        for kind, row in self.exceptions:
            if isinstance(error, kind):
                return row
        return _fail(FailureType.CONFIG, Problem.REQUEST_SETUP)


DEFAULT_ERROR_TABLE = ErrorTable()


class RequestDeadlineError(TransientError):
    """One request took longer than :attr:`RetryPolicy.deadline` (a body dripping in).

    Transient, but not retried in-process: another try could hold the pass as
    long again; a later pass tries again.
    """


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry transient failures.

    ``max_delay`` caps the exponential backoff; the server's ``Retry-After``
    is a floor above it, itself clamped to ``max_retry_after`` when set (a
    server may ask for absurd waits). ``max_total_wait`` bounds the sum of the
    waits of one call: several ``Retry-After: 60`` in a row must not hold a
    pass (and its lock) for minutes, so once the next wait would pass the
    budget the error is re-raised for the caller to reschedule. ``deadline``
    bounds one request from sending to the last byte of its body (a server
    that drips its answer passes every per-read ``timeout``); transports that
    stream their bodies honour it.
    """

    max_attempts: int = 6
    base_delay: float = 0.5
    max_delay: float = 60.0
    jitter: float = 0.25
    timeout: float = DEFAULT_TIMEOUT_SECONDS
    max_retry_after: float | None = None
    max_total_wait: float | None = 90.0
    deadline: float | None = 60.0

    def retries_in_process(self, error: BaseException) -> bool:
        """Whether ``error`` is worth another try here, now (not on a later pass).

        A server asking for a longer wait than :attr:`max_delay` is honoured by
        the caller rescheduling, never by sleeping that long in-process.
        """
        if not isinstance(error, TransientError) or isinstance(error, RequestDeadlineError):
            return False
        return error.retry_after is None or error.retry_after <= self.max_delay

    def backoff(
        self, attempt: int, retry_after: float | None, rng: random.Random | None = None
    ) -> float:
        """Seconds to wait before attempt ``attempt + 1`` (``attempt`` counts from 1)."""
        exponential = min(self.max_delay, self.base_delay * (2 ** max(0, attempt - 1)))
        if self.jitter:
            exponential *= 1 + (rng or _SHARED_RNG).uniform(0, self.jitter)
        if retry_after is not None:
            if self.max_retry_after is not None:
                retry_after = min(retry_after, self.max_retry_after)
            # The server's word is a floor. In-process, waits above the cap never
            # get here: retries_in_process hands them back to the caller.
            return float(max(retry_after, exponential))
        return float(exponential)


#: One HTTP call, retried in-process.
REQUEST_POLICY = RetryPolicy()

#: One outbox row, retried on later passes (``attempt`` counts the row's tries):
#: 30 s doubling to an hour, exact (no jitter: rows are already spread by the
#: passes), and a server's wait honoured up to a day, as long as a row is held back.
DELIVERY_POLICY = RetryPolicy(
    base_delay=30.0, max_delay=3600.0, jitter=0.0, max_retry_after=86400.0,
    max_total_wait=None,
)


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every non-empty secret replaced (longest first, so none shows in part)."""
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """``Retry-After`` as seconds: either delta-seconds or an HTTP date.

    ``None`` when absent or unreadable, including non-finite numbers ("inf",
    "1e400", "nan"), which no caller could schedule.
    """
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = now or datetime.now(UTC)
    return max(0.0, (when - current).total_seconds())


@dataclass
class Retrier:
    """Runs a callable under a :class:`RetryPolicy`, retrying :class:`TransientError`."""

    policy: RetryPolicy = REQUEST_POLICY
    sleep: Callable[[float], None] = time.sleep
    rng: random.Random = field(default_factory=random.Random)
    waits: list[float] = field(default_factory=list)

    def _wait(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        retry_after = error.retry_after if isinstance(error, TransientError) else None
        return self.policy.backoff(state.attempt_number, retry_after, self.rng)

    def _record(self, state: RetryCallState) -> None:
        # Recorded just before sleeping: tenacity may compute a wait for an attempt
        # that then stops, and that wait never happens.
        if state.next_action is not None:
            self.waits.append(float(state.next_action.sleep))

    def _stop(self, state: RetryCallState) -> bool:
        if stop_after_attempt(self.policy.max_attempts)(state):
            return True
        # ``idle_for`` is what this call has slept so far; ``upcoming_sleep`` the
        # wait tenacity just computed for the next attempt.
        budget = self.policy.max_total_wait
        return budget is not None and state.idle_for + state.upcoming_sleep > budget

    def call(self, operation: Callable[[], T]) -> T:
        retrying = Retrying(
            stop=self._stop,
            wait=self._wait,
            retry=retry_if_exception(self.policy.retries_in_process),
            sleep=self.sleep,
            before_sleep=self._record,
            reraise=True,
        )
        return retrying(operation)
