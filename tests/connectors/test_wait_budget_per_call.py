"""Issue 11: one call may not sleep through five server waits (Slack's ``Retry-After: 60``
five times was 152 s for one message; a Teams token endpoint that is down was 5 x 60 s
for one bot delivery). With the default REQUEST_POLICY a call's waits stay within its
budget (``max_total_wait``), after which the error goes back to the outbox's backoff."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from okr_sync.connectors.errors import TransientError
from okr_sync.connectors.http import REQUEST_POLICY
from okr_sync.connectors.slack.client import SlackClient
from okr_sync.connectors.teams.client import TeamsBotClient
from okr_sync.sandbox.slack.server import SlackSandbox
from okr_sync.sandbox.teams.server import TeamsSandbox

SECRET = "teams-budget-secret-0c1d"


class RecordingSleep:
    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def test_teams_bot_post_given_token_endpoint_down_waits_within_the_call_budget() -> None:
    sleep = RecordingSleep()
    with TeamsSandbox(app_secret=SECRET) as sandbox:
        sandbox.inject_status("token", 500, count=20)
        client = TeamsBotClient(
            sandbox.app_id, SecretStr(SECRET), sandbox.tenant_id, sandbox.service_url,
            http_client=sandbox.msal_http_client(timeout=5.0), sleep=sleep,
        )  # the default policy, as a pass uses it
        try:
            with pytest.raises(TransientError) as caught:
                client.post_activity("19:c@thread.tacv2", {"type": "message", "text": "x"})
        finally:
            client.close()

    assert REQUEST_POLICY.max_total_wait is not None
    assert sum(sleep.waits) <= REQUEST_POLICY.max_total_wait
    assert len(sleep.waits) <= 1  # not five
    assert caught.value.retry_after == 60  # for the outbox to wait out, between passes
    assert sandbox.counters["activity.post"] == 0


def test_slack_post_given_retry_after_60_on_every_try_waits_within_the_call_budget() -> None:
    sleep = RecordingSleep()
    with SlackSandbox() as slack:
        slack.inject_error("ratelimited", count=10, retry_after=60, method="chat.postMessage")
        client = SlackClient(slack.api_url, SecretStr(slack.token), sleep=sleep,
                             channel_interval=0.0)
        try:
            with pytest.raises(TransientError):
                client.post_message("C0123456789", text="hello")
        finally:
            client.close()

    assert REQUEST_POLICY.max_total_wait is not None
    assert sum(sleep.waits) <= REQUEST_POLICY.max_total_wait
    assert len(sleep.waits) <= 1
