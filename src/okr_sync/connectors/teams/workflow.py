"""Teams Workflows (Power Automate) webhooks: post an Adaptive Card.

The whole URL is a secret (its ``sig`` authorises the call), so errors show
only ``scheme://host/…``. The service answers 202 with no id: a workflow post
can never be edited.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import requests
from pydantic import SecretStr

from okr_sync.connectors.http import REQUEST_POLICY, Retrier, RetryPolicy
from okr_sync.connectors.teams.transport import (
    SECRET_URLS,
    TEAMS_WORKFLOW_ERROR_TABLE,
    send,
    status_error,
)

ADAPTIVE_CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
_LOOPBACK_NAMES = frozenset({"localhost"})


def adaptive_card_attachment(card: Mapping[str, Any]) -> dict[str, Any]:
    return {"contentType": ADAPTIVE_CARD_CONTENT_TYPE, "contentUrl": None, "content": dict(card)}


def workflow_envelope(card: Mapping[str, Any]) -> dict[str, Any]:
    """The body a Teams Workflows webhook expects for one Adaptive Card."""
    return {"type": "message", "attachments": [adaptive_card_attachment(card)]}


def _is_loopback(host: str) -> bool:
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def checked_workflow_url(url: str) -> str:
    """``url`` stripped, if it can be a Workflows webhook; ``ValueError`` (never quoting it)."""
    url = url.strip()
    try:
        parts = urlsplit(url)
        port = parts.port  # raises on a port out of range or not a number
    except ValueError:
        raise ValueError("the Teams Workflows URL is not a valid URL") from None
    if port == 0:
        raise ValueError("the Teams Workflows URL has an invalid port")
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError("the Teams Workflows URL must be an absolute https:// URL")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise ValueError("the Teams Workflows URL must use https:// (http only for loopback)")
    return url


def redact_url(url: str) -> str:
    """``scheme://host/…``: enough to tell targets apart, nothing that authorises."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or '?'}/…"


class TeamsWorkflowClient:
    """Posts Adaptive Cards to a Teams Workflows (Power Automate) webhook URL."""

    def __init__(
        self,
        url: SecretStr,
        *,
        retrier: Retrier | None = None,
        policy: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        timeout: float | None = None,
        session: requests.Session | None = None,
    ) -> None:
        checked = checked_workflow_url(url.get_secret_value())
        self._url = SecretStr(checked)
        self.target = redact_url(checked)
        parts = urlsplit(checked)
        SECRET_URLS.add(parts.path, parts.query)
        self.retrier = retrier or Retrier(policy=policy or REQUEST_POLICY, sleep=sleep)
        self.timeout = timeout if timeout is not None else self.retrier.policy.timeout
        self._session = session or requests.Session()

    def __repr__(self) -> str:
        return f"TeamsWorkflowClient(url={self.target!r})"

    def close(self) -> None:
        self._session.close()

    def post_card(self, card: Mapping[str, Any]) -> None:
        """Post one card. Accepted (any 2xx) means the flow took it; there is no id to edit."""
        envelope = workflow_envelope(card)
        self.retrier.call(lambda: self._post(envelope))

    def _post(self, envelope: Mapping[str, Any]) -> None:
        url = self._url.get_secret_value()
        response = send(
            self._session, "POST", url, body=envelope, headers={}, timeout=self.timeout,
            operation="workflow post", target=self.target, table=TEAMS_WORKFLOW_ERROR_TABLE,
        )  # fmt: skip
        if 200 <= response.status_code < 300:
            return
        parts = urlsplit(url)
        raise status_error(
            response, operation="workflow post", target=self.target,
            table=TEAMS_WORKFLOW_ERROR_TABLE, secrets=[url, parts.path, parts.query],
        ) from None  # fmt: skip
