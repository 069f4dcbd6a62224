"""Answering a slash command or an interaction later, through its ``response_url``.

Slack gives each slash command and block action a ``response_url`` that accepts up to
five JSON posts within 30 minutes, without a token: the way to answer after the
three-second acknowledgement. Only Slack's hosts (or loopback, for the sandbox) are
posted to, so a forged URL in a request we accepted cannot make us call elsewhere.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from okr_sync.connectors.errors import ConnectorError

#: Where Slack's response URLs point.
SLACK_RESPONSE_HOSTS = ("hooks.slack.com", "hooks.slack-gov.com")
TIMEOUT_S = 10.0


class SlackResponseError(ConnectorError):
    """A ``response_url`` that is not Slack's, or a post to it that failed."""


def _allowed(url: str, allow_loopback: bool) -> bool:
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.scheme == "https" and host in SLACK_RESPONSE_HOSTS:
        return True
    return allow_loopback and parts.scheme == "http" and host in ("127.0.0.1", "localhost")


def post_response(url: str, message: Mapping[str, Any], *, allow_loopback: bool = False,
                  timeout: float = TIMEOUT_S) -> None:
    """Post ``message`` (``text``, ``blocks``, ``response_type``...) to ``url``."""
    if not _allowed(url, allow_loopback):
        raise SlackResponseError("the response_url is not a Slack hooks URL")
    request = urllib.request.Request(  # noqa: S310 - the scheme and host are checked above
        url, data=json.dumps(dict(message)).encode(), method="POST",
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as reply:  # noqa: S310
            reply.read(4096)
    except (urllib.error.URLError, OSError) as error:
        raise SlackResponseError(f"posting to the response_url failed: "
                                 f"{type(error).__name__}") from None
