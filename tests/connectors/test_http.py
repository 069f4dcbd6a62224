from __future__ import annotations

import http.client
import random
import socket
import ssl
import urllib.error
from datetime import UTC, datetime

import pytest
import requests

from okr_sync.connectors.errors import PermanentError, RateLimitedError, TransientError
from okr_sync.connectors.http import (
    DEFAULT_ERROR_TABLE,
    DELIVERY_POLICY,
    REQUEST_POLICY,
    UNLISTED_FAILS,
    Action,
    FailureType,
    Problem,
    Resolution,
    Retrier,
    RetryPolicy,
    parse_retry_after,
    redact,
)


def _failing(errors: list[Exception], result: str = "ok"):
    calls = {"n": 0}

    def operation() -> str:
        calls["n"] += 1
        if errors:
            raise errors.pop(0)
        return result

    return operation, calls


def test_retrier_given_retry_after_never_waits_less() -> None:
    slept: list[float] = []
    retrier = Retrier(RetryPolicy(base_delay=0.1), sleep=slept.append, rng=random.Random(1))
    operation, calls = _failing([RateLimitedError("429", retry_after=7), TransientError("503")])
    assert retrier.call(operation) == "ok"
    assert calls["n"] == 3
    assert slept[0] >= 7 and slept == retrier.waits
    assert 0.1 <= slept[1] <= 0.1 * 2 * 1.25


def test_retrier_given_permanent_error_does_not_retry() -> None:
    slept: list[float] = []
    operation, calls = _failing([PermanentError("400")])
    with pytest.raises(PermanentError):
        Retrier(sleep=slept.append).call(operation)
    assert calls["n"] == 1 and slept == []


def test_retrier_given_persistent_failure_stops_and_records_only_real_waits() -> None:
    slept: list[float] = []
    retrier = Retrier(RetryPolicy(max_attempts=3), sleep=slept.append)
    operation, calls = _failing([TransientError("x") for _ in range(5)])
    with pytest.raises(TransientError):
        retrier.call(operation)
    assert calls["n"] == 3
    assert len(slept) == 2 and retrier.waits == slept


def test_retrier_given_retry_after_above_max_delay_reraises_at_once_without_sleeping() -> None:
    slept: list[float] = []
    retrier = Retrier(RetryPolicy(max_delay=60), sleep=slept.append)
    operation, calls = _failing([RateLimitedError("429", retry_after=61), TransientError("503")])

    with pytest.raises(RateLimitedError) as raised:
        retrier.call(operation)

    assert raised.value.retry_after == 61
    assert calls["n"] == 1
    assert slept == [] and retrier.waits == []


def test_retrier_given_retry_after_at_max_delay_sleeps_it_then_succeeds() -> None:
    slept: list[float] = []
    retrier = Retrier(RetryPolicy(max_delay=60, jitter=0), sleep=slept.append)
    operation, calls = _failing([TransientError("503", retry_after=60)])

    assert retrier.call(operation) == "ok"

    assert calls["n"] == 2
    assert slept == [60.0] and retrier.waits == slept


def test_retrier_given_long_wait_after_short_ones_records_only_the_short_ones() -> None:
    slept: list[float] = []
    retrier = Retrier(RetryPolicy(max_delay=10, jitter=0), sleep=slept.append)
    errors: list[Exception] = [
        RateLimitedError("429", retry_after=3),
        RateLimitedError("429", retry_after=600),
    ]
    operation, calls = _failing(errors)

    with pytest.raises(RateLimitedError) as raised:
        retrier.call(operation)

    assert raised.value.retry_after == 600
    assert calls["n"] == 2
    assert slept == [3.0] and retrier.waits == slept


def test_retrier_given_retry_after_60_five_times_stops_once_the_wait_budget_would_pass() -> None:
    slept: list[float] = []
    retrier = Retrier(RetryPolicy(max_delay=60, jitter=0, max_total_wait=90), sleep=slept.append)
    operation, calls = _failing([RateLimitedError("429", retry_after=60) for _ in range(5)])

    with pytest.raises(RateLimitedError) as raised:
        retrier.call(operation)

    # One 60 s wait fits the 90 s budget, a second would not: the caller reschedules.
    assert raised.value.retry_after == 60
    assert calls["n"] == 2
    assert slept == [60.0] and retrier.waits == slept


