"""The Slack rows of the one HTTP policy in force, over real loopback HTTP.

Each row scripts what Slack (or the network) does, posts one message with the
production client, and checks the typed error (or the message found or posted),
every request that reached the server in order, and every wait the Retrier
recorded. The policy has no jitter, so the backoff waits are exact.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from pydantic import SecretStr

from okr_sync.connectors.http import RetryPolicy
from okr_sync.connectors.slack.client import (
    SlackAuthError,
    SlackChannelError,
    SlackClient,
    SlackError,
    SlackMalformedResponseError,
    SlackMessageRef,
    SlackPermanentError,
    SlackRateLimitedError,
    SlackTransientError,
)
from support.scripted_slack import Reply, ScriptedSlack, refused_url, scripted

POST = "chat.postMessage"
HISTORY = "conversations.history"
CHANNEL = "C0123456789"
TOKEN = "xoxb-error-table-secret"
KEY = "outbox-77"
POSTED = SlackMessageRef(CHANNEL, "1790000000.000100")
FOUND = SlackMessageRef(CHANNEL, "1790000000.000042")
OK_POST = {"ok": True, "channel": CHANNEL, "ts": POSTED.ts}
NOTHING_YET = {"ok": True, "messages": [], "has_more": False}
ALREADY_POSTED = {
    "ok": True,
    "has_more": False,
    "messages": [{"type": "message", "ts": FOUND.ts, "text": "hi", "metadata": {
        "event_type": "okr_sync_message", "event_payload": {"idempotency_key": KEY}}}],
}  # fmt: skip
POLICY = RetryPolicy(max_attempts=3, base_delay=0.5, jitter=0.0, max_delay=60.0, timeout=1.0)
HTML = "text/html"


@dataclass(frozen=True)
class Row:
    name: str
    script: list[tuple[str, Reply]]
    outcome: type[SlackError] | SlackMessageRef
    requests: list[str]
    waits: list[float]
    code: str | None = None
    key: str | None = KEY
    server: str = "scripted"  # or "refused" (nothing listens), "tls" (https to a plain server)
    extra: dict[str, Any] = field(default_factory=dict)


ROWS = [
    Row("429-with-retry-after-waits-at-least-it",
        [(POST, Reply(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "7"})),
         (POST, Reply(body=OK_POST))],
        POSTED, [POST, POST], [7.0]),
    Row("429-without-retry-after-backs-off-then-gives-up",
        [(POST, Reply(429, ""))] * 3,
        SlackRateLimitedError, [POST] * 3, [0.5, 1.0], code="ratelimited"),
    Row("429-beyond-max-delay-is-handed-back-at-once",
        [(POST, Reply(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "600"}))],
        SlackRateLimitedError, [POST], [], code="ratelimited"),
    Row("500-html-is-ambiguous-looks-up-then-posts",
        [(POST, Reply(500, "<html>oops</html>", content_type=HTML)),
         (HISTORY, Reply(body=NOTHING_YET)), (POST, Reply(body=OK_POST))],
        POSTED, [POST, HISTORY, POST], [0.5]),
    Row("502-without-key-retries-then-posts",
        [(POST, Reply(502, "<html>bad gateway</html>", content_type=HTML)),
         (POST, Reply(body=OK_POST))],
        POSTED, [POST, POST], [0.5], key=None),
    Row("503-exhausted-is-transient",
        [(POST, Reply(503, {"ok": False, "error": "service_unavailable"}))] * 3,
        SlackTransientError, [POST] * 3, [0.5, 1.0], code="service_unavailable", key=None),
    Row("401-invalid-auth-once",
        [(POST, Reply(401, {"ok": False, "error": "invalid_auth"}))],
        SlackAuthError, [POST], [], code="invalid_auth"),
    Row("403-without-code-is-auth-once",
        [(POST, Reply(403, "<html>forbidden</html>", content_type=HTML))],
        SlackAuthError, [POST], [], code="http_403"),
    Row("200-invalid-auth-once",
        [(POST, Reply(body={"ok": False, "error": "invalid_auth"}))],
        SlackAuthError, [POST], [], code="invalid_auth"),
    Row("200-channel-not-found-once",
        [(POST, Reply(body={"ok": False, "error": "channel_not_found"}))],
        SlackChannelError, [POST], [], code="channel_not_found"),
    Row("read-timeout-looks-up-history-before-reposting",
        [(POST, Reply(body=OK_POST, delay=1.5)), (HISTORY, Reply(body=ALREADY_POSTED))],
        FOUND, [POST, HISTORY], [0.5]),
    Row("connection-reset-looks-up-history-before-reposting",
        [(POST, Reply(reset=True)), (HISTORY, Reply(body=ALREADY_POSTED))],
        FOUND, [POST, HISTORY], [0.5]),
    Row("connection-refused-is-retried-without-lookup",
        [], SlackTransientError, [], [0.5, 1.0], code="connection_error", server="refused"),
    Row("tls-error-is-permanent-at-once",
        [], SlackPermanentError, [], [], code="tls_error", server="tls"),
    Row("truncated-body-is-ambiguous-looks-up-then-posts",
        [(POST, Reply(body=OK_POST, truncate=True)), (HISTORY, Reply(body=NOTHING_YET)),
         (POST, Reply(body=OK_POST))],
        POSTED, [POST, HISTORY, POST], [0.5]),
    Row("non-json-200-is-malformed-looks-up-then-posts",
        [(POST, Reply(body="<html>maintenance</html>", content_type=HTML)),
         (HISTORY, Reply(body=NOTHING_YET)), (POST, Reply(body=OK_POST))],
        POSTED, [POST, HISTORY, POST], [0.5]),
    Row("undecodable-body-is-ambiguous-looks-up-then-posts",
        [(POST, Reply(body=b'\xff\xfe{"ok": true}')), (HISTORY, Reply(body=NOTHING_YET)),
         (POST, Reply(body=OK_POST))],
        POSTED, [POST, HISTORY, POST], [0.5]),
    Row("non-json-200-exhausted-is-malformed",
        [(POST, Reply(body="not json"))] * 3,
        SlackMalformedResponseError, [POST] * 3, [0.5, 1.0], code="malformed_response", key=None),
]  # fmt: skip


@pytest.fixture
def server() -> Iterator[ScriptedSlack]:
    with scripted() as running:
        yield running
        running.assert_done()


def _api_url(row: Row, server: ScriptedSlack) -> str:
    if row.server == "refused":
        return refused_url()
    if row.server == "tls":
        return server.api_url.replace("http://", "https://")
    return server.api_url


@pytest.mark.parametrize("row", ROWS, ids=[row.name for row in ROWS])
def test_post_message_given_error_table_row_raises_its_error_after_its_requests_and_waits(
    server: ScriptedSlack, row: Row
) -> None:
    for method, reply in row.script:
        server.expect(method, reply)
    sleeps: list[float] = []
    client = SlackClient(
        _api_url(row, server), SecretStr(TOKEN), policy=POLICY, sleep=sleeps.append,
        channel_interval=0.0, wall_clock=lambda: 1_790_000_000.0,
    )  # fmt: skip

    outcome: SlackError | SlackMessageRef
    try:
        outcome = client.post_message(CHANNEL, text="hi", idempotency_key=row.key)
    except SlackError as error:
        outcome = error

    if isinstance(row.outcome, SlackMessageRef):
        assert outcome == row.outcome
    else:
        assert type(outcome) is row.outcome
        assert isinstance(outcome, SlackError)
        assert outcome.code == row.code
        assert TOKEN not in str(outcome) and TOKEN not in repr(outcome.args)
    assert server.methods() == row.requests
    assert client.retrier.waits == pytest.approx(row.waits)
    assert sleeps == pytest.approx(row.waits)


def test_post_message_given_name_resolution_fails_is_transient_without_lookup(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # DNS is the network edge: resolving fails before anything is sent, as for a
    # mistyped or briefly unresolvable host. Nothing is looked up in the history.
    import socket

    def unresolvable(*_: object, **__: object) -> None:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", unresolvable)
    sleeps: list[float] = []
    client = SlackClient(
        refused_url(), SecretStr(TOKEN), policy=POLICY, sleep=sleeps.append,
        channel_interval=0.0, wall_clock=lambda: 1_790_000_000.0,
    )  # fmt: skip

    with pytest.raises(SlackTransientError) as raised:
        client.post_message(CHANNEL, text="hi", idempotency_key=KEY)

    assert raised.value.code == "connection_error" and not raised.value.ambiguous
    assert sleeps == pytest.approx([0.5, 1.0])
