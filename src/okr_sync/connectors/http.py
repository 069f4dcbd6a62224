"""One retry policy for every connector, kept as data.

The table :attr:`RetryPolicy.retry_statuses` says which HTTP statuses are
worth another try; everything else is either success or a permanent error.
Waits grow exponentially with jitter, are capped, and are **never shorter
than the server's ``Retry-After``**. A server-requested wait longer than
:attr:`RetryPolicy.max_delay` is not slept in-process: the error is re-raised
at once (with its ``retry_after``) so the caller can reschedule the work
instead of holding a worker, a lock or a pass for minutes. Sleeping is
injectable so tests run instantly while still asserting the waits that would
have happened.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt

from okr_sync.connectors.errors import TransientError

T = TypeVar("T")

DEFAULT_TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry transient failures."""

    max_attempts: int = 6
    base_delay: float = 0.5
    max_delay: float = 60.0
    jitter: float = 0.25
    retry_statuses: frozenset[int] = field(
        default_factory=lambda: frozenset({408, 425, 429, 500, 502, 503, 504})
    )
    timeout: float = DEFAULT_TIMEOUT_SECONDS

    def is_retryable_status(self, status: int) -> bool:
        return status in self.retry_statuses

    def retries_in_process(self, error: BaseException) -> bool:
        """Whether ``error`` is worth another try here, now (not on a later pass).

        A server asking for a longer wait than :attr:`max_delay` is honoured by
        the caller rescheduling, never by sleeping that long in-process.
        """
        if not isinstance(error, TransientError):
            return False
        return error.retry_after is None or error.retry_after <= self.max_delay

    def backoff(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        """Seconds to wait before attempt ``attempt + 1`` (``attempt`` counts from 1)."""
        exponential = min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))
        exponential *= 1 + rng.uniform(0, self.jitter)
        if retry_after is not None:
            # The server's word is a floor. Waits above the cap never get here:
            # retries_in_process hands them back to the caller.
            return float(max(retry_after, exponential))
        return float(exponential)


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

    policy: RetryPolicy = field(default_factory=RetryPolicy)
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

    def call(self, operation: Callable[[], T]) -> T:
        retrying = Retrying(
            stop=stop_after_attempt(self.policy.max_attempts),
            wait=self._wait,
            retry=retry_if_exception(self.policy.retries_in_process),
            sleep=self.sleep,
            before_sleep=self._record,
            reraise=True,
        )
        return retrying(operation)
