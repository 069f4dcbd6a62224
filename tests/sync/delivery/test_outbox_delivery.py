"""Delivery through the outbox against the sandboxes: failures, retries, edits in place."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from okr_sync.config.plan_loader import load_plan
from okr_sync.sync.delivery.outbox import retry_delay
from okr_sync.sync.pipeline import PassOptions
from okr_sync.sync.sandbox_world import DEMO_CHANNEL, SandboxWorld, sandbox_world
from support.paths import DEMO_PLAN


@pytest.fixture
def world(tmp_path: Path) -> Iterator[SandboxWorld]:
    with sandbox_world(tmp_path, issues=300, seed=9, channels=()) as w:
        yield w


def _plan(tmp_path: Path, channel: str):
    text = DEMO_PLAN.read_text().replace("C0DEMO0001", channel)
    path = tmp_path / "plan.yaml"
    path.write_text(text)
    return load_plan(path)


def test_deliver_given_unknown_channel_fails_that_route_only_with_reason(world, tmp_path) -> None:
    runtime = world.runtime(_plan(tmp_path, "C0GONE0001"))
    result = runtime.run_locked(PassOptions())
    assert result.exit_code == 1
    by_target = {d.target: d for d in result.scorecard.deliveries}
    failed = by_target["slack:C0GONE0001"]
    assert (failed.route, failed.status) == ("leadership", "failed")
    assert failed.reason is not None and "channel_not_found" in failed.reason
    assert world.slack.token not in failed.reason
    assert by_target["teams_bot:19:demo@thread.tacv2"].status == "sent"
    assert runtime.store is not None
    summary = runtime.store.delivery_summary()
    assert [r.target for r in summary.failed] == ["slack:C0GONE0001"]


def test_deliver_given_rate_limit_waits_retry_after_and_sends(world, tmp_path) -> None:
    world.slack.add_channel(DEMO_CHANNEL)
    world.slack.inject_error("ratelimited", status=429, retry_after=2, count=1)
    slept: list[float] = []
    runtime = world.runtime(_plan(tmp_path, DEMO_CHANNEL))
    senders = runtime.notifier.deliverer.senders if runtime.notifier else None
    assert senders is not None
    make = senders.slack
    assert make is not None

    def slack_with_recorded_sleep():
        client = make()
        client.retrier.sleep = slept.append
        return client

    senders.slack = slack_with_recorded_sleep
    result = runtime.run_locked(PassOptions())
    assert result.exit_code == 0, result.scorecard.deliveries
    assert slept and slept[0] >= 2
    assert len(world.slack.top_level(DEMO_CHANNEL)) == 1


def test_deliver_given_slack_down_keeps_row_pending_and_sends_later(world, tmp_path) -> None:
    world.slack.add_channel(DEMO_CHANNEL)
    world.slack.inject_error("service_unavailable", status=503, count=1000)
    now = [datetime.now(UTC)]
    runtime = world.runtime(_plan(tmp_path, DEMO_CHANNEL))
    assert runtime.notifier is not None
    runtime.notifier.deliverer.clock = lambda: now[0]
    senders = runtime.notifier.deliverer.senders
    make = senders.slack
    assert make is not None

    def no_wait_slack():
        client = make()
        client.retrier.sleep = lambda _: None
        return client

    senders.slack = no_wait_slack
    first = runtime.run_locked(PassOptions())
    slack = [d for d in first.scorecard.deliveries if d.target.startswith("slack:")]
    assert [d.status for d in slack] == ["retrying"]
    assert first.exit_code == 0  # transient: not a failure of the pass
    assert world.slack.top_level(DEMO_CHANNEL) == []
    [row] = runtime.store.list_outbox(target=f"slack:{DEMO_CHANNEL}")
    # The first failed try waits the policy's first step (30 s), not its second.
    assert (row.attempts, row.next_attempt_at - now[0]) == (1, timedelta(seconds=30))
    world.slack.clear_faults()
    now[0] += timedelta(minutes=5)
    second = runtime.run_locked(PassOptions())
    assert [(d.target, d.status) for d in second.scorecard.deliveries] == [
        ("slack:C0DEMO0001", "sent")]
    assert len(world.slack.top_level(DEMO_CHANNEL)) == 1


@pytest.mark.parametrize(
    ("attempts", "retry_after", "expected"),
    [(1, None, timedelta(seconds=30)), (3, None, timedelta(minutes=2)),
     (12, None, timedelta(hours=1)), (1, 90.0, timedelta(seconds=90)),
     (1, 5e6, timedelta(days=1))],
)
def test_retry_delay_given_attempts_follows_the_delivery_policy_row(
    attempts: int, retry_after: float | None, expected: timedelta
) -> None:
    assert retry_delay(attempts, retry_after) == expected
