""""Check in" buttons on Slack reminders and change notes, and the check-in modal."""

from __future__ import annotations

import json

import pytest

from okr_sync.sandbox.slack.block_kit import block_problems
from okr_sync.sync.delivery.render import render_slack_change_note, render_slack_checkin_reminder
from okr_sync.sync.delivery.render.slack_checkin import checkin_modal
from support.scorecards import large_scorecard, realistic_scorecard
from sync.delivery.render.test_render_slack import assert_valid_slack


def _buttons(blocks: tuple[dict[str, object], ...] | list[dict[str, object]]) -> list[str]:
    return [str(e["action_id"]) for b in blocks if b["type"] == "actions"
            for e in b["elements"]]  # type: ignore[attr-defined]


def test_reminder_given_interactivity_has_a_check_in_button_per_manual_kr_instead_of_the_cli(
) -> None:
    card = realistic_scorecard()
    plain = render_slack_checkin_reminder(card)
    buttons = render_slack_checkin_reminder(card, checkin_buttons=True)
    assert plain is not None and buttons is not None
    manual = [kr.id for kr in card.key_results() if kr.measure_kind == "manual"]
    assert manual and _buttons(buttons.blocks) == [f"okr_checkin:{k}" for k in manual]
    assert _buttons(plain.blocks) == []
    assert "okr-sync checkin" in json.dumps(plain.blocks)
    assert "okr-sync checkin" not in json.dumps(buttons.blocks)
    assert "/okr checkin" in json.dumps(buttons.blocks)
    assert_valid_slack(buttons)
    assert block_problems(list(buttons.blocks), max_total_text=13_000) is None


def test_change_note_given_interactivity_has_a_button_per_changed_kr() -> None:
    card = realistic_scorecard()
    note = render_slack_change_note(card, checkin_buttons=True)
    assert note is not None
    assert _buttons(note.blocks) == [f"okr_checkin:{c.kr}" for c in card.changes]
    assert_valid_slack(note)


@pytest.mark.parametrize("render", [render_slack_change_note, render_slack_checkin_reminder])
def test_buttons_given_60_long_krs_stay_within_slacks_limits(render: object) -> None:
    card = large_scorecard(key_results=60, title_length=300)
    payload = render(card, checkin_buttons=True)  # type: ignore[operator]
    assert payload is not None
    assert 0 < len(_buttons(payload.blocks)) <= 25
    assert_valid_slack(payload)
    assert block_problems(list(payload.blocks), max_total_text=13_000) is None


def test_checkin_modal_given_a_jira_measured_kr_has_no_value_input() -> None:
    manual = checkin_modal("K1", "t", manual=True, now_text="4 / 10")
    measured = checkin_modal("K2", "t", manual=False, now_text="40%")
    def inputs(view: dict[str, object]) -> list[object]:
        return [b["block_id"] for b in view["blocks"] if b["type"] == "input"]  # type: ignore[attr-defined,index]
    assert inputs(manual) == ["value", "confidence", "note"]
    assert inputs(measured) == ["confidence", "note"]
    assert manual["private_metadata"] == "K1" and manual["callback_id"] == "okr_checkin_view"


def test_block_problems_given_a_button_beyond_slacks_limits_names_it() -> None:
    long_text = {"type": "actions", "elements": [
        {"type": "button", "text": {"type": "plain_text", "text": "x" * 76}, "action_id": "a"}]}
    twice = {"type": "actions", "elements": [
        {"type": "button", "text": {"type": "plain_text", "text": "b"}, "action_id": "a"},
        {"type": "button", "text": {"type": "plain_text", "text": "c"}, "action_id": "a"}]}
    problems = block_problems([long_text])
    assert problems is not None
    assert problems.errors == [
        "must be less than 76 characters [json-pointer:/blocks/0/elements/0/text/text]"]
    duplicated = block_problems([twice])
    assert duplicated is not None and duplicated.errors == [
        "action_id must be unique [json-pointer:/blocks]"]
