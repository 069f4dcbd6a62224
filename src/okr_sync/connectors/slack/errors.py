"""Slack's error codes as typed errors (see :mod:`okr_sync.connectors.slack.client`)."""

from __future__ import annotations

from collections.abc import Sequence

from okr_sync.connectors.errors import (
    AuthError,
    ConnectorError,
    MalformedResponseError,
    PermanentError,
    RateLimitedError,
    TransientError,
)

DEFAULT_API_URL = "https://slack.com/api/"
IDEMPOTENCY_FIELD = "idempotency_key"
DEFAULT_EVENT_TYPE = "okr_sync_message"

# Slack error codes by what the caller should do about them.
AUTH_CODES = frozenset(
    {"invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired",
     "missing_scope", "no_permission"}
)  # fmt: skip
CHANNEL_CODES = frozenset({"channel_not_found", "not_in_channel", "is_archived"})
MESSAGE_GONE_CODES = frozenset(
    {"message_not_found", "cant_update_message", "edit_window_closed", "thread_not_found"}
)
PAYLOAD_CODES = frozenset(
    {"invalid_blocks", "msg_too_long", "msg_blocks_too_long", "no_text",
     "invalid_metadata_format", "invalid_metadata_schema", "metadata_too_large"}
)  # fmt: skip
RATE_LIMIT_CODES = frozenset({"ratelimited", "rate_limited"})
TRANSIENT_CODES = RATE_LIMIT_CODES | frozenset(
    {"fatal", "fatal_error", "internal_error", "service_unavailable", "request_timeout"}
)
# Pages a duplicate lookup reads at most (``conversations.*`` pages hold up to 200).
LOOKUP_MAX_PAGES = 5


class SlackError(ConnectorError):
    """A failed Slack Web API call; ``code`` is Slack's error code (or ``http_<status>``)."""

    def __init__(
        self, message: str, *, code: str, method: str, channel: str | None = None,
        status: int | None = None,
    ) -> None:  # fmt: skip
        super().__init__(message, status=status)
        self.code = code
        self.method = method
        self.channel = channel


class SlackPermanentError(SlackError, PermanentError):
    """Retrying the same call cannot help (unknown codes land here too)."""


class SlackAuthError(SlackPermanentError, AuthError):
    """The bot token is wrong, revoked or lacks a scope."""


class SlackChannelError(SlackPermanentError):
    """The route's channel is missing, archived, or the bot is not a member."""


class SlackMessageGoneError(SlackPermanentError):
    """The message to edit (or the thread to reply to) is gone or no longer editable."""


class SlackPayloadError(SlackPermanentError):
    """Slack refused the content: blocks, length, metadata or missing text."""


class SlackTransientError(SlackError, TransientError):
    """May succeed later. ``ambiguous`` means the call may already have taken effect."""

    def __init__(
        self, message: str, *, code: str, method: str, channel: str | None = None,
        status: int | None = None, retry_after: float | None = None, ambiguous: bool = True,
    ) -> None:  # fmt: skip
        super().__init__(message, code=code, method=method, channel=channel, status=status)
        self.retry_after = retry_after
        self.ambiguous = ambiguous


class SlackRateLimitedError(SlackTransientError, RateLimitedError):
    """Slack said to slow down (HTTP 429 or ``ratelimited``); nothing was posted."""


class SlackMalformedResponseError(SlackTransientError, MalformedResponseError):
    """Slack answered with something that is not a Web API JSON object."""


def _describe(method: str, channel: str | None, code: str, details: Sequence[str] = ()) -> str:
    where = f" to channel {channel}" if channel else ""
    extra = f" ({'; '.join(details[:3])})" if details else ""
    return f"Slack {method}{where} failed: {code}{extra}"


def slack_error(
    code: str,
    *,
    method: str,
    channel: str | None,
    status: int | None = None,
    retry_after: float | None = None,
    details: Sequence[str] = (),
) -> SlackError:
    """The typed error for a Slack error code."""
    message = _describe(method, channel, code, details)
    if code in TRANSIENT_CODES:
        kind = SlackRateLimitedError if code in RATE_LIMIT_CODES else SlackTransientError
        return kind(
            message, code=code, method=method, channel=channel, status=status,
            retry_after=retry_after, ambiguous=code not in RATE_LIMIT_CODES,
        )  # fmt: skip
    permanent: type[SlackPermanentError] = SlackPermanentError
    if code in AUTH_CODES:
        permanent = SlackAuthError
    elif code in CHANNEL_CODES:
        permanent = SlackChannelError
    elif code in MESSAGE_GONE_CODES:
        permanent = SlackMessageGoneError
    elif code in PAYLOAD_CODES:
        permanent = SlackPayloadError
    return permanent(message, code=code, method=method, channel=channel, status=status)
