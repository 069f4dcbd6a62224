"""One Slack Web API call over ``slack_sdk.WebClient``, its outcome as data or a typed error.

``slack_sdk`` sends the request (urllib), with its own retries switched off:
the caller's :class:`~okr_sync.connectors.http.Retrier` is the only retry layer.
What ``slack_sdk`` leaves to us, checked against a loopback server:

- Every failure arrives as ``SlackApiError`` (any ``ok`` that is not true, any
  non-200 status, with ``.response.status_code``/``.headers``/``.data``) or as
  the raw urllib/socket exception; :data:`SLACK_ERROR_TABLE` decides both.
- A body that is not JSON (an HTML 5xx, an empty 429, a proxy's page) becomes
  ``{"ok": false, "error": <a sentence quoting the body>}``. A sentence is not a
  Slack error code (those are snake_case identifiers), so it counts as no code:
  the status decides, and on a 200 the reply is malformed.
- A JSON body that is not an object breaks ``slack_sdk``'s own check with an
  ``AttributeError``; that too is a malformed reply.
- urllib wraps in ``URLError`` only what failed while connecting or sending, so
  Slack never received the whole request and the call cannot have taken effect.

Exceptions are never chained or quoted: their text can hold request details.
"""

from __future__ import annotations

import logging
import math
import re
import urllib.error
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr

from okr_sync.connectors.http import Action, FailureType, Problem, Resolution, parse_retry_after
from okr_sync.connectors.slack.errors import (
    SLACK_ERROR_TABLE,
    UNKNOWN_CODE,
    SlackError,
    SlackPermanentError,
    _describe,
    error_for,
    malformed,
)

if TYPE_CHECKING:
    from slack_sdk import WebClient
    from slack_sdk.errors import SlackApiError

#: slack_sdk's own records (request and response traces at DEBUG, failed sends at
#: ERROR) under okr-sync's name. It redacts the Authorization header, the only
#: place the token travels.
SDK_LOGGER = logging.getLogger("okr_sync.connectors.slack.sdk")


def _below_error(record: logging.LogRecord) -> bool:
    # A failed send becomes a typed error that its caller reports once; slack_sdk's
    # own ERROR line about it would say the same thing a second time.
    return record.levelno < logging.ERROR


SDK_LOGGER.addFilter(_below_error)

_SLACK_CODE = re.compile(r"[a-z0-9_]+")
# What http.client refuses in a header value, and would quote (token and all) in its error.
_ILLEGAL_HEADER_VALUE = re.compile(r"[\x00-\x1f\x7f]")
# A redirect slack_sdk's urllib did not follow (a loop, no Location): the URL is wrong.
_REDIRECTED = Resolution(Action.FAIL, FailureType.CONFIG, Problem.REQUEST_SETUP)


