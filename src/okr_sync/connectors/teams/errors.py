"""Teams and Bot Framework failures as typed errors (see :mod:`.client`)."""

from __future__ import annotations

from okr_sync.connectors.errors import (
    AuthError,
    ConnectorError,
    MalformedResponseError,
    PermanentError,
    RateLimitedError,
    TransientError,
)


class TeamsError(ConnectorError):
    """A failed Teams call. ``code`` is the service's error code or ``http_<status>``."""

    def __init__(
        self, message: str, *, code: str, operation: str, target: str,
        status: int | None = None,
    ) -> None:  # fmt: skip
        super().__init__(message, status=status)
        self.code = code
        self.operation = operation
        self.target = target


class TeamsPermanentError(TeamsError, PermanentError):
    """Retrying the same request cannot help."""


class TeamsAuthError(TeamsPermanentError, AuthError):
    """Bad app id, secret or tenant, a rejected token, or a refused webhook signature."""


class TeamsNotFoundError(TeamsPermanentError):
    """The conversation, activity or workflow does not exist (any more)."""


class TeamsPayloadError(TeamsPermanentError):
    """The service refused the content (400: invalid card or activity; 413: too large)."""


class TeamsTransientError(TeamsError, TransientError):
    """May succeed later (429, 412, 502, 503, 504, timeouts, dropped connections)."""

    def __init__(
        self, message: str, *, code: str, operation: str, target: str,
        status: int | None = None, retry_after: float | None = None,
    ) -> None:  # fmt: skip
        super().__init__(message, code=code, operation=operation, target=target, status=status)
        self.retry_after = retry_after


class TeamsRateLimitedError(TeamsTransientError, RateLimitedError):
    """HTTP 429: the service said to slow down."""


class TeamsMalformedResponseError(TeamsTransientError, MalformedResponseError):
    """The service answered with a body that is not what its API promises."""
