"""``serve --plans``: check-in buttons and forms name their plan; nothing else changes."""

from __future__ import annotations

from okr_sync.sync.delivery.render.checkin_plan import split_plan_ref, tag_checkin_plan
from okr_sync.sync.delivery.render.slack_checkin import checkin_actions
from okr_sync.sync.delivery.render.teams_checkin import checkin_form


def test_tag_checkin_plan_given_slack_buttons_and_a_teams_form_names_the_plan_in_both() -> None:
    payload = {"text": "okr_checkin CO-1.KR3", "blocks": checkin_actions(["CO-1.KR3"]),
               "attachments": [{"content": {"body": [checkin_form("CO-1.KR3", "Deals",
                                                                  manual=True)]}}]}

    tagged = tag_checkin_plan(payload, "sales")

    button = tagged["blocks"][0]["elements"][0]
    assert (button["action_id"], button["value"]) == ("okr_checkin:CO-1.KR3", "sales:CO-1.KR3")
    form = tagged["attachments"][0]["content"]["body"][0]["actions"][0]["card"]
    assert form["actions"][0]["data"] == {"kr": "CO-1.KR3", "plan": "sales"}
    assert tagged["text"] == payload["text"]
    # The rendered payload itself is left as it was (single-plan messages are unchanged).
    assert payload["blocks"][0]["elements"][0]["value"] == "CO-1.KR3"


def test_split_plan_ref_given_a_prefix_that_is_no_plan_keeps_the_whole_id() -> None:
    assert split_plan_ref("sales:CO-1.KR3", {"sales", "ops"}) == ("sales", "CO-1.KR3")
    assert split_plan_ref("CO-1.KR3", {"sales"}) == (None, "CO-1.KR3")
    assert split_plan_ref("odd:CO-1.KR3", {"sales"}) == (None, "odd:CO-1.KR3")
