"""Delivery under a fence: once another holder takes the run lock, nothing more is sent."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import SecretStr

from okr_sync.connectors.slack.client import SlackClient
from okr_sync.sandbox.slack.server import SlackSandbox
from okr_sync.sync.delivery.outbox import OutboxDeliverer, Senders
from okr_sync.sync.store.fencing import RUN_LOCK
from okr_sync.sync.store.locks import LockLostError
from okr_sync.sync.store.store import OutboxItem, Store

CHANNEL = "C0FENCE001"


@pytest.fixture
def slack() -> Iterator[SlackSandbox]:
    with SlackSandbox(channels=(CHANNEL,)) as sandbox:
        yield sandbox


def _deliverer(slack: SlackSandbox) -> OutboxDeliverer:
    return OutboxDeliverer(Senders(slack=lambda: SlackClient(
        slack.api_url, SecretStr(slack.token), channel_interval=0.0)), workers=1)


def _enqueue(store: Store, count: int) -> None:
    for number in range(count):
        store.enqueue(OutboxItem(f"k{number}", "r", f"slack:{CHANNEL}", "digest",
                                 {"text": f"message {number}"}))


def test_deliver_given_lock_taken_over_after_first_post_records_it_and_sends_no_more(
    store: Store, slack: SlackSandbox, monkeypatch: pytest.MonkeyPatch,
) -> None:
    _enqueue(store, 3)
    fence = store.advance_epoch(RUN_LOCK, "host:1")
    answer: Callable[..., Any] = slack._answer

    def then_taken_over(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        response = answer(environ, start_response)
        store.advance_epoch(RUN_LOCK, "host:2")  # another run takes the lock meanwhile
        return response

    monkeypatch.setattr(slack, "_answer", then_taken_over)

    with pytest.raises(LockLostError):
        _deliverer(slack).deliver(store, fence)

    assert [m.text for m in slack.messages(CHANNEL)] == ["message 0"]
    assert [r.status for r in store.list_outbox()] == ["sent", "pending", "pending"]


def test_deliver_given_current_fence_delivers_everything(
    store: Store, slack: SlackSandbox,
) -> None:
    _enqueue(store, 2)
    fence = store.advance_epoch(RUN_LOCK, "host:1")

    deliveries = _deliverer(slack).deliver(store, fence)

    assert [d.status for d in deliveries] == ["sent", "sent"]
    assert len(slack.messages(CHANNEL)) == 2


def test_deliver_given_takeover_during_history_lookup_posts_nothing_and_keeps_row_uncertain(
    store: Store, slack: SlackSandbox, monkeypatch: pytest.MonkeyPatch,
) -> None:
    _enqueue(store, 1)
    # A sender that died mid-send an hour ago left the row uncertain.
    store.claim_deliverable(claimer="deliver:gone", now=datetime.now(UTC) - timedelta(hours=1))
    fence = store.advance_epoch(RUN_LOCK, "host:1")
    answer: Callable[..., Any] = slack._answer

    def lookup_then_taken_over(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        response = answer(environ, start_response)
        if str(environ.get("PATH_INFO", "")).endswith("/conversations.history"):
            store.advance_epoch(RUN_LOCK, "host:2")
        return response

    monkeypatch.setattr(slack, "_answer", lookup_then_taken_over)

    with pytest.raises(LockLostError):
        _deliverer(slack).deliver(store, fence)

    assert slack.messages(CHANNEL) == []
    row = store.list_outbox()[0]
    assert row.status == "sending"  # the next holder looks it up again before any post
