"""The check-in rules shared by the CLI and the chat endpoints."""

from __future__ import annotations

import pytest

from okr_sync.config.plan_loader import load_plan, load_plan_text
from okr_sync.sync.checkins import (
    CHAT_FIELDS,
    CheckinError,
    may_check_in,
    person_of_slack_user,
    validate_checkin,
)
from support.paths import DEMO_PLAN


def test_validate_checkin_given_chat_names_refuses_like_the_cli_naming_the_field() -> None:
    kr = load_plan(DEMO_PLAN).key_result("CO-1.KR3")
    for bad in (float("nan"), float("inf"), 1e13):
        with pytest.raises(CheckinError) as caught:
            validate_checkin(kr, value=bad, confidence=None, note=None, names=CHAT_FIELDS)
        assert caught.value.field == "value"
        assert str(caught.value).startswith("value must be a finite number")
    with pytest.raises(CheckinError, match=r"^--confidence must be one of"):
        validate_checkin(kr, value=None, confidence="great", note=None)
    valid = validate_checkin(kr, value=25, confidence="at_risk", note="n", names=CHAT_FIELDS)
    assert valid.warnings == ("value 25 is far outside baseline 0 .. target 10 "
                              "(accepted: -10 .. 20)",)


def test_may_check_in_given_owners_allowed_and_anyone_follows_the_plan() -> None:
    demo = load_plan(DEMO_PLAN)
    assert person_of_slack_user(demo, "U0DEMOBOB") == "bob"
    assert may_check_in(demo, "CO-1.KR3", "bob")
    assert may_check_in(demo, "CO-1.KR1", "alice")  # inherited from objective CO-1
    assert not may_check_in(demo, "CO-1.KR3", "alice")
    assert not may_check_in(demo, "CO-1.KR3", None)
    text = DEMO_PLAN.read_text()
    allowed = load_plan_text(text + "\ncheckins: {allowed: [alice]}\n")
    assert may_check_in(allowed, "CO-1.KR3", "alice")
    assert not may_check_in(allowed, "CO-1.KR3", None)
    anyone = load_plan_text(text + "\ncheckins: {allowed: [anyone]}\n")
    assert may_check_in(anyone, "CO-1.KR3", None)


def test_validate_checkin_given_note_over_3000_characters_refuses_it_naming_the_note() -> None:
    kr = load_plan(DEMO_PLAN).key_result("CO-1.KR3")
    assert validate_checkin(kr, value=None, confidence=None, note="n" * 3000).note
    with pytest.raises(CheckinError) as caught:
        validate_checkin(kr, value=None, confidence=None, note="n" * 3001, names=CHAT_FIELDS)
    assert caught.value.field == "note"
    assert str(caught.value) == "note is longer than 3000 characters"