def test_retrier_given_no_wait_budget_sleeps_every_allowed_retry() -> None:
    slept: list[float] = []
    retrier = Retrier(RetryPolicy(max_delay=60, jitter=0, max_total_wait=None),
                      sleep=slept.append)
    operation, calls = _failing([RateLimitedError("429", retry_after=60) for _ in range(3)])

    assert retrier.call(operation) == "ok"

    assert calls["n"] == 4 and slept == [60.0, 60.0, 60.0]


def test_request_policy_given_defaults_bounds_waits_and_each_request() -> None:
    assert REQUEST_POLICY.max_total_wait == 90.0
    assert REQUEST_POLICY.deadline == 60.0
    assert DELIVERY_POLICY.max_total_wait is None


def test_backoff_given_attempts_grows_and_caps() -> None:
    policy = RetryPolicy(base_delay=1, max_delay=5, jitter=0)
    rng = random.Random(0)
    assert [policy.backoff(n, None, rng) for n in (1, 2, 3, 4, 5)] == [1, 2, 4, 5, 5]
    assert policy.backoff(1, 90, rng) == 90  # the server's word beats the cap


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("5", 5.0),
        (" 0 ", 0.0),
        ("Thu, 26 Nov 2026 20:00:30 GMT", 30.0),
        ("soon", None),
        (None, None),
        ("inf", None),
        ("-inf", None),
        ("1e400", None),
        ("nan", None),
        ("-5", 0.0),
    ],
)
def test_parse_retry_after_given_header_returns_seconds(header, expected) -> None:
    now = datetime(2026, 11, 26, 20, 0, 0, tzinfo=UTC)
    assert parse_retry_after(header, now=now) == expected


# -- the tables -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "action", "failure", "problem"),
    [
        (200, Action.IGNORE, None, Problem.NONE),
        (302, Action.IGNORE, None, Problem.NONE),
        (400, Action.FAIL, FailureType.PERMANENT, Problem.INVALID_REQUEST),
        (401, Action.FAIL, FailureType.CONFIG, Problem.AUTH),
        (403, Action.FAIL, FailureType.CONFIG, Problem.FORBIDDEN),
        (404, Action.FAIL, FailureType.PERMANENT, Problem.NOT_FOUND),
        (408, Action.RETRY, FailureType.TRANSIENT, Problem.TIMEOUT),
        (410, Action.FAIL, FailureType.PERMANENT, Problem.GONE),
        (413, Action.FAIL, FailureType.PERMANENT, Problem.PAYLOAD_TOO_LARGE),
        (418, Action.FAIL, FailureType.PERMANENT, Problem.INVALID_REQUEST),
        (429, Action.RATE_LIMITED, FailureType.TRANSIENT, Problem.RATE_LIMITED),
        (500, Action.RETRY, FailureType.TRANSIENT, Problem.SERVER_ERROR),
        (503, Action.RETRY, FailureType.TRANSIENT, Problem.SERVER_ERROR),
        (599, Action.RETRY, FailureType.TRANSIENT, Problem.SERVER_ERROR),
    ],
)
def test_error_table_for_status_given_status_resolves_by_row(status, action, failure,
                                                             problem) -> None:
    row = DEFAULT_ERROR_TABLE.for_status(status)
    assert (row.action, row.failure, row.problem) == (action, failure, problem)


