"""The Slack sandbox's views.open: a trigger is good once, for three seconds."""

from __future__ import annotations

import pytest
import requests

from okr_sync.sandbox.slack.server import SlackSandbox
from support.clocks import FakeMonotonic

VIEW = {"type": "modal", "title": {"type": "plain_text", "text": "Check in"}, "blocks": []}


def _open(slack: SlackSandbox, trigger: str) -> dict[str, object]:
    reply = requests.post(slack.api_url + "views.open", json={"trigger_id": trigger,
                                                              "view": VIEW},
                          headers={"Authorization": f"Bearer {slack.token}"}, timeout=10)
    result: dict[str, object] = reply.json()
    return result


@pytest.mark.parametrize(("wait", "expected"), [(2.9, True), (3.1, False)])
def test_views_open_given_trigger_age_opens_within_three_seconds_only(
    wait: float, expected: bool
) -> None:
    clock = FakeMonotonic()
    with SlackSandbox(clock=clock) as slack:
        trigger = slack.interactions.new_trigger("U0DEMOBOB")
        clock.sleep(wait)
        answer = _open(slack, trigger)
    assert answer["ok"] is expected
    if not expected:
        assert answer["error"] == "expired_trigger_id"


def test_views_open_given_used_or_unknown_trigger_refuses() -> None:
    with SlackSandbox() as slack:
        trigger = slack.interactions.new_trigger("U0DEMOBOB")
        assert _open(slack, trigger)["ok"] is True
        assert _open(slack, trigger)["error"] == "invalid_trigger_id"
        assert _open(slack, "made-up")["error"] == "invalid_trigger_id"
        assert len(slack.interactions.views) == 1
