"""Typed connector errors.

``sync/`` decides what to do by the *type* of an error (skip a KR, mark a
delivery failed, retry on a later pass), never by its text. Messages name the
system, the operation and the problem; they never contain credentials.
"""

from __future__ import annotations


class ConnectorError(Exception):
    """Any failure talking to an outside system."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class TransientError(ConnectorError):
    """May succeed later: rate limits, 5xx, timeouts, dropped connections."""

    def __init__(
        self, message: str, *, status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message, status=status)
        self.retry_after = retry_after


class RateLimitedError(TransientError):
    """The server said to slow down (HTTP 429, Slack ``ratelimited``)."""


class PermanentError(ConnectorError):
    """Retrying the same request cannot help: bad input, missing target, bad config."""


class AuthError(PermanentError):
    """Credentials are missing, wrong or lack a permission (401/403, ``invalid_auth``)."""


class MalformedResponseError(TransientError):
    """The server answered with a body that is not what its API promises."""
