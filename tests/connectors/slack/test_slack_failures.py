"""SlackClient under transport failures and uncertain posts (a strict scripted loopback Slack)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pydantic import SecretStr

from okr_sync.connectors.errors import PermanentError
from okr_sync.connectors.http import RetryPolicy
from okr_sync.connectors.slack.client import (
    SlackClient,
    SlackMessageRef,
    SlackPermanentError,
    SlackTransientError,
)
from okr_sync.sandbox.slack.server import DEFAULT_CHANNEL, DEFAULT_TOKEN, SlackSandbox
from support.scripted_slack import Reply, ScriptedSlack, refused_url, scripted

POST = "chat.postMessage"
HISTORY = "conversations.history"
REPLIES = "conversations.replies"
CHANNEL = "C0123456789"
TOKEN = "xoxb-failures-secret"
NOW = 1_790_000_000.0
POSTED_TS = "1790000000.000100"
OK_POST = {"ok": True, "channel": CHANNEL, "ts": POSTED_TS, "message": {}}
# A dropped connection before any reply: the post may or may not have gone out.
DROPPED = Reply(reset=True)


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
def mocked() -> Iterator[ScriptedSlack]:
    with scripted() as server:
        yield server
        server.assert_done()


@pytest.fixture
def sleeps() -> list[float]:
    return []


def make_client(
    sleeps: list[float], api_url: str, *, token: str = TOKEN, attempts: int = 3
) -> SlackClient:
    return SlackClient(
        api_url,
        SecretStr(token),
        policy=RetryPolicy(max_attempts=attempts, timeout=1.0),
        sleep=sleeps.append,
        channel_interval=0.0,
        wall_clock=lambda: NOW,
    )


@pytest.fixture
def client(sleeps: list[float], mocked: ScriptedSlack) -> SlackClient:
    return make_client(sleeps, mocked.api_url)


def posts(mocked: ScriptedSlack) -> int:
    return mocked.count(POST)


# -- requests that cannot work as set up ------------------------------------------------

Setup = Callable[[ScriptedSlack, list[float]], SlackClient]


def _tls_to_plain_http(mocked: ScriptedSlack, sleeps: list[float]) -> SlackClient:
    return make_client(sleeps, mocked.api_url.replace("http://", "https://"))


def _token_with_newline(mocked: ScriptedSlack, sleeps: list[float]) -> SlackClient:
    return make_client(sleeps, mocked.api_url, token=f"{TOKEN}\nX-Injected: 1")


def _invalid_url(mocked: ScriptedSlack, sleeps: list[float]) -> SlackClient:
    return make_client(sleeps, f"http://127.0.0.1:{TOKEN}/api/")


def _redirect(mocked: ScriptedSlack, sleeps: list[float]) -> SlackClient:
    mocked.expect(POST, status=307, headers={"Location": f"{mocked.api_url}{POST}?t={TOKEN}"})
    return make_client(sleeps, mocked.api_url)


@pytest.mark.parametrize(
    ("setup", "code", "named"),
    [
        (_tls_to_plain_http, "tls_error", "SSLError"),
        (_token_with_newline, "request_error", "header"),
        (_invalid_url, "request_error", "InvalidURL"),
        (_redirect, "request_error", "307"),
    ],
    ids=["tls", "token-with-newline", "invalid-url", "redirect"],
)
def test_post_message_given_non_network_request_error_is_permanent_naming_only_its_type(
    mocked: ScriptedSlack, sleeps: list[float], setup: Setup, code: str, named: str
) -> None:
    client = setup(mocked, sleeps)

    with pytest.raises(SlackPermanentError) as caught:
        client.post_message(CHANNEL, text="hi", idempotency_key="outbox-1")

    error = caught.value
    assert isinstance(error, PermanentError)
    assert error.code == code
    assert named in str(error)
    assert TOKEN not in str(error) and TOKEN not in repr(error.args)
    assert error.__cause__ is None and error.__suppress_context__
    assert client.retrier.waits == []


@pytest.mark.parametrize(
    "reply", [Reply(body=OK_POST, truncate=True), DROPPED], ids=["truncated", "reset"]
)
def test_post_message_given_broken_reply_body_is_ambiguous_and_checks_history_first(
    mocked: ScriptedSlack, client: SlackClient, reply: Reply
) -> None:
    mocked.expect(POST, reply)
    mocked.expect(HISTORY, body=history_page(keyed_message(POSTED_TS, "outbox-2")))

    ref = client.post_message(CHANNEL, text="hi", idempotency_key="outbox-2")

    assert ref == SlackMessageRef(CHANNEL, POSTED_TS)
    assert posts(mocked) == 1


def test_post_message_given_broken_reply_body_without_retries_is_transient_without_token(
    mocked: ScriptedSlack, sleeps: list[float]
) -> None:
    mocked.expect(POST, body={**OK_POST, "note": TOKEN}, truncate=True)

    with pytest.raises(SlackTransientError) as caught:
        make_client(sleeps, mocked.api_url, attempts=1).post_message(CHANNEL, text="hi")

    assert (caught.value.code, caught.value.ambiguous) == ("incomplete_response", True)
    assert TOKEN not in str(caught.value)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_post_message_given_token_with_trailing_newline_sends_the_stripped_token(
    mocked: ScriptedSlack, sleeps: list[float]
) -> None:
    # As read from an env var or a secrets file written by `echo`.
    client = make_client(sleeps, mocked.api_url, token=f"  {TOKEN}\n")
    mocked.expect(POST, body=OK_POST)

    assert client.post_message(CHANNEL, text="hi") == SlackMessageRef(CHANNEL, POSTED_TS)
    assert mocked.calls[0].headers["Authorization"] == f"Bearer {TOKEN}"


def test_post_message_given_token_with_inner_newline_sends_nothing_and_logs_no_token(
    mocked: ScriptedSlack, sleeps: list[float], caplog: pytest.LogCaptureFixture
) -> None:
    # http.client would refuse the header quoting its value, and slack_sdk logs that text.
    caplog.set_level(logging.DEBUG)
    client = make_client(sleeps, mocked.api_url, token=f"{TOKEN}\r\nX-Injected: 1")

    with pytest.raises(SlackPermanentError):
        client.post_message(CHANNEL, text="hi")

    assert mocked.calls == []
    assert TOKEN not in caplog.text


def test_logs_given_debug_level_and_uncertain_post_never_show_the_token(
    mocked: ScriptedSlack, client: SlackClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    mocked.expect(POST, DROPPED)
    mocked.expect(HISTORY, body=history_page())
    mocked.expect(POST, body=OK_POST)

    client.post_message(CHANNEL, text="hi", idempotency_key="outbox-11")

    sdk_records = [r for r in caplog.records if r.name == "okr_sync.connectors.slack.sdk"]
    # Traces at DEBUG; the dropped post is the caller's to report once, not slack_sdk's.
    assert {r.levelno for r in sdk_records} == {logging.DEBUG}
    assert TOKEN not in caplog.text


@pytest.mark.parametrize(
    ("no_proxy", "goes_direct"), [("127.0.0.1", True), ("", False)], ids=["bypassed", "proxied"]
)
def test_post_message_given_https_proxy_honours_no_proxy_for_the_api_host(
    mocked: ScriptedSlack, sleeps: list[float], monkeypatch: pytest.MonkeyPatch,
    no_proxy: str, goes_direct: bool,
) -> None:  # fmt: skip
    # slack_sdk hands HTTPS_PROXY to urllib, whose ProxyHandler honours NO_PROXY, as requests did.
    for name in ("https_proxy", "http_proxy", "HTTP_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTPS_PROXY", refused_url().removesuffix("/api/"))
    monkeypatch.setenv("NO_PROXY", no_proxy)
    client = make_client(sleeps, mocked.api_url, attempts=1)
    if goes_direct:
        mocked.expect(POST, body=OK_POST)
        assert client.post_message(CHANNEL, text="hi") == SlackMessageRef(CHANNEL, POSTED_TS)
    else:
        with pytest.raises(SlackTransientError) as caught:
            client.post_message(CHANNEL, text="hi")
        assert caught.value.code == "connection_error"
        assert mocked.calls == []


# -- uncertain posts ------------------------------------------------------------------------


def test_post_message_given_ok_reply_without_ts_looks_up_history_instead_of_reposting(
    mocked: ScriptedSlack, client: SlackClient
) -> None:
    mocked.expect(POST, body={"ok": True, "channel": CHANNEL})
    mocked.expect(HISTORY, body=history_page(keyed_message(POSTED_TS, "outbox-3")))

    ref = client.post_message(CHANNEL, text="hi", idempotency_key="outbox-3")

    assert ref == SlackMessageRef(CHANNEL, POSTED_TS)
    assert posts(mocked) == 1


def test_post_message_given_history_lookup_refused_raises_ambiguous_transient_not_permanent(
    mocked: ScriptedSlack, client: SlackClient
) -> None:
    # Without channels:history the lookup cannot tell; reposting could duplicate.
    mocked.expect(POST, DROPPED)
    mocked.expect(HISTORY, body={"ok": False, "error": "missing_scope"})
    mocked.expect(HISTORY, body={"ok": False, "error": "missing_scope"})

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
    mocked: ScriptedSlack, client: SlackClient
) -> None:
    mocked.expect(POST, DROPPED)
    mocked.expect(HISTORY, status=503, body={"ok": False, "error": "service_unavailable"})
    mocked.expect(HISTORY, status=503, body={"ok": False, "error": "service_unavailable"})

    with pytest.raises(SlackTransientError) as caught:
        client.post_message(CHANNEL, text="hi", idempotency_key="outbox-5")

    assert caught.value.code == "outcome_unknown"
    # One wait per outer attempt: the lookup itself is never retried in place.
    assert len(client.retrier.waits) == 2
    assert len(mocked.calls) == 3


def test_post_message_given_rate_limited_lookup_waits_retry_after_then_finds_post(
    mocked: ScriptedSlack, client: SlackClient
) -> None:
    mocked.expect(POST, DROPPED)
    mocked.expect(HISTORY, status=429, headers={"Retry-After": "9"}, body={"ok": False})
    mocked.expect(HISTORY, body=history_page(keyed_message(POSTED_TS, "outbox-6")))

    ref = client.post_message(CHANNEL, text="hi", idempotency_key="outbox-6")

    assert ref.ts == POSTED_TS
    assert client.retrier.waits[1] >= 9
    assert posts(mocked) == 1


def test_post_message_given_lookup_on_later_page_follows_cursor_a_bounded_number_of_times(
    mocked: ScriptedSlack, client: SlackClient
) -> None:
    mocked.expect(POST, DROPPED)
    for page in range(5):
        mocked.expect(HISTORY, body=history_page(keyed_message(f"17.{page}", "other"), cursor="c"))
    mocked.expect(POST, body=OK_POST)

    client.post_message(CHANNEL, text="hi", idempotency_key="outbox-7")

    assert mocked.count(HISTORY) == 5
    assert posts(mocked) == 2


# -- threads ----------------------------------------------------------------------------------


def test_find_message_given_thread_and_no_oldest_searches_since_lookback(
    mocked: ScriptedSlack, client: SlackClient
) -> None:
    query = {
        "channel": CHANNEL,
        "include_all_metadata": "true",
        "ts": "1789990000.000001",
        "oldest": f"{NOW - 900:.6f}",
        "limit": "200",
    }
    mocked.expect(REPLIES, body=history_page(keyed_message(POSTED_TS, "outbox-8")))

    found = client.find_message(CHANNEL, "outbox-8", thread_ts="1789990000.000001")

    assert found == SlackMessageRef(CHANNEL, POSTED_TS)
    assert mocked.calls[0].form == query


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
