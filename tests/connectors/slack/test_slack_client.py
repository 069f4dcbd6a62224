"""SlackClient over real loopback HTTP against the Slack sandbox."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pydantic import SecretStr

from okr_sync.connectors.errors import AuthError, PermanentError, RateLimitedError, TransientError
from okr_sync.connectors.http import RetryPolicy
from okr_sync.connectors.slack.client import (
    SlackAuthError,
    SlackChannelError,
    SlackClient,
    SlackError,
    SlackMessageGoneError,
    SlackMessageRef,
    SlackMetadata,
    SlackPayloadError,
    SlackPermanentError,
    SlackRateLimitedError,
    SlackTransientError,
)
from okr_sync.sandbox.slack.server import DEFAULT_CHANNEL, DEFAULT_TOKEN, SlackSandbox
from support.clocks import FakeMonotonic as FakeClock

CHANNEL = DEFAULT_CHANNEL
OTHER_CHANNEL = "C0OTHER0001"
TS_FORMAT = re.compile(r"^\d{10}\.\d{6}$")


def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


@pytest.fixture
def sandbox() -> Iterator[SlackSandbox]:
    with SlackSandbox(channels=(CHANNEL, OTHER_CHANNEL)) as running:
        yield running


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def make_client(
    sandbox: SlackSandbox, clock: FakeClock, *, token: str = DEFAULT_TOKEN, attempts: int = 4
) -> SlackClient:
    return SlackClient(
        sandbox.api_url,
        SecretStr(token),
        policy=RetryPolicy(max_attempts=attempts, timeout=5.0),
        clock=clock,
        sleep=clock.sleep,
    )


@pytest.fixture
def client(sandbox: SlackSandbox, clock: FakeClock) -> Iterator[SlackClient]:
    made = make_client(sandbox, clock)
    yield made
    made.close()


def test_post_message_given_known_channel_returns_channel_and_ts(
    client: SlackClient, sandbox: SlackSandbox
) -> None:
    ref = client.post_message(CHANNEL, text="Scorecard", blocks=[section("*CO-1* 0.53")])

    assert ref.channel == CHANNEL
    assert TS_FORMAT.match(ref.ts)
    [stored] = sandbox.top_level(CHANNEL)
    assert (stored.ts, stored.text) == (ref.ts, "Scorecard")
    assert stored.blocks == [section("*CO-1* 0.53")]


def test_post_message_given_channel_name_returns_channel_id(
    client: SlackClient, sandbox: SlackSandbox
) -> None:
    sandbox.add_channel("C0NAMED0001", name="okrs")

    ref = client.post_message("#okrs", text="hello")

    assert ref.channel == "C0NAMED0001"


def test_update_message_given_posted_message_edits_in_place_keeping_ts(
    client: SlackClient, sandbox: SlackSandbox
) -> None:
    posted = client.post_message(CHANNEL, text="v1", blocks=[section("score 0.30")])

    updated = client.update_message(CHANNEL, posted.ts, text="v2", blocks=[section("score 0.42")])

    assert updated == posted
    [stored] = sandbox.messages(CHANNEL)
    assert stored.edited and stored.edited_ts is not None
    assert (stored.text, stored.blocks) == ("v2", [section("score 0.42")])
    assert [(v.text, v.blocks) for v in stored.edits] == [("v1", [section("score 0.30")])]


def test_post_message_given_thread_ts_posts_reply_under_parent(
    client: SlackClient, sandbox: SlackSandbox
) -> None:
    parent = client.post_message(CHANNEL, text="standing scorecard")

    reply = client.post_message(CHANNEL, text="+2 done", thread_ts=parent.ts)

    assert reply.ts != parent.ts
    assert [m.ts for m in sandbox.top_level(CHANNEL)] == [parent.ts]
    assert [(m.ts, m.text) for m in sandbox.replies(CHANNEL, parent.ts)] == [(reply.ts, "+2 done")]
    thread = client.recent_messages(CHANNEL, thread_ts=parent.ts)
    assert [m.ts for m in thread] == [parent.ts, reply.ts]


def test_post_message_given_unknown_thread_raises_message_gone(client: SlackClient) -> None:
    with pytest.raises(SlackMessageGoneError) as raised:
        client.post_message(CHANNEL, text="reply", thread_ts="1500000000.000001")

    assert raised.value.code == "thread_not_found"


def test_post_message_given_metadata_and_key_stores_both_and_finds_message_by_key(
    client: SlackClient, sandbox: SlackSandbox
) -> None:
    metadata = SlackMetadata("okr_scorecard", {"route": "enterprise"})
    ref = client.post_message(CHANNEL, text="card", metadata=metadata, idempotency_key="run-7:ent")
    client.post_message(CHANNEL, text="other", idempotency_key="run-7:other")

    [stored] = [m for m in sandbox.messages(CHANNEL) if m.ts == ref.ts]
    assert stored.metadata == {
        "event_type": "okr_scorecard",
        "event_payload": {"route": "enterprise", "idempotency_key": "run-7:ent"},
    }
    recent = client.recent_messages(CHANNEL)
    assert [m.idempotency_key for m in recent] == ["run-7:other", "run-7:ent"]
    assert client.find_message(CHANNEL, "run-7:ent") == ref
    assert client.find_message(CHANNEL, "run-7:missing") is None


def test_recent_messages_given_small_pages_follows_cursor_newest_first(
    clock: FakeClock,
) -> None:
    with SlackSandbox(page_cap=2) as sandbox:
        client = make_client(sandbox, clock)
        refs = [client.post_message(CHANNEL, text=f"m{n}") for n in range(5)]

        recent = client.recent_messages(CHANNEL, limit=5)

        assert [m.ts for m in recent] == [r.ts for r in reversed(refs)]
        assert sandbox.counters["conversations.history"] == 3


def test_post_message_given_lost_reply_and_key_does_not_post_twice(
    client: SlackClient, sandbox: SlackSandbox
) -> None:
    sandbox.inject_error(
        "internal_error", status=500, method="chat.postMessage", after_processing=True
    )

    ref = client.post_message(CHANNEL, text="change note", idempotency_key="outbox-41")

    [stored] = sandbox.messages(CHANNEL)
    assert ref == SlackMessageRef(CHANNEL, stored.ts)
    assert sandbox.counters["chat.postMessage"] == 1
    assert sandbox.counters["conversations.history"] == 1


def test_post_message_given_lost_reply_without_key_posts_again(
    client: SlackClient, sandbox: SlackSandbox
) -> None:
    # Why callers should pass an idempotency key: without one, a retry cannot tell.
    sandbox.inject_error("fatal", method="chat.postMessage", after_processing=True)

    client.post_message(CHANNEL, text="change note")

    assert len(sandbox.messages(CHANNEL)) == 2


def test_post_message_given_429_with_retry_after_waits_at_least_that_long(
    client: SlackClient, sandbox: SlackSandbox, clock: FakeClock
) -> None:
    sandbox.inject_error("ratelimited", count=2, retry_after=7)

    client.post_message(CHANNEL, text="after the storm")

    assert len(client.retrier.waits) == 2
    assert all(wait >= 7 for wait in client.retrier.waits)
    assert sum(1 for s in clock.sleeps if s >= 7) == 2
    assert len(sandbox.messages(CHANNEL)) == 1
    assert sandbox.counters["chat.postMessage:ratelimited"] == 2


@pytest.mark.parametrize(
    ("code", "status"),
    [("fatal", 200), ("internal_error", 200), ("service_unavailable", 503), ("bad_gateway", 502)],
)
def test_post_message_given_transient_failure_retries_then_posts(
    client: SlackClient, sandbox: SlackSandbox, code: str, status: int
) -> None:
    sandbox.inject_error(code, status=status)

    client.post_message(CHANNEL, text="hello")

    assert len(sandbox.messages(CHANNEL)) == 1
    assert len(client.retrier.waits) == 1


def test_post_message_given_persistent_rate_limit_raises_rate_limited_after_attempts(
    client: SlackClient, sandbox: SlackSandbox
) -> None:
    sandbox.inject_error("ratelimited", count=10, retry_after=2)

    with pytest.raises(SlackRateLimitedError) as raised:
        client.post_message(CHANNEL, text="hello")

    assert isinstance(raised.value, RateLimitedError | TransientError)
    assert raised.value.retry_after == 2
    assert sandbox.counters["chat.postMessage"] == 4


Setup = Callable[[SlackSandbox], None]


def _nothing(sandbox: SlackSandbox) -> None:
    return None


def _outsider(sandbox: SlackSandbox) -> None:
    sandbox.add_channel("C0OUTSIDE01", member=False)


def _archived(sandbox: SlackSandbox) -> None:
    sandbox.add_channel("C0ARCHIVE01", archived=True)


PERMANENT_POST_CASES: list[tuple[str, dict[str, Any], Setup, type[SlackError]]] = [
    ("channel_not_found", {"channel": "C0UNKNOWN01"}, _nothing, SlackChannelError),
    ("not_in_channel", {"channel": "C0OUTSIDE01"}, _outsider, SlackChannelError),
    ("is_archived", {"channel": "C0ARCHIVE01"}, _archived, SlackChannelError),
    ("invalid_auth", {"token": "xoxb-wrong-token"}, _nothing, SlackAuthError),
    ("not_authed", {"token": ""}, _nothing, SlackAuthError),
    ("missing_scope", {}, lambda s: s.inject_error("missing_scope"), SlackAuthError),
    ("account_inactive", {}, lambda s: s.inject_error("account_inactive"), SlackAuthError),
    ("token_revoked", {}, lambda s: s.inject_error("token_revoked"), SlackAuthError),
    ("invalid_blocks", {"blocks": [section("x")] * 51}, _nothing, SlackPayloadError),
    ("invalid_blocks", {"blocks": [section("x" * 3001)]}, _nothing, SlackPayloadError),
    ("msg_too_long", {"text": "x" * 40_001}, _nothing, SlackPayloadError),
    ("no_text", {"text": ""}, _nothing, SlackPayloadError),
    ("msg_blocks_too_long", {}, lambda s: s.inject_error("msg_blocks_too_long"), SlackPayloadError),
    ("some_new_error", {}, lambda s: s.inject_error("some_new_error"), SlackPermanentError),
]


@pytest.mark.parametrize(
    ("code", "call", "setup", "kind"),
    PERMANENT_POST_CASES,
    ids=[f"{case[0]}-{n}" for n, case in enumerate(PERMANENT_POST_CASES)],
)
def test_post_message_given_permanent_error_raises_typed_error_naming_channel_and_code(
    sandbox: SlackSandbox,
    clock: FakeClock,
    code: str,
    call: dict[str, Any],
    setup: Setup,
    kind: type[SlackError],
) -> None:
    setup(sandbox)
    client = make_client(sandbox, clock, token=call.get("token", DEFAULT_TOKEN))
    channel = call.get("channel", CHANNEL)

    with pytest.raises(kind) as raised:
        client.post_message(channel, text=call.get("text", "hello"), blocks=call.get("blocks"))

    error = raised.value
    assert isinstance(error, PermanentError)
    assert isinstance(error, AuthError) == (kind is SlackAuthError)
    assert (error.code, error.method, error.channel) == (code, "chat.postMessage", channel)
    assert code in str(error) and channel in str(error) and "chat.postMessage" in str(error)
    assert sandbox.counters["chat.postMessage"] == 1, "permanent errors are not retried"


def test_post_message_given_invalid_blocks_error_carries_slack_pointer(
    client: SlackClient,
) -> None:
    with pytest.raises(SlackPayloadError) as raised:
        client.post_message(CHANNEL, text="x", blocks=[section("x" * 3001)])

    assert "/blocks/0/text" in str(raised.value)


@pytest.mark.parametrize("code", ["message_not_found", "cant_update_message", "edit_window_closed"])
def test_update_message_given_message_gone_raises_message_gone_error(
    client: SlackClient, sandbox: SlackSandbox, code: str
) -> None:
    ref = client.post_message(CHANNEL, text="v1")
    ts = ref.ts
    if code == "message_not_found":
        ts = "1400000000.000001"
    else:
        sandbox.inject_error(code, method="chat.update")

    with pytest.raises(SlackMessageGoneError) as raised:
        client.update_message(CHANNEL, ts, text="v2")

    assert (raised.value.code, raised.value.method) == (code, "chat.update")
    assert f"chat.update to channel {CHANNEL} failed: {code}" in str(raised.value)


def test_pacing_given_two_posts_to_same_channel_waits_about_a_second_without_429(
    clock: FakeClock,
) -> None:
    # The sandbox enforces Slack's one message per second per channel on the same fake time.
    with SlackSandbox(channel_interval=1.0, clock=clock) as sandbox:
        client = make_client(sandbox, clock)

        client.post_message(CHANNEL, text="one")
        client.post_message(CHANNEL, text="two")

        [(channel, wait)] = client.pacer.waits
        assert channel == CHANNEL
        assert wait == pytest.approx(1.0)
        assert sandbox.counters["chat.postMessage:ok"] == 2
        assert sandbox.counters["chat.postMessage:ratelimited"] == 0


def test_pacing_given_sandbox_rate_limit_and_no_pacer_gets_429(clock: FakeClock) -> None:
    # The same sandbox limit without client pacing: proves the test above can fail.
    with SlackSandbox(channel_interval=1.0, clock=clock) as sandbox:
        client = SlackClient(
            sandbox.api_url, SecretStr(DEFAULT_TOKEN), clock=clock, sleep=clock.sleep,
            channel_interval=0.0, policy=RetryPolicy(max_attempts=3, timeout=5.0),
        )  # fmt: skip

        client.post_message(CHANNEL, text="one")
        client.post_message(CHANNEL, text="two")

        assert sandbox.counters["chat.postMessage:ratelimited"] == 1
        assert client.retrier.waits[0] >= 1.0


def test_pacing_given_other_channel_does_not_wait(client: SlackClient) -> None:
    client.post_message(CHANNEL, text="one")
    client.post_message(OTHER_CHANNEL, text="two")

    assert client.pacer.waits == []


def test_pacing_given_post_then_update_same_channel_counts_both(
    client: SlackClient, clock: FakeClock
) -> None:
    ref = client.post_message(CHANNEL, text="one")
    clock.now += 0.25

    client.update_message(CHANNEL, ref.ts, text="two")

    [(channel, wait)] = client.pacer.waits
    assert channel == CHANNEL
    assert wait == pytest.approx(0.75)


def test_errors_and_repr_given_secret_token_never_show_it(
    sandbox: SlackSandbox, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "xoxb-1234-super-secret-token"
    client = make_client(sandbox, clock, token=secret)
    caplog.set_level(logging.DEBUG)

    with pytest.raises(SlackAuthError) as raised:
        client.post_message(CHANNEL, text="hello")

    error = raised.value
    texts = [str(error), repr(error), repr(error.args), repr(client), caplog.text]
    assert all(secret not in text for text in texts)
    assert "1234" not in repr(client)


def test_errors_given_unreachable_server_are_transient_without_token(clock: FakeClock) -> None:
    with SlackSandbox() as sandbox:
        api_url = sandbox.api_url
    secret = "xoxb-unreachable-secret"
    client = SlackClient(
        api_url,
        SecretStr(secret),
        policy=RetryPolicy(max_attempts=2, timeout=2.0),
        clock=clock,
        sleep=clock.sleep,
    )

    with pytest.raises(SlackTransientError) as raised:
        client.post_message(CHANNEL, text="hello")

    assert raised.value.code == "connection_error"
    assert secret not in str(raised.value)
    assert raised.value.__cause__ is None and raised.value.__suppress_context__


def test_auth_test_given_valid_token_returns_identity(client: SlackClient) -> None:
    assert client.auth_test()["bot_id"] == "B0SANDBOX"