@pytest.mark.parametrize(
    ("error", "problem", "retries", "ambiguous"),
    [
        (requests.exceptions.SSLError("cert"), Problem.TLS, False, False),
        (ssl.SSLError("cert"), Problem.TLS, False, False),
        (requests.exceptions.ConnectTimeout("t"), Problem.CONNECT_TIMEOUT, True, False),
        (requests.exceptions.ReadTimeout("t"), Problem.TIMEOUT, True, True),
        (TimeoutError("t"), Problem.TIMEOUT, True, True),
        (requests.exceptions.ConnectionError("reset"), Problem.CONNECTION, True, True),
        (ConnectionResetError("reset"), Problem.CONNECTION, True, True),
        (ConnectionRefusedError("refused"), Problem.CONNECTION, True, False),
        (requests.exceptions.ChunkedEncodingError("cut"), Problem.INCOMPLETE_RESPONSE, True, True),
        (http.client.IncompleteRead(b"x"), Problem.INCOMPLETE_RESPONSE, True, True),
        (urllib.error.URLError(TimeoutError("t")), Problem.TIMEOUT, True, True),
        (urllib.error.URLError(ssl.SSLError("cert")), Problem.TLS, False, False),
        (requests.exceptions.InvalidURL("x"), Problem.REQUEST_SETUP, False, False),
        (socket.gaierror(-2, "Name or service not known"), Problem.CONNECTION, True, False),
        (urllib.error.URLError(socket.gaierror(-2, "unknown")), Problem.CONNECTION, True, False),
        (OSError(101, "Network is unreachable"), Problem.CONNECTION, True, False),
        (RuntimeError("unknown"), Problem.REQUEST_SETUP, False, False),
    ],
)
def test_error_table_for_exception_given_exception_resolves_by_type(error, problem, retries,
                                                                    ambiguous) -> None:
    row = DEFAULT_ERROR_TABLE.for_exception(error)
    assert (row.problem, row.retries, row.ambiguous) == (problem, retries, ambiguous)


def test_error_table_given_connector_rows_overrides_only_those() -> None:
    precondition = Resolution(Action.RETRY, FailureType.TRANSIENT, Problem.PRECONDITION)
    table = DEFAULT_ERROR_TABLE.with_statuses({412: precondition}).with_codes(
        {"ratelimited": DEFAULT_ERROR_TABLE.for_status(429)})
    assert table.for_status(412) is precondition
    assert table.for_status(404) == DEFAULT_ERROR_TABLE.for_status(404)
    assert table.for_code("ratelimited").action is Action.RATE_LIMITED
    assert table.for_code("channel_not_found") is None and table.for_code(None) is None
    assert DEFAULT_ERROR_TABLE.for_status(412).action is Action.FAIL
    assert table.for_status(412).retries and not table.for_status(404).retries


def test_redact_given_overlapping_secrets_hides_each_whole() -> None:
    assert redact("token abc123 and abc", ["abc", "abc123", ""]) == "token *** and ***"


def test_error_table_with_unlisted_given_statuses_without_rows_fails_them_only() -> None:
    table = DEFAULT_ERROR_TABLE.with_unlisted(UNLISTED_FAILS)
    for status in (501, 505, 418, 409):
        row = table.for_status(status)
        assert (row.action, row.failure, row.problem) == (
            Action.FAIL, FailureType.PERMANENT, Problem.UNLISTED)
    assert table.for_status(400).problem is Problem.INVALID_REQUEST
    assert table.for_status(503) == DEFAULT_ERROR_TABLE.for_status(503)
    assert table.for_status(204).action is Action.IGNORE


def test_backoff_given_max_retry_after_clamps_the_servers_wait() -> None:
    policy = RetryPolicy(base_delay=1, max_delay=5, jitter=0, max_retry_after=100)
    assert policy.backoff(1, 10**9) == 100
    assert policy.backoff(1, 50) == 50
    assert policy.backoff(4, 2) == 5


@pytest.mark.parametrize(
    ("attempt", "retry_after", "expected"),
    [(1, None, 30.0), (2, None, 60.0), (7, None, 1920.0), (8, None, 3600.0), (30, None, 3600.0),
     (1, 10.0, 30.0), (1, 120.0, 120.0), (9, 7200.0, 7200.0), (1, 1e12, 86400.0)],
)
def test_delivery_policy_given_attempt_waits_exactly_as_the_outbox_always_did(
    attempt: int, retry_after: float | None, expected: float
) -> None:
    # 30 s doubling to an hour, no jitter; a server's wait honoured up to a day.
    assert DELIVERY_POLICY.backoff(attempt, retry_after) == expected
