"""Slack and Teams faults during delivery, one scenario per row, against the sandboxes.

Every row: a fault-free first pass (the standing messages), progress in Jira, then a
pass that delivers news (the standing messages edited, change notes) under the row's
fault. Every outbox row of that pass must end delivered exactly once (Slack: found once
by its idempotency key), or be listed by ``status`` as pending or failed with its
error; none is lost silently, nothing is doubled. Retry waits are recorded, not slept,
and none is absurd whatever ``Retry-After`` said.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

import pytest
from pydantic import SecretStr

from okr_sync.cli.state import status_document
from okr_sync.config.plan_loader import load_plan
from okr_sync.connectors.http import REQUEST_POLICY
from okr_sync.connectors.slack.client import SlackClient
from okr_sync.connectors.teams.client import TeamsBotClient, TeamsWorkflowClient
from okr_sync.sync.delivery.outbox import Senders
from okr_sync.sync.pipeline import PassOptions, PassResult
from okr_sync.sync.runtime import build_runtime
from okr_sync.sync.sandbox_world import (
    DEMO_CHANNEL,
    DEMO_CONVERSATION,
    SandboxWorld,
    sandbox_world,
)
from okr_sync.sync.store.store import Store
from support.paths import DEMO_PLAN

# Several passes per row over real loopback HTTP: long, so `-m 'not slow'` leaves it out.
pytestmark = pytest.mark.slow

SLACK = f"slack:{DEMO_CHANNEL}"
BOT = f"teams_bot:{DEMO_CONVERSATION}"
WORKFLOW = "teams_workflow:OKR_SYNC_DEMO_TEAMS_WORKFLOW_URL"

Outcome = Literal["sent", "pending", "failed"]


@dataclass(frozen=True)
class DeliveryFault:
    name: str
    inject: Callable[[SandboxWorld], None]
    target: str
    #: What becomes of the faulted target's rows of the pass.
    outcome: Outcome
    #: The clients' read timeout (seconds) in both passes; ``None``: the default.
    timeout: float | None = None


def _slack(code: str, *, count: int = 1, **options: object) -> Callable[[SandboxWorld], None]:
    return lambda world: world.slack.inject_error(code, count=count, **options)  # type: ignore[arg-type]


def _teams(kind: str, status: int, *, count: int = 1,
           retry_after: float | str | None = None) -> Callable[[SandboxWorld], None]:
    return lambda world: world.teams.inject_status(kind, status, count=count,
                                                   retry_after=retry_after)


#: Timeout rows: the clients give up after CLIENT_TIMEOUT, the sandbox answers REPLY_DELAY
#: late (cut short when it stops). Far apart, so a loaded machine cannot blur them.
CLIENT_TIMEOUT = 1.0
REPLY_DELAY = 5.0


def _slack_late(method: str | None, *, count: int = 1) -> Callable[[SandboxWorld], None]:
    # Slack acts, then answers too late: the post may have gone through.
    return lambda world: world.slack.delay_replies(REPLY_DELAY, count=count, method=method)


def _teams_late(kind: str, *, count: int = 1) -> Callable[[SandboxWorld], None]:
    return lambda world: world.teams.delay_replies(kind, REPLY_DELAY, count=count)


FAULTS = [
    DeliveryFault("slack 429 Retry-After 0", _slack("ratelimited", count=2, retry_after=0),
                  SLACK, "sent"),
    DeliveryFault("slack 429 Retry-After -1", _slack("ratelimited", count=2, retry_after=-1),
                  SLACK, "sent"),
    DeliveryFault("slack 429 Retry-After text",
                  _slack("ratelimited", count=2, retry_after="soon"), SLACK, "sent"),
    # A wait no pass should sleep: the row waits for a later pass instead, said by status.
    DeliveryFault("slack 429 Retry-After 1e9", _slack("ratelimited", retry_after=1e9),
                  SLACK, "pending"),
    DeliveryFault("slack 5xx forever", _slack("internal_error", count=1000, status=503),
                  SLACK, "pending"),
    # The post went through, its reply was lost (a timeout after Slack acted).
    DeliveryFault("slack reply lost after posting",
                  _slack("internal_error", status=503, method="chat.postMessage",
                         after_processing=True), SLACK, "sent"),
    DeliveryFault("slack archived channel", _slack("is_archived", count=1000), SLACK,
                  "failed"),
    DeliveryFault("slack token revoked", _slack("token_revoked", count=1000), SLACK, "failed"),
    DeliveryFault("teams bot 429 Retry-After 1e9", _teams("activity", 429, retry_after=1e9),
                  BOT, "pending"),
    DeliveryFault("teams bot 429 Retry-After text",
                  _teams("activity", 429, count=2, retry_after="later"), BOT, "sent"),
    DeliveryFault("teams bot 5xx forever", _teams("activity", 502, count=1000), BOT, "pending"),
    # The token is refused mid-pass: the bot signs in again and sends.
    DeliveryFault("teams bot token rejected", _teams("activity", 401), BOT, "sent"),
    DeliveryFault("teams workflow 429 Retry-After -1",
                  _teams("workflow", 429, count=2, retry_after=-1), WORKFLOW, "sent"),
    DeliveryFault("teams workflow 413", _teams("workflow", 413, count=1000), WORKFLOW, "failed"),
    # Read timeouts. Slack's come after it acted: the history lookup must find the post.
    DeliveryFault("slack chat.postMessage timeout once", _slack_late("chat.postMessage"),
                  SLACK, "sent", CLIENT_TIMEOUT),
    DeliveryFault("slack chat.update timeout once", _slack_late("chat.update"),
                  SLACK, "sent", CLIENT_TIMEOUT),
    DeliveryFault("slack timeout forever", _slack_late(None, count=1000),
                  SLACK, "pending", CLIENT_TIMEOUT),
    DeliveryFault("teams bot timeout once", _teams_late("activity"), BOT, "sent",
                  CLIENT_TIMEOUT),
    DeliveryFault("teams bot timeout forever", _teams_late("activity", count=1000), BOT,
                  "pending", CLIENT_TIMEOUT),
    DeliveryFault("teams workflow timeout once", _teams_late("workflow"), WORKFLOW, "sent",
                  CLIENT_TIMEOUT),
    DeliveryFault("teams workflow timeout forever", _teams_late("workflow", count=1000),
                  WORKFLOW, "pending", CLIENT_TIMEOUT),
]


@pytest.fixture
def world(tmp_path: Path) -> Iterator[SandboxWorld]:
    with sandbox_world(tmp_path, issues=150, seed=31) as w:
        yield w


def _senders(world: SandboxWorld, waits: list[float], timeout: float | None) -> Senders:
    """The sandbox clients, with every wait recorded instead of slept."""
    settings = world.settings()
    assert settings.slack_bot_token is not None and settings.teams_app_secret is not None
    slack_token, secret = settings.slack_bot_token, settings.teams_app_secret
    workflow_url = SecretStr(world.teams.workflow_url(world.workflow_id))
    return Senders(
        slack=lambda: SlackClient(settings.slack_api_url, slack_token, channel_interval=0.0,
                                  sleep=waits.append, timeout=timeout),
        teams_bot=lambda: TeamsBotClient(
            world.teams.app_id, secret, world.teams.tenant_id, world.teams.service_url,
            http_client=world.teams.msal_http_client(), sleep=waits.append, timeout=timeout),
        teams_workflow=lambda _env: TeamsWorkflowClient(workflow_url, sleep=waits.append,
                                                        timeout=timeout),
    )


def _run(world: SandboxWorld, waits: list[float], timeout: float | None = None) -> PassResult:
    runtime = build_runtime(world.settings(), load_plan(DEMO_PLAN),
                            senders=_senders(world, waits, timeout))
    try:
        return runtime.run_locked(PassOptions())
    finally:
        runtime.close()


def _progress(world: SandboxWorld) -> None:
    rng = random.Random(3)
    world.dataset.advance(timedelta(minutes=30))
    open_items = [i for i in sorted(world.dataset.issues.values(), key=lambda i: i.id)
                  if i.status_category != "done" and not i.is_subtask]
    for issue in rng.sample(open_items, 25):
        world.dataset.transition(issue.id, "done")


def _slack_keys(world: SandboxWorld) -> Counter[str]:
    return Counter(
        str((m.metadata or {}).get("event_payload", {}).get("idempotency_key"))
        for m in world.slack.messages(DEMO_CHANNEL))


@pytest.mark.parametrize("fault", FAULTS, ids=[f.name for f in FAULTS])
def test_delivery_given_fault_sends_each_update_once_or_status_reports_it(
    world: SandboxWorld, fault: DeliveryFault
) -> None:
    waits: list[float] = []
    assert _run(world, waits, fault.timeout).exit_code == 0
    with Store(world.database_url) as store:
        seen = max(r.id for r in store.list_outbox(limit=None))
    _progress(world)

    world.slack.requests.clear()
    world.teams.requests.clear()
    fault.inject(world)
    result = _run(world, waits, fault.timeout)
    # The fault did happen: the faulted sandbox answered late, or with an error.
    if fault.timeout is not None:
        sandbox = world.slack if fault.target == SLACK else world.teams
        assert sandbox.counters["delayed"] >= 1
    elif fault.target == SLACK:
        assert any(r.status >= 400 or r.error for r in world.slack.requests)
    else:
        assert any(r.status >= 400 for r in world.teams.requests)

    with Store(world.database_url) as store:
        rows = [r for r in store.list_outbox(limit=None) if r.id > seen]
        status = status_document(store, datetime.now(UTC))
        standing = store.get_message_ref(SLACK, "scorecard")
    assert {r.target for r in rows} == {SLACK, BOT, WORKFLOW}  # the pass had news for all
    faulted = [r for r in rows if r.target == fault.target]
    reported = {(d["target"], d["kind"])
                for d in status["deliveries"].get(fault.outcome, [])}
    for row in rows:
        if row.target != fault.target:
            assert row.status in ("sent", "superseded"), row
    for row in faulted:
        if row.status != "superseded":  # an older standing message replaced by a newer
            assert row.status == fault.outcome, row
        if fault.outcome != "sent" and row.status == fault.outcome:
            assert (row.target, row.kind) in reported  # status names it
    if fault.outcome != "sent":  # the row that met the fault says why
        assert any(r.last_error for r in faulted)
    assert result.exit_code == (1 if fault.outcome == "failed" else 0)

    # Slack: nothing twice, every sent row there once, the standing message's ref stored.
    keys = _slack_keys(world)
    assert [k for k, n in keys.items() if n > 1] == []
    for row in rows:
        if row.target == SLACK and row.status == "sent" and row.kind != "scorecard":
            assert keys[row.idempotency_key] == 1
    assert standing is not None
    assert world.slack.message(DEMO_CHANNEL, standing.message_id) is not None
    # Teams: one activity per sent bot row (the standing card edited in place).
    sent_notes = [r for r in rows if r.target == BOT and r.status == "sent"
                  and r.kind != "scorecard"]
    assert len(world.teams.activities(DEMO_CONVERSATION)) == 1 + len(sent_notes)

    # No wait is absurd, whatever the server asked for.
    assert all(0 <= w <= REQUEST_POLICY.max_delay for w in waits), waits
    assert sum(waits) <= (REQUEST_POLICY.max_total_wait or 0) * len(rows)


def test_delivery_given_standing_slack_message_deleted_posts_a_new_one_and_stores_its_ref(
    world: SandboxWorld,
) -> None:
    waits: list[float] = []
    assert _run(world, waits).exit_code == 0
    with Store(world.database_url) as store:
        old = store.get_message_ref(SLACK, "scorecard")
    assert old is not None
    _progress(world)
    world.slack.inject_error("message_not_found", method="chat.update")

    result = _run(world, waits)

    assert result.exit_code == 0, result.failures
    with Store(world.database_url) as store:
        new = store.get_message_ref(SLACK, "scorecard")
    assert new is not None and new.message_id != old.message_id
    top = world.slack.top_level(DEMO_CHANNEL)
    assert [m.ts for m in top] == [old.message_id, new.message_id]
    assert [k for k, n in _slack_keys(world).items() if n > 1] == []
    # The next news edits the new standing message in place and threads under it.
    _progress(world)
    assert _run(world, waits).exit_code == 0
    assert len(world.slack.top_level(DEMO_CHANNEL)) == 2
    assert world.slack.message(DEMO_CHANNEL, new.message_id).edited