class SlackTransport:
    """Sends one Web API method at a time; no retries, no pacing (the client does both)."""

    def __init__(self, api_url: str, bot_token: SecretStr, *, timeout: float) -> None:
        self._api_url = api_url
        self._bot_token = bot_token
        self._timeout = timeout
        self._token_usable = _ILLEGAL_HEADER_VALUE.search(bot_token.get_secret_value()) is None
        self._web: WebClient | None = None

    def _client(self) -> WebClient:
        if self._web is None:
            # Imported on the first call, not at start: slack_sdk costs ~0.1 s of CPU to
            # import, and a pass sends nothing until it has read Jira (often nothing).
            from slack_sdk import WebClient

            self._web = WebClient(
                token=self._bot_token.get_secret_value() if self._token_usable else None,
                base_url=self._api_url,
                # slack_sdk takes whole seconds.
                timeout=max(1, math.ceil(self._timeout)),
                logger=SDK_LOGGER,
                retry_handlers=[],
            )
        return self._web

    def call(
        self,
        method: str,
        channel: str | None,
        *,
        json_body: Mapping[str, Any] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """The reply of a successful call (``ok`` is true); a typed SlackError otherwise."""
        if not self._token_usable:
            raise SlackPermanentError(
                _describe(method, channel, "request_error",
                          ("the bot token holds characters a header cannot carry",)),
                code="request_error", method=method, channel=channel,
            ) from None  # fmt: skip
        from slack_sdk.errors import SlackApiError

        client = self._client()
        try:
            response = client.api_call(
                method,
                json=dict(json_body) if json_body is not None else None,
                params=dict(params) if params is not None else None,
            )
        except SlackApiError as error:
            raise _api_error(method, channel, error) from None
        except AttributeError:
            # slack_sdk's validate() calls .get() on the body: a JSON list or string.
            raise malformed(method, channel, "body is not a JSON object") from None
        except Exception as error:
            raise _exception_error(method, channel, error) from None
        data = response.data
        if not isinstance(data, dict):
            raise malformed(method, channel, "body is not a JSON object", response.status_code)
        return data


def _api_error(method: str, channel: str | None, error: SlackApiError) -> SlackError:
    status = int(error.response.status_code)
    headers = {str(k).lower(): str(v) for k, v in (error.response.headers or {}).items()}
    retry_after = parse_retry_after(headers.get("retry-after"))
    data = error.response.data if isinstance(error.response.data, dict) else {}
    raw_code = data.get("error")
    code = raw_code if isinstance(raw_code, str) and _SLACK_CODE.fullmatch(raw_code) else None
    by_code = SLACK_ERROR_TABLE.for_code(code)
    if 200 <= status < 300:
        # Slack's usual failure: HTTP 200 and ``ok: false``; its code is the whole story.
        if code is None:
            why = "body is not a JSON object" if isinstance(raw_code, str) else "no error code"
            return malformed(method, channel, why, status)
        decided_by_code = by_code is not None
        row = by_code or UNKNOWN_CODE
    elif 300 <= status < 400:
        return error_for(
            _REDIRECTED, code=_REDIRECTED.problem.value, method=method, channel=channel,
            status=status, details=(f"HTTP {status} redirect not followed",),
        )  # fmt: skip
    else:
        by_status = SLACK_ERROR_TABLE.for_status(status)
        # A server in trouble or asking to slow down is believed over any code in its body.
        decided_by_code = by_code is not None and (by_code.retries or not by_status.retries)
        row = by_code if by_code is not None and decided_by_code else by_status
    if decided_by_code and code is not None:
        shown = code
    elif row.problem is Problem.RATE_LIMITED:
        shown = "ratelimited"
    else:
        shown = code or f"http_{status}"
    return error_for(
        row, code=shown, method=method, channel=channel,
        by_code=decided_by_code, status=status,
        retry_after=retry_after, details=_details(data),
    )  # fmt: skip


def _exception_error(method: str, channel: str | None, error: Exception) -> SlackError:
    row = SLACK_ERROR_TABLE.for_exception(error)
    cause: BaseException = error
    if isinstance(error, urllib.error.URLError) and isinstance(error.reason, BaseException):
        cause = error.reason
        if row.retries:
            # Failed while connecting or sending: Slack never had the whole request.
            problem = Problem.CONNECT_TIMEOUT if row.problem is Problem.TIMEOUT else row.problem
            row = replace(row, problem=problem, ambiguous=False)
    return error_for(
        row, code=row.problem.value, method=method, channel=channel,
        details=(type(cause).__name__,),
    )  # fmt: skip


def _details(body: Mapping[str, Any]) -> list[str]:
    found: list[str] = []
    errors = body.get("errors")
    if isinstance(errors, list):
        found.extend(str(item) for item in errors)
    metadata = body.get("response_metadata")
    messages = metadata.get("messages") if isinstance(metadata, dict) else None
    if isinstance(messages, list):
        found.extend(str(item) for item in messages)
    return found
