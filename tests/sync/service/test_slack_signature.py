"""The Slack request verifier: signature, age and replay."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import SecretStr

from okr_sync.sandbox.slack.interactions import sign
from okr_sync.sync.service.slack_signature import SlackRefusal, SlackVerifier, slack_signature
from support.clocks import FakeClock

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
NOW = datetime(2026, 12, 6, 7, 0, tzinfo=UTC)
STAMP = str(int(NOW.timestamp()))
BODY = b"command=%2Fokr&text=checkin+CO-1.KR3+8&user_id=U0DEMOBOB"


def _verifier(clock: FakeClock | None = None) -> SlackVerifier:
    return SlackVerifier(SecretStr(SECRET), clock=clock or FakeClock(NOW))


def test_slack_signature_given_slacks_documented_example_matches_it() -> None:
    # The example of Slack's "Verifying requests from Slack" page.
    body = (b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&"
            b"channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&"
            b"command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2F"
            b"commands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id="
            b"398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c")
    assert slack_signature(SECRET, "1531420618", body) == (
        "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503")


def test_verifier_given_a_fresh_signed_request_accepts_it() -> None:
    assert _verifier().refusal(BODY, STAMP, sign(SECRET, STAMP, BODY)) is None


@pytest.mark.parametrize(("timestamp", "signature", "expected"), [
    (None, sign(SECRET, STAMP, BODY), SlackRefusal.MISSING),
    (STAMP, None, SlackRefusal.MISSING),
    ("", "", SlackRefusal.MISSING),
    ("soon", sign(SECRET, "soon", BODY), SlackRefusal.MALFORMED),
    ("\xb2", "v0=" + "0" * 64, SlackRefusal.MALFORMED),  # "²": isdigit(), but not int()
    ("\u0661\u0662", "v0=" + "0" * 64, SlackRefusal.MALFORMED),  # Arabic-Indic digits
    (STAMP, sign("another secret", STAMP, BODY), SlackRefusal.FORGED),
    (STAMP, sign(SECRET, STAMP, BODY + b"&text=more"), SlackRefusal.FORGED),
    (STAMP, sign(SECRET, str(int(STAMP) + 1), BODY), SlackRefusal.FORGED),
    (STAMP, "v1=" + sign(SECRET, STAMP, BODY)[3:], SlackRefusal.FORGED),
    (STAMP, sign(SECRET, STAMP, BODY)[:-1], SlackRefusal.FORGED),
])
def test_verifier_given_missing_or_forged_headers_refuses(
    timestamp: str | None, signature: str | None, expected: SlackRefusal,
) -> None:
    assert _verifier().refusal(BODY, timestamp, signature) is expected


@pytest.mark.parametrize("offset", [-301, 301, -3600])
def test_verifier_given_timestamp_over_five_minutes_off_refuses_as_expired(offset: int) -> None:
    stamp = str(int(STAMP) + offset)
    assert _verifier().refusal(BODY, stamp, sign(SECRET, stamp, BODY)) is SlackRefusal.EXPIRED


def test_verifier_given_timestamp_just_within_five_minutes_accepts() -> None:
    stamp = str(int(STAMP) - 300)
    assert _verifier().refusal(BODY, stamp, sign(SECRET, stamp, BODY)) is None


def test_verifier_given_the_same_signed_request_twice_refuses_the_replay() -> None:
    clock = FakeClock(NOW)
    verifier = _verifier(clock)
    signature = sign(SECRET, STAMP, BODY)
    assert verifier.refusal(BODY, STAMP, signature) is None
    clock.advance(120)
    assert verifier.refusal(BODY, STAMP, signature) is SlackRefusal.REPLAYED
    clock.advance(400)  # past the window the replay is refused as expired instead
    assert verifier.refusal(BODY, STAMP, signature) is SlackRefusal.EXPIRED


def test_verifier_given_forged_requests_does_not_remember_them() -> None:
    verifier = _verifier()
    forged = sign("another secret", STAMP, BODY)
    for _ in range(3):
        assert verifier.refusal(BODY, STAMP, forged) is SlackRefusal.FORGED
    assert verifier.refusal(BODY, STAMP, sign(SECRET, STAMP, BODY)) is None


def test_verifier_given_a_new_clock_minute_accepts_a_new_request_of_the_same_body() -> None:
    clock = FakeClock(NOW)
    verifier = _verifier(clock)
    assert verifier.refusal(BODY, STAMP, sign(SECRET, STAMP, BODY)) is None
    clock.advance(timedelta(minutes=1).total_seconds())
    later = str(int(STAMP) + 60)
    assert verifier.refusal(BODY, later, sign(SECRET, later, BODY)) is None
