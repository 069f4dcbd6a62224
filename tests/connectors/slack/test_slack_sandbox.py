"""The Slack sandbox speaks Slack's wire protocol: shapes, auth, limits, rate limits."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.blocks import Block

from okr_sync.sandbox.slack.server import DEFAULT_CHANNEL, DEFAULT_TOKEN, SlackSandbox
from support.clocks import FakeMonotonic as FakeClock

AUTH = {"Authorization": f"Bearer {DEFAULT_TOKEN}"}
TIMEOUT = 5.0


@pytest.fixture
def sandbox() -> Iterator[SlackSandbox]:
    with SlackSandbox() as running:
        yield running


def call(
    sandbox: SlackSandbox, method: str, body: dict[str, Any] | None = None, **kwargs: Any
) -> requests.Response:
    kwargs.setdefault("headers", AUTH)
    if body is not None:
        kwargs["json"] = body
    return requests.post(sandbox.api_url + method, timeout=TIMEOUT, **kwargs)


def post(sandbox: SlackSandbox, **body: Any) -> dict[str, Any]:
    body.setdefault("channel", DEFAULT_CHANNEL)
    response = call(sandbox, "chat.postMessage", body)
    assert response.status_code in (200, 429)
    data: dict[str, Any] = response.json()
    return data


def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def test_post_message_given_form_body_with_json_blocks_and_form_token_accepts(
    sandbox: SlackSandbox,
) -> None:
    form = {
        "token": DEFAULT_TOKEN,
        "channel": DEFAULT_CHANNEL,
        "text": "fallback",
        "blocks": json.dumps([section("hello")]),
        "metadata": json.dumps({"event_type": "okr", "event_payload": {"k": "v"}}),
    }

    data = requests.post(
        sandbox.api_url + "chat.postMessage", data=form, timeout=TIMEOUT
    ).json()

    assert data["ok"] is True
    assert data["message"]["blocks"] == [section("hello")]
    assert sandbox.message(DEFAULT_CHANNEL, data["ts"]).metadata == {
        "event_type": "okr",
        "event_payload": {"k": "v"},
    }


def test_post_message_given_json_body_without_bearer_header_is_not_authed(
    sandbox: SlackSandbox,
) -> None:
    body = {"token": DEFAULT_TOKEN, "channel": DEFAULT_CHANNEL, "text": "x"}

    data = call(sandbox, "chat.postMessage", body, headers={}).json()

    assert data == {"ok": False, "error": "not_authed"}


def test_post_message_given_many_posts_returns_unique_increasing_ts_strings(
    sandbox: SlackSandbox,
) -> None:
    stamps = [post(sandbox, text=f"n{n}")["ts"] for n in range(15)]

    assert all(isinstance(ts, str) for ts in stamps)
    assert stamps == sorted(stamps, key=float)
    assert len(set(stamps)) == 15


def test_history_given_include_all_metadata_only_then_returns_metadata(
    sandbox: SlackSandbox,
) -> None:
    post(sandbox, text="m", metadata={"event_type": "okr", "event_payload": {"k": 1}})
    query = {"channel": DEFAULT_CHANNEL}

    plain = requests.get(
        sandbox.api_url + "conversations.history", params=query, headers=AUTH, timeout=TIMEOUT
    ).json()
    full = requests.get(
        sandbox.api_url + "conversations.history",
        params={**query, "include_all_metadata": "true"},
        headers=AUTH,
        timeout=TIMEOUT,
    ).json()

    assert "metadata" not in plain["messages"][0]
    assert full["messages"][0]["metadata"] == {"event_type": "okr", "event_payload": {"k": 1}}


def test_history_given_thread_lists_parent_with_reply_count_but_not_replies(
    sandbox: SlackSandbox,
) -> None:
    parent = post(sandbox, text="parent")["ts"]
    reply = post(sandbox, text="reply", thread_ts=parent)["ts"]

    history = call(sandbox, "conversations.history", {"channel": DEFAULT_CHANNEL}).json()
    replies = call(
        sandbox, "conversations.replies", {"channel": DEFAULT_CHANNEL, "ts": parent}
    ).json()

    assert [(m["ts"], m["reply_count"]) for m in history["messages"]] == [(parent, 1)]
    assert [m["ts"] for m in replies["messages"]] == [parent, reply]


def test_update_given_unknown_ts_is_message_not_found(sandbox: SlackSandbox) -> None:
    body = {"channel": DEFAULT_CHANNEL, "ts": "1.000001", "text": "x"}

    assert call(sandbox, "chat.update", body).json()["error"] == "message_not_found"


def test_update_given_existing_message_keeps_ts_and_marks_edited(sandbox: SlackSandbox) -> None:
    ts = post(sandbox, text="v1")["ts"]

    data = call(sandbox, "chat.update", {"channel": DEFAULT_CHANNEL, "ts": ts, "text": "v2"}).json()

    assert (data["ok"], data["ts"], data["text"]) == (True, ts, "v2")
    assert data["message"]["edited"]["ts"] > ts


# Boundary blocks where Slack and slack_sdk's block models agree on the verdict.
BOUNDARY_BLOCKS: list[tuple[str, dict[str, Any]]] = [
    ("section-3000", section("x" * 3000)),
    ("section-3001", section("x" * 3001)),
    ("header-150", {"type": "header", "text": {"type": "plain_text", "text": "h" * 150}}),
    ("header-151", {"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}),
    ("fields-10", {"type": "section", "fields": [{"type": "mrkdwn", "text": "f"}] * 10}),
    ("fields-11", {"type": "section", "fields": [{"type": "mrkdwn", "text": "f"}] * 11}),
    ("context-10", {"type": "context", "elements": [{"type": "mrkdwn", "text": "c"}] * 10}),
    ("context-11", {"type": "context", "elements": [{"type": "mrkdwn", "text": "c"}] * 11}),
    ("block-id-255", {"type": "divider", "block_id": "b" * 255}),
    ("block-id-256", {"type": "divider", "block_id": "b" * 256}),
]


def _sdk_accepts(block: dict[str, Any]) -> bool:
    try:
        parsed = Block.parse(block)
        assert parsed is not None
        parsed.validate_json()
    except SlackObjectFormationError:
        return False
    return True


@pytest.mark.parametrize(("name", "block"), BOUNDARY_BLOCKS, ids=[n for n, _ in BOUNDARY_BLOCKS])
def test_post_message_given_boundary_block_agrees_with_slack_sdk(
    sandbox: SlackSandbox, name: str, block: dict[str, Any]
) -> None:
    data = post(sandbox, text="t", blocks=[block])

    assert data["ok"] is _sdk_accepts(block)
    if not data["ok"]:
        assert data["error"] == "invalid_blocks"
        assert data["errors"][0].endswith("]")


@pytest.mark.parametrize(
    "blocks",
    [
        [section("x")] * 51,
        [{"type": "section", "fields": [{"type": "mrkdwn", "text": "f" * 2001}]}],
        [{"type": "header", "text": {"type": "mrkdwn", "text": "not plain"}}],
        [{"type": "carousel"}],
        [{"type": "section"}],
        [{"type": "divider", "block_id": "a"}, {"type": "divider", "block_id": "a"}],
        [{"type": "image", "image_url": "https://example.test/x.png"}],
        {"type": "section"},
    ],
    ids=["51-blocks", "field-2001", "header-mrkdwn", "unknown-type", "empty-section",
         "duplicate-block-id", "image-no-alt", "not-a-list"],
)  # fmt: skip
def test_post_message_given_invalid_blocks_is_invalid_blocks(
    sandbox: SlackSandbox, blocks: Any
) -> None:
    assert post(sandbox, text="t", blocks=blocks)["error"] == "invalid_blocks"


def test_post_message_given_every_supported_block_kind_accepts(sandbox: SlackSandbox) -> None:
    blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": "Q4 scorecard"}},
        section("*CO-1* Win the enterprise segment"),
        {"type": "section", "fields": [{"type": "mrkdwn", "text": "*Score* 0.53"}] * 10},
        {"type": "divider"},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": "as of today"}]},
        {"type": "markdown", "text": "**bold**"},
        {"type": "image", "image_url": "https://example.test/x.png", "alt_text": "chart"},
    ]

    assert post(sandbox, text="t", blocks=blocks)["ok"] is True


def test_post_message_given_total_block_text_over_cap_is_msg_blocks_too_long() -> None:
    with SlackSandbox(max_blocks_text=13_000) as sandbox:
        data = post(sandbox, text="t", blocks=[section("x" * 2_900)] * 5)

    assert data["error"] == "msg_blocks_too_long"


def test_post_message_given_channel_interval_limits_same_channel_until_clock_moves() -> None:
    clock = FakeClock(500.0)
    with SlackSandbox(channel_interval=1.0, clock=clock, channels=("C1", "C2")) as sandbox:
        first = post(sandbox, channel="C1", text="1")
        limited = call(sandbox, "chat.postMessage", {"channel": "C1", "text": "2"})
        other = post(sandbox, channel="C2", text="3")
        clock.now += 1.0
        later = post(sandbox, channel="C1", text="4")

    assert first["ok"] and other["ok"] and later["ok"]
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "1"
    assert limited.json() == {"ok": False, "error": "ratelimited"}


def test_rate_limit_every_given_third_write_answers_429(sandbox: SlackSandbox) -> None:
    sandbox.rate_limit_every(3, retry_after=4)

    results = [call(sandbox, "chat.postMessage", {"channel": DEFAULT_CHANNEL, "text": "x"})
               for _ in range(3)]  # fmt: skip

    assert [r.status_code for r in results] == [200, 200, 429]
    assert results[2].headers["Retry-After"] == "4"


def test_unknown_method_given_any_call_is_404_unknown_method(sandbox: SlackSandbox) -> None:
    response = call(sandbox, "chat.scheduleMessage", {})

    assert (response.status_code, response.json()["error"]) == (404, "unknown_method")


def test_post_message_given_broken_json_is_invalid_json(sandbox: SlackSandbox) -> None:
    headers = {**AUTH, "Content-Type": "application/json"}

    response = call(sandbox, "chat.postMessage", data=b"{not json", headers=headers)

    assert response.json() == {"ok": False, "error": "invalid_json"}


def test_requests_log_given_calls_records_method_channel_and_error(sandbox: SlackSandbox) -> None:
    post(sandbox, text="ok")
    post(sandbox, channel="C0MISSING", text="x")

    assert [(r.method, r.channel, r.error) for r in sandbox.requests] == [
        ("chat.postMessage", DEFAULT_CHANNEL, None),
        ("chat.postMessage", "C0MISSING", "channel_not_found"),
    ]
    assert sandbox.counters["chat.postMessage:channel_not_found"] == 1


@pytest.mark.parametrize("after_processing", [True, False])
def test_delay_replies_given_short_client_timeout_times_out_and_posts_only_if_processed_first(
    sandbox: SlackSandbox, after_processing: bool
) -> None:
    # The delay far exceeds the client's timeout; stopping the sandbox cuts it short.
    sandbox.delay_replies(30.0, method="chat.postMessage", after_processing=after_processing)
    body = {"channel": DEFAULT_CHANNEL, "text": "late"}

    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.post(sandbox.api_url + "chat.postMessage", json=body, headers=AUTH, timeout=0.5)

    assert sandbox.counters["delayed"] == 1
    # The next call is answered at once; the delayed one went out only if processed first.
    assert post(sandbox, text="on time")["ok"] is True
    texts = [m.text for m in sandbox.messages(DEFAULT_CHANNEL)]
    assert texts == (["late", "on time"] if after_processing else ["on time"])


def test_delay_replies_given_infinite_seconds_refuses() -> None:
    with pytest.raises(ValueError, match="finite"):
        SlackSandbox().delay_replies(float("inf"))
