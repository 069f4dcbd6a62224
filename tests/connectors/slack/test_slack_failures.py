"""SlackClient under transport failures and uncertain posts (strict ``responses``, ordered)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
import responses
from pydantic import SecretStr
from responses import matchers
from responses.registries import OrderedRegistry

from okr_sync.connectors.errors import PermanentError
from okr_sync.connectors.http import RetryPolicy
from okr_sync.connectors.slack.client import (
    SlackClient,
    SlackMessageRef,
    SlackPermanentError,
    SlackTransientError,
)
from okr_sync.sandbox.slack.server import DEFAULT_CHANNEL, DEFAULT_TOKEN, SlackSandbox

API = "https://slack.test/api/"
POST = API + "chat.postMessage"
HISTORY = API + "conversations.history"
REPLIES = API + "conversations.replies"
CHANNEL = "C0123456789"
TOKEN = "xoxb-failures-secret"
NOW = 1_790_000_000.0
POSTED_TS = "1790000000.000100"
OK_POST = {"ok": True, "channel": CHANNEL, "ts": POSTED_TS, "message": {}}


def history_page(*messages: dict[str, Any], cursor: str = "") -> dict[str, Any]:
    return {
        "ok": True,
        "messages": list(messages),
        "has_more": bool(cursor),
        "response_metadata": {"next_cursor": cursor},
    }


def keyed_message(ts: str, key: str) -> dict[str, Any]:
    return {
        "type": "message",
        "ts": ts,
        "text": "posted",
        "metadata": {"event_type": "okr_sync_message", "event_payload": {"idempotency_key": key}},
    }


@pytest.fixture
def mocked() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(
        assert_all_requests_are_fired=True, registry=OrderedRegistry
    ) as rsps:
        yield rsps


@pytest.fixture
def sleeps() -> list[float]:
    return []


def make_client(sleeps: list[float], *, token: str = TOKEN, attempts: int = 3) -> SlackClient:
    return SlackClient(
        API,
        SecretStr(token),
        policy=RetryPolicy(max_attempts=attempts, timeout=5.0),
        sleep=sleeps.append,
        channel_interval=0.0,
        wall_clock=lambda: NOW,
    )


@pytest.fixture
def client(sleeps: list[float]) -> SlackClient:
    return make_client(sleeps)


def posts(mocked: responses.RequestsMock) -> int:
    return sum(1 for call in mocked.calls if call.request.url == POST)


# -- requests exceptions ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("raised", "code"),
    [
        (requests.exceptions.SSLError(f"certificate verify failed; Bearer {TOKEN}"), "tls_error"),
        (requests.exceptions.InvalidHeader(f"Invalid header value 'Bearer {TOKEN}\\n'"),
         "request_error"),
        (requests.exceptions.InvalidURL(f"Failed to parse: {API}?token={TOKEN}"), "request_error"),
        (requests.exceptions.TooManyRedirects(f"Exceeded 30 redirects; {TOKEN}"), "request_error"),
    ],
)  # fmt: skip
def test_post_message_given_non_network_request_error_is_permanent_naming_only_its_type(
    mocked: responses.RequestsMock, client: SlackClient, raised: Exception, code: str
) -> None:
    mocked.post(POST, body=raised)

    with pytest.raises(SlackPermanentError) as caught:
        client.post_message(CHANNEL, text="hi", idempotency_key="outbox-1")

    error = caught.value
    assert isinstance(error, PermanentError)
    assert error.code == code
    assert type(raised).__name__ in str(error)
    assert TOKEN not in str(error) and TOKEN not in repr(error.args)
    assert error.__cause__ is None and error.__suppress_context__
    assert client.retrier.waits == []


@pytest.mark.parametrize(
    "raised",
    [
        requests.exceptions.ChunkedEncodingError(f"Connection broken; {TOKEN}"),
        requests.exceptions.ContentDecodingError(f"Bad content-encoding; {TOKEN}"),
    ],
)  # fmt: skip
def test_post_message_given_broken_reply_body_is_ambiguous_and_checks_history_first(
    mocked: responses.RequestsMock, client: SlackClient, raised: Exception
) -> None:
    mocked.post(POST, body=raised)
    mocked.get(HISTORY, json=history_page(keyed_message(POSTED_TS, "outbox-2")))

    ref = client.post_message(CHANNEL, text="hi", idempotency_key="outbox-2")

    assert ref == SlackMessageRef(CHANNEL, POSTED_TS)
    assert posts(mocked) == 1


def test_post_message_given_broken_reply_body_without_retries_is_transient_without_token(
    mocked: responses.RequestsMock, sleeps: list[float]
) -> None:
    mocked.post(POST, body=requests.exceptions.ChunkedEncodingError(f"broken; {TOKEN}"))

    with pytest.raises(SlackTransientError) as caught:
        make_client(sleeps, attempts=1).post_message(CHANNEL, text="hi")

    assert (caught.value.code, caught.value.ambiguous) == ("incomplete_response", True)
    assert TOKEN not in str(caught.value)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_post_message_given_token_with_trailing_newline_sends_the_stripped_token(
    mocked: responses.RequestsMock, sleeps: list[float]
) -> None:
    # As read from an env var or a secrets file written by `echo`.
    client = make_client(sleeps, token=f"  {TOKEN}\n")
    mocked.post(
        POST,
        json=OK_POST,
        match=[matchers.header_matcher({"Authorization": f"Bearer {TOKEN}"})],
    )

    assert client.post_message(CHANNEL, text="hi") == SlackMessageRef(CHANNEL, POSTED_TS)


# -- uncertain posts ------------------------------------------------------------------------


def test_post_message_given_ok_reply_without_ts_looks_up_history_instead_of_reposting(
    mocked: responses.RequestsMock, client: SlackClient
) -> None:
    mocked.post(POST, json={"ok": True, "channel": CHANNEL})
    mocked.get(HISTORY, json=history_page(keyed_message(POSTED_TS, "outbox-3")))

    ref = client.post_message(CHANNEL, text="hi", idempotency_key="outbox-3")

    assert ref == SlackMessageRef(CHANNEL, POSTED_TS)
    assert posts(mocked) == 1


def test_post_message_given_history_lookup_refused_raises_ambiguous_transient_not_permanent(
    mocked: responses.RequestsMock, client: SlackClient
) -> None:
    # Without channels:history the lookup cannot tell; reposting could duplicate.
    mocked.post(POST, body=requests.ReadTimeout("read timed out"))
    mocked.get(HISTORY, json={"ok": False, "error": "missing_scope"})
    mocked.get(HISTORY, json={"ok": False, "error": "missing_scope"})

    with pytest.raises(SlackTransientError) as caught:
        client.post_message(CHANNEL, text="hi", idempotency_key="outbox-4")

    error = caught.value
    assert (error.code, error.method, error.ambiguous) == (
        "outcome_unknown",
        "chat.postMessage",
        True,
    )
    assert "missing_scope" in str(error)
    assert posts(mocked) == 1


def test_post_message_given_failing_lookup_does_not_nest_retries(
    mocked: responses.RequestsMock, client: SlackClient
) -> None:
    mocked.post(POST, body=requests.ReadTimeout("read timed out"))
    mocked.get(HISTORY, status=503, json={"ok": False, "error": "service_unavailable"})
    mocked.get(HISTORY, status=503, json={"ok": False, "error": "service_unavailable"})

    with pytest.raises(SlackTransientError) as caught:
        client.post_message(CHANNEL, text="hi", idempotency_key="outbox-5")

    assert caught.value.code == "outcome_unknown"
    # One wait per outer attempt: the lookup itself is never retried in place.
    assert len(client.retrier.waits) == 2
    assert len(mocked.calls) == 3


def test_post_message_given_rate_limited_lookup_waits_retry_after_then_finds_post(
    mocked: responses.RequestsMock, client: SlackClient
) -> None:
    mocked.post(POST, body=requests.ReadTimeout("read timed out"))
    mocked.get(HISTORY, status=429, headers={"Retry-After": "9"}, json={"ok": False})
    mocked.get(HISTORY, json=history_page(keyed_message(POSTED_TS, "outbox-6")))

    ref = client.post_message(CHANNEL, text="hi", idempotency_key="outbox-6")

    assert ref.ts == POSTED_TS
    assert client.retrier.waits[1] >= 9
    assert posts(mocked) == 1


def test_post_message_given_lookup_on_later_page_follows_cursor_a_bounded_number_of_times(
    mocked: responses.RequestsMock, client: SlackClient
) -> None:
    mocked.post(POST, body=requests.ReadTimeout("read timed out"))
    for page in range(5):
        mocked.get(HISTORY, json=history_page(keyed_message(f"17.{page}", "other"), cursor="c"))
    mocked.post(POST, json=OK_POST)

    client.post_message(CHANNEL, text="hi", idempotency_key="outbox-7")

    assert sum(1 for call in mocked.calls if call.request.url.startswith(HISTORY)) == 5
    assert posts(mocked) == 2


# -- threads ----------------------------------------------------------------------------------


def test_find_message_given_thread_and_no_oldest_searches_since_lookback(
    mocked: responses.RequestsMock, client: SlackClient
) -> None:
    query = {
        "channel": CHANNEL,
        "include_all_metadata": "true",
        "ts": "1789990000.000001",
        "oldest": f"{NOW - 900:.6f}",
        "limit": "200",
    }
    mocked.get(
        REPLIES,
        json=history_page(keyed_message(POSTED_TS, "outbox-8")),
        match=[matchers.query_param_matcher(query)],
    )

    found = client.find_message(CHANNEL, "outbox-8", thread_ts="1789990000.000001")

    assert found == SlackMessageRef(CHANNEL, POSTED_TS)


def test_find_message_given_long_thread_finds_newest_reply_beyond_the_limit() -> None:
    wall = {"now": NOW}
    with SlackSandbox(wall_clock=lambda: wall["now"]) as sandbox:
        client = SlackClient(
            sandbox.api_url, SecretStr(DEFAULT_TOKEN), channel_interval=0.0,
            policy=RetryPolicy(max_attempts=2, timeout=5.0), sleep=lambda _: None,
            wall_clock=lambda: wall["now"],
        )  # fmt: skip
        parent = client.post_message(DEFAULT_CHANNEL, text="standing scorecard")
        for n in range(6):
            client.post_message(DEFAULT_CHANNEL, text=f"old note {n}", thread_ts=parent.ts)
        wall["now"] += 3600
        newest = client.post_message(
            DEFAULT_CHANNEL, text="new note", thread_ts=parent.ts, idempotency_key="note-9"
        )

        found = client.find_message(DEFAULT_CHANNEL, "note-9", thread_ts=parent.ts, limit=5)

        assert found == newest
