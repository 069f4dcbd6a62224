from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from okr_sync.connectors.errors import PermanentError, RateLimitedError, TransientError
from okr_sync.connectors.http import Retrier, RetryPolicy, parse_retry_after


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
