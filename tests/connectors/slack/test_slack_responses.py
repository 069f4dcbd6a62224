"""SlackClient edge cases the sandbox cannot produce (strict ``responses``, ordered)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
import requests
import responses
from pydantic import SecretStr
from responses import matchers
from responses.registries import OrderedRegistry

from okr_sync.connectors.http import RetryPolicy
from okr_sync.connectors.slack.client import (
    SlackClient,
    SlackMalformedResponseError,
    SlackMessageRef,
    SlackPermanentError,
    SlackRateLimitedError,
)

API = "https://slack.test/api/"
POST = API + "chat.postMessage"
HISTORY = API + "conversations.history"
CHANNEL = "C0123456789"
TOKEN = "xoxb-responses-secret"
NOW = 1_790_000_000.0
OK_POST = {"ok": True, "channel": CHANNEL, "ts": "1790000000.000100", "message": {}}


@pytest.fixture
def mocked() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(
        assert_all_requests_are_fired=True, registry=OrderedRegistry
    ) as rsps:
        yield rsps


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def client(sleeps: list[float]) -> SlackClient:
    return SlackClient(
        API,
        SecretStr(TOKEN),
        policy=RetryPolicy(max_attempts=3, timeout=5.0),
        sleep=sleeps.append,
        channel_interval=0.0,
        wall_clock=lambda: NOW,
    )


def test_post_message_given_html_200_is_malformed_and_retried(
    mocked: responses.RequestsMock, client: SlackClient
) -> None:
    mocked.post(POST, body="<html>maintenance</html>", status=200)
    mocked.post(POST, json=OK_POST)

    ref = client.post_message(CHANNEL, text="hi")

    assert ref == SlackMessageRef(CHANNEL, "1790000000.000100")


def test_post_message_given_ok_false_without_code_raises_malformed(
    mocked: responses.RequestsMock, client: SlackClient
) -> None:
    for _ in range(3):
        mocked.post(POST, json={"ok": False})

    with pytest.raises(SlackMalformedResponseError) as raised:
        client.post_message(CHANNEL, text="hi")

    assert raised.value.code == "malformed_response"


def test_post_message_given_retry_after_http_date_waits_until_then(
    mocked: responses.RequestsMock, client: SlackClient
) -> None:
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=50), usegmt=True)
    mocked.post(POST, status=429, headers={"Retry-After": later}, json={"ok": False})
    mocked.post(POST, json=OK_POST)

    client.post_message(CHANNEL, text="hi")

    assert client.retrier.waits[0] > 40


def test_post_message_given_retry_after_beyond_max_delay_raises_at_once(
    mocked: responses.RequestsMock, client: SlackClient, sleeps: list[float]
) -> None:
    mocked.post(POST, status=429, headers={"Retry-After": "600"}, json={"ok": False})

    with pytest.raises(SlackRateLimitedError) as raised:
        client.post_message(CHANNEL, text="hi")

    assert raised.value.retry_after == 600
    assert sleeps == [] and client.retrier.waits == []


def test_post_message_given_429_without_body_is_rate_limited(
    mocked: responses.RequestsMock, client: SlackClient
) -> None:
    for _ in range(3):
        mocked.post(POST, status=429, headers={"Retry-After": "2"}, body="")

    with pytest.raises(SlackRateLimitedError) as raised:
        client.post_message(CHANNEL, text="hi")

    assert (raised.value.code, raised.value.retry_after, raised.value.status) == (
        "ratelimited", 2.0, 429,
    )  # fmt: skip


def test_post_message_given_read_timeout_with_key_checks_history_before_reposting(
    mocked: responses.RequestsMock, client: SlackClient
) -> None:
    mocked.post(POST, body=requests.ReadTimeout("read timed out"))
    history_query = {
        "channel": CHANNEL,
        "include_all_metadata": "true",
        "oldest": f"{NOW - 900:.6f}",
        "limit": "200",
    }
    mocked.get(
        HISTORY,
        json={"ok": True, "messages": [], "has_more": False},
        match=[matchers.query_param_matcher(history_query)],
    )
    mocked.post(POST, json=OK_POST)

    ref = client.post_message(CHANNEL, text="hi", idempotency_key="outbox-9")

    assert ref.ts == "1790000000.000100"
    sent = json.loads(mocked.calls[2].request.body or b"{}")
    assert sent["metadata"] == {
        "event_type": "okr_sync_message",
        "event_payload": {"idempotency_key": "outbox-9"},
    }


def test_post_message_given_connect_timeout_retries_without_history_lookup(
    mocked: responses.RequestsMock, client: SlackClient
) -> None:
    # Nothing was sent, so there is nothing to look for.
    mocked.post(POST, body=requests.ConnectTimeout("connect timed out"))
    mocked.post(POST, json=OK_POST)

    client.post_message(CHANNEL, text="hi", idempotency_key="outbox-10")

    assert [call.request.method for call in mocked.calls] == ["POST", "POST"]


def test_post_message_given_wrong_api_url_404_is_permanent(
    mocked: responses.RequestsMock, client: SlackClient
) -> None:
    mocked.post(POST, status=404, body="<html>Not Found</html>")

    with pytest.raises(SlackPermanentError) as raised:
        client.post_message(CHANNEL, text="hi")

    assert raised.value.code == "http_404"
    assert TOKEN not in str(raised.value)


def test_post_message_given_any_call_sends_bearer_token_and_json_charset(
    mocked: responses.RequestsMock, client: SlackClient
) -> None:
    mocked.post(
        POST,
        json=OK_POST,
        match=[
            matchers.header_matcher(
                {
                    "Authorization": f"Bearer {TOKEN}",
                    "Content-Type": "application/json; charset=utf-8",
                }
            ),
            matchers.json_params_matcher({"channel": CHANNEL, "text": "hi"}),
        ],
    )

    client.post_message(CHANNEL, text="hi")
