"""SlackClient edge cases the sandbox cannot produce (a strict scripted loopback Slack, ordered)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.message import Message
from email.utils import format_datetime

import pytest
from pydantic import SecretStr

from okr_sync.connectors.http import RetryPolicy
from okr_sync.connectors.slack.client import (
    SlackClient,
    SlackMalformedResponseError,
    SlackMessageRef,
    SlackPermanentError,
    SlackRateLimitedError,
)
from support.scripted_slack import HungPort, ScriptedSlack, scripted

POST = "chat.postMessage"
HISTORY = "conversations.history"
CHANNEL = "C0123456789"
TOKEN = "xoxb-responses-secret"
NOW = 1_790_000_000.0
OK_POST = {"ok": True, "channel": CHANNEL, "ts": "1790000000.000100", "message": {}}
# slack_sdk takes whole seconds; the shortest timeout it allows.
TIMEOUT = 1.0


@pytest.fixture
def mocked() -> Iterator[ScriptedSlack]:
    with scripted() as server:
        yield server
        server.assert_done()


@pytest.fixture
def sleeps() -> list[float]:
    return []


def make_client(
    api_url: str, sleeps: list[float], sleep: Callable[[float], None] | None = None
) -> SlackClient:
    return SlackClient(
        api_url,
        SecretStr(TOKEN),
        policy=RetryPolicy(max_attempts=3, timeout=TIMEOUT),
        sleep=sleep or sleeps.append,
        channel_interval=0.0,
        wall_clock=lambda: NOW,
    )


@pytest.fixture
def client(mocked: ScriptedSlack, sleeps: list[float]) -> SlackClient:
    return make_client(mocked.api_url, sleeps)


def test_post_message_given_html_200_is_malformed_and_retried(
    mocked: ScriptedSlack, client: SlackClient
) -> None:
    mocked.expect(POST, body="<html>maintenance</html>", content_type="text/html")
    mocked.expect(POST, body=OK_POST)

    ref = client.post_message(CHANNEL, text="hi")

    assert ref == SlackMessageRef(CHANNEL, "1790000000.000100")


def test_post_message_given_ok_false_without_code_raises_malformed(
    mocked: ScriptedSlack, client: SlackClient
) -> None:
    for _ in range(3):
        mocked.expect(POST, body={"ok": False})

    with pytest.raises(SlackMalformedResponseError) as raised:
        client.post_message(CHANNEL, text="hi")

    assert raised.value.code == "malformed_response"


def test_post_message_given_json_list_body_raises_malformed(
    mocked: ScriptedSlack, client: SlackClient
) -> None:
    for _ in range(3):
        mocked.expect(POST, body=[{"ok": True}])

    with pytest.raises(SlackMalformedResponseError) as raised:
        client.post_message(CHANNEL, text="hi")

    assert raised.value.code == "malformed_response"


def test_post_message_given_retry_after_http_date_waits_until_then(
    mocked: ScriptedSlack, client: SlackClient
) -> None:
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=50), usegmt=True)
    mocked.expect(POST, status=429, headers={"Retry-After": later}, body={"ok": False})
    mocked.expect(POST, body=OK_POST)

    client.post_message(CHANNEL, text="hi")

    assert client.retrier.waits[0] > 40


def test_post_message_given_retry_after_beyond_max_delay_raises_at_once(
    mocked: ScriptedSlack, client: SlackClient, sleeps: list[float]
) -> None:
    mocked.expect(POST, status=429, headers={"Retry-After": "600"}, body={"ok": False})

    with pytest.raises(SlackRateLimitedError) as raised:
        client.post_message(CHANNEL, text="hi")

    assert raised.value.retry_after == 600
    assert sleeps == [] and client.retrier.waits == []


def test_post_message_given_429_without_body_is_rate_limited(
    mocked: ScriptedSlack, client: SlackClient
) -> None:
    for _ in range(3):
        mocked.expect(POST, status=429, headers={"Retry-After": "2"}, body="")

    with pytest.raises(SlackRateLimitedError) as raised:
        client.post_message(CHANNEL, text="hi")

    assert (raised.value.code, raised.value.retry_after, raised.value.status) == (
        "ratelimited", 2.0, 429,
    )  # fmt: skip


def test_post_message_given_read_timeout_with_key_checks_history_before_reposting(
    mocked: ScriptedSlack, client: SlackClient
) -> None:
    mocked.expect(POST, body=OK_POST, delay=TIMEOUT + 0.5)
    mocked.expect(HISTORY, body={"ok": True, "messages": [], "has_more": False})
    mocked.expect(POST, body=OK_POST)

    ref = client.post_message(CHANNEL, text="hi", idempotency_key="outbox-9")

    assert ref.ts == "1790000000.000100"
    history_query = {
        "channel": CHANNEL,
        "include_all_metadata": "true",
        "oldest": f"{NOW - 900:.6f}",
        "limit": "200",
    }
    assert mocked.calls[1].form == history_query
    sent = mocked.calls[2].json
    assert sent["metadata"] == {
        "event_type": "okr_sync_message",
        "event_payload": {"idempotency_key": "outbox-9"},
    }


def test_post_message_given_connect_timeout_retries_without_history_lookup(
    sleeps: list[float],
) -> None:
    # Nothing was sent, so there is nothing to look for.
    hung = HungPort()
    servers: list[ScriptedSlack] = []

    def sleep(seconds: float) -> None:
        # Between the attempts Slack comes back on the same port.
        sleeps.append(seconds)
        hung.close()
        server = ScriptedSlack(port=hung.port).start()
        server.expect(POST, body=OK_POST)
        servers.append(server)

    try:
        client = make_client(hung.api_url, sleeps, sleep)
        client.post_message(CHANNEL, text="hi", idempotency_key="outbox-10")
    finally:
        hung.close()
        for server in servers:
            server.stop()

    [server] = servers
    server.assert_done()
    assert server.methods() == [POST]
    assert len(sleeps) == 1


def test_post_message_given_wrong_api_url_404_is_permanent(
    mocked: ScriptedSlack, client: SlackClient
) -> None:
    mocked.expect(POST, status=404, body="<html>Not Found</html>", content_type="text/html")

    with pytest.raises(SlackPermanentError) as raised:
        client.post_message(CHANNEL, text="hi")

    assert raised.value.code == "http_404"
    assert TOKEN not in str(raised.value)


def test_post_message_given_any_call_sends_bearer_token_and_json_charset(
    mocked: ScriptedSlack, client: SlackClient
) -> None:
    mocked.expect(POST, body=OK_POST)

    client.post_message(CHANNEL, text="hi")

    [call] = mocked.calls
    assert call.headers["Authorization"] == f"Bearer {TOKEN}"
    # slack_sdk writes "application/json;charset=utf-8": the same media type and charset.
    content_type = Message()
    content_type["Content-Type"] = call.headers["Content-Type"]
    assert (content_type.get_content_type(), content_type.get_param("charset")) == (
        "application/json", "utf-8",
    )  # fmt: skip
    assert call.json == {"channel": CHANNEL, "text": "hi"}
