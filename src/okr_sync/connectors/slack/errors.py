"""Slack's failures as typed errors, decided by the one HTTP policy's tables.

:data:`SLACK_ERROR_TABLE` is :data:`~okr_sync.connectors.http.DEFAULT_ERROR_TABLE`
plus Slack's rows: its ``error`` codes (Slack answers most failures with HTTP 200
and ``{"ok": false, "error": code}``) and the statuses after which a post may
already be in the channel. :func:`error_for` turns a row into the typed error by
the row's :class:`~okr_sync.connectors.http.Problem`, through two small dicts.
"""

from __future__ import annotations

import http.client
from collections.abc import Mapping, Sequence
from dataclasses import replace

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
    EXCEPTION_RESOLUTIONS,
    RATE_LIMITED,
    Action,
    ErrorTable,
    FailureType,
    Problem,
    Resolution,
)

DEFAULT_API_URL = "https://slack.com/api/"
IDEMPOTENCY_FIELD = "idempotency_key"
DEFAULT_EVENT_TYPE = "okr_sync_message"
# Pages a duplicate lookup reads at most (``conversations.*`` pages hold up to 200).
LOOKUP_MAX_PAGES = 5


def _fail(failure: FailureType, problem: Problem) -> Resolution:
    return Resolution(Action.FAIL, failure, problem)


_BAD_TOKEN = _fail(FailureType.CONFIG, Problem.AUTH)
_NO_SCOPE = _fail(FailureType.CONFIG, Problem.FORBIDDEN)
_NO_CHANNEL = _fail(FailureType.PERMANENT, Problem.NOT_FOUND)
_CLOSED_CHANNEL = _fail(FailureType.PERMANENT, Problem.PRECONDITION)
_MESSAGE_GONE = _fail(FailureType.PERMANENT, Problem.GONE)
_BAD_CONTENT = _fail(FailureType.PERMANENT, Problem.INVALID_REQUEST)
_TOO_LARGE = _fail(FailureType.PERMANENT, Problem.PAYLOAD_TOO_LARGE)
#: A code Slack may add later: permanent until it earns a row.
UNKNOWN_CODE = _fail(FailureType.PERMANENT, Problem.INVALID_REQUEST)
# Slack failing after it got the call: a post may be in the channel already.
_SLACK_DOWN = Resolution(Action.RETRY, FailureType.TRANSIENT, Problem.SERVER_ERROR, ambiguous=True)
_SLACK_SLOW = Resolution(Action.RETRY, FailureType.TRANSIENT, Problem.TIMEOUT, ambiguous=True)

#: Slack ``error`` code -> resolution; a code not listed is permanent.
SLACK_CODES: Mapping[str, Resolution] = {
    **dict.fromkeys(
        ("invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired"),
        _BAD_TOKEN,
    ),
    **dict.fromkeys(("missing_scope", "no_permission"), _NO_SCOPE),
    "channel_not_found": _NO_CHANNEL,
    **dict.fromkeys(("not_in_channel", "is_archived"), _CLOSED_CHANNEL),
    **dict.fromkeys(
        ("message_not_found", "cant_update_message", "edit_window_closed", "thread_not_found"),
        _MESSAGE_GONE,
    ),
    **dict.fromkeys(
        ("invalid_blocks", "no_text", "invalid_metadata_format", "invalid_metadata_schema"),
        _BAD_CONTENT,
    ),
    **dict.fromkeys(("msg_too_long", "msg_blocks_too_long", "metadata_too_large"), _TOO_LARGE),
    **dict.fromkeys(("ratelimited", "rate_limited"), RATE_LIMITED),
    **dict.fromkeys(("fatal", "fatal_error", "internal_error", "service_unavailable"), _SLACK_DOWN),
    "request_timeout": _SLACK_SLOW,
}

SLACK_ERROR_TABLE: ErrorTable = replace(
    DEFAULT_ERROR_TABLE.with_codes(SLACK_CODES).with_statuses(
        {408: _SLACK_SLOW, 425: _SLACK_DOWN, **dict.fromkeys(range(500, 600), _SLACK_DOWN)}
    ),
    exceptions=(
        # An HTTPException (a dropped connection, in the default rows) but a setup error.
        (http.client.InvalidURL, _fail(FailureType.CONFIG, Problem.REQUEST_SETUP)),
        # A reply body that does not decode arrived cut or garbled, after Slack got the call.
        (
            UnicodeDecodeError,
            Resolution(
                Action.RETRY, FailureType.TRANSIENT, Problem.INCOMPLETE_RESPONSE, ambiguous=True
            ),
        ),
        *EXCEPTION_RESOLUTIONS,
    ),
)


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


#: Problem -> error class, whatever decided the row (a status, a code or an exception).
_BY_PROBLEM: Mapping[Problem, type[SlackError]] = {
    Problem.AUTH: SlackAuthError,
    Problem.FORBIDDEN: SlackAuthError,
    Problem.RATE_LIMITED: SlackRateLimitedError,
}
#: Problem -> error class when a Slack code decided: Slack's ``channel_not_found``
#: names a channel, while a bare HTTP 404 only says the URL leads nowhere.
_BY_CODE_PROBLEM: Mapping[Problem, type[SlackError]] = {
    Problem.NOT_FOUND: SlackChannelError,
    Problem.PRECONDITION: SlackChannelError,
    Problem.GONE: SlackMessageGoneError,
    Problem.INVALID_REQUEST: SlackPayloadError,
    Problem.PAYLOAD_TOO_LARGE: SlackPayloadError,
}


def _describe(method: str, channel: str | None, code: str, details: Sequence[str] = ()) -> str:
    where = f" to channel {channel}" if channel else ""
    extra = f" ({'; '.join(details[:3])})" if details else ""
    return f"Slack {method}{where} failed: {code}{extra}"


def error_for(
    row: Resolution,
    *,
    code: str,
    method: str,
    channel: str | None,
    by_code: bool = False,
    status: int | None = None,
    retry_after: float | None = None,
    details: Sequence[str] = (),
) -> SlackError:
    """The typed error for a failed call whose table row is ``row``.

    ``by_code`` says a Slack error code (not only the status) chose the row.
    """
    message = _describe(method, channel, code, details)
    by_slack = _BY_CODE_PROBLEM.get(row.problem) if by_code else None
    kind = by_slack or _BY_PROBLEM.get(row.problem)
    if row.retries:
        transient = kind if kind is not None and issubclass(kind, SlackTransientError) else None
        return (transient or SlackTransientError)(
            message, code=code, method=method, channel=channel, status=status,
            retry_after=retry_after, ambiguous=row.ambiguous,
        )  # fmt: skip
    permanent = kind if kind is not None and issubclass(kind, SlackPermanentError) else None
    return (permanent or SlackPermanentError)(
        message, code=code, method=method, channel=channel, status=status
    )


def malformed(
    method: str, channel: str | None, why: str, status: int | None = None
) -> SlackMalformedResponseError:
    return SlackMalformedResponseError(
        _describe(method, channel, "malformed_response", (why,)),
        code="malformed_response",
        method=method,
        channel=channel,
        status=status,
    )
