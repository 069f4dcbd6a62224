"""Delivery across targets in parallel, against a Slack sandbox that answers slowly.

Concurrency is counted in the sandbox (calls in flight at once), not timed.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from pydantic import SecretStr

from okr_sync.connectors.slack.client import SlackClient
from okr_sync.sandbox.slack.server import SlackSandbox
from okr_sync.scoring.scorecard import Delivery
from okr_sync.sync.delivery.outbox import OutboxDeliverer, Senders, SerialStore
from okr_sync.sync.store.records import ClaimedDelivery
from okr_sync.sync.store.store import OutboxItem, Store

CHANNELS = tuple(f"C0PAR{index:04d}" for index in range(6))
#: The client paces each channel at this interval (Slack's is about a second) ...
INTERVAL = 0.6
#: ... and the sandbox refuses a second write to a channel sooner than this (429),
#: leaving room for the jitter of a loaded machine between pacing and arrival.
REFUSED_WITHIN = 0.15


@pytest.fixture
def slack() -> Iterator[SlackSandbox]:
    with SlackSandbox(channels=CHANNELS, latency=0.05,
                      channel_interval=REFUSED_WITHIN) as sandbox:
        yield sandbox


def _senders(slack: SlackSandbox) -> Senders:
    return Senders(slack=lambda: SlackClient(slack.api_url, SecretStr(slack.token),
                                             channel_interval=INTERVAL))


def _enqueue(store: Store, channels: tuple[str, ...], per_channel: int = 2) -> None:
    # Interleaved, so outbox order is every channel's first message, then the seconds.
    for number in range(per_channel):
        for channel in channels:
            store.enqueue(OutboxItem(f"k-{channel}-{number}", "r", f"slack:{channel}", "digest",
                                     {"text": f"{channel} #{number}"}))


def test_deliver_given_several_channels_sends_them_concurrently_in_order_per_channel(
    store: Store, slack: SlackSandbox,
) -> None:
    _enqueue(store, CHANNELS)
    deliveries = OutboxDeliverer(_senders(slack), workers=4).deliver(store)

    assert [(d.target, d.status) for d in deliveries] == [
        (f"slack:{channel}", "sent") for _ in range(2) for channel in CHANNELS]
    for channel in CHANNELS:
        assert [m.text for m in slack.messages(channel)] == [f"{channel} #0", f"{channel} #1"]
    assert 1 < slack.max_in_flight <= 4
    # Each channel's pacing held across the workers: Slack never had to refuse a post.
    assert slack.counters["chat.postMessage:ratelimited"] == 0


def test_deliver_given_one_worker_sends_one_call_at_a_time(
    store: Store, slack: SlackSandbox,
) -> None:
    _enqueue(store, CHANNELS[:3], per_channel=1)
    deliveries = OutboxDeliverer(_senders(slack), workers=1).deliver(store)
    assert [d.status for d in deliveries] == ["sent"] * 3
    assert slack.max_in_flight == 1


def test_deliver_given_one_failing_target_sends_every_other_target(
    store: Store, slack: SlackSandbox,
) -> None:
    gone = "C0GONE0001"
    _enqueue(store, (gone, *CHANNELS[:3]))
    deliveries = OutboxDeliverer(_senders(slack), workers=4).deliver(store)

    by_target: dict[str, list[str]] = {}
    for delivery in deliveries:
        by_target.setdefault(delivery.target, []).append(delivery.status)
    assert by_target.pop(f"slack:{gone}") == ["failed", "failed"]
    assert by_target == {f"slack:{channel}": ["sent", "sent"] for channel in CHANNELS[:3]}
    for channel in CHANNELS[:3]:
        assert [m.text for m in slack.messages(channel)] == [f"{channel} #0", f"{channel} #1"]


def test_outbox_deliverer_given_no_worker_raises() -> None:
    with pytest.raises(ValueError):
        OutboxDeliverer(Senders(), workers=0)


class _ThreadRecordingDeliverer(OutboxDeliverer):
    """Notes the thread each row is settled on."""

    def __init__(self, senders: Senders, *, workers: int) -> None:
        super().__init__(senders, workers=workers)
        self.threads: list[threading.Thread] = []

    def _settle(self, store: SerialStore, claim: ClaimedDelivery) -> Delivery:
        self.threads.append(threading.current_thread())
        return super()._settle(store, claim)


def test_deliver_given_several_passes_settles_every_pass_on_the_same_worker_threads(
    store: Store, slack: SlackSandbox,
) -> None:
    deliverer = _ThreadRecordingDeliverer(_senders(slack), workers=2)
    for number in range(3):
        store.enqueue(OutboxItem(f"k-pass-{number}", "r", f"slack:{CHANNELS[number]}", "digest",
                                 {"text": f"pass {number}"}))
        assert [d.status for d in deliverer.deliver(store)] == ["sent"]

    # Three passes, one pool: never more threads than workers, however many passes ran.
    assert len(set(deliverer.threads)) <= 2
    deliverer.close()
    assert not any(thread.is_alive() for thread in deliverer.threads)
