"""Check-ins from Slack, end to end over loopback: the Slack sandbox sends signed slash
commands and interactions to a running serve, which stores the check-in with its author
and asks for a pass against the Jira sandbox; the change note carries the note."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr

from okr_sync.config.plan_loader import load_plan
from okr_sync.sandbox.slack.interactions import DEFAULT_SIGNING_SECRET, SignedRequest, send
from okr_sync.sync.runtime import build_runtime
from okr_sync.sync.sandbox_world import DEMO_CHANNEL, SandboxWorld, sandbox_world
from okr_sync.sync.service.loop import Scheduler
from okr_sync.sync.service.metrics import ServiceMetrics
from okr_sync.sync.service.schedule import Schedule
from okr_sync.sync.store.locks import Leadership
from support.clocks import FakeClock
from support.paths import DEMO_PLAN
from support.slack_serve import RunningServe, slack_serve, wait_for

BOB = "U0DEMOBOB"  # owner of CO-1.KR3 (manual) in the demo plan
ALICE = "U0DEMOALICE"  # owns CO-1, not CO-1.KR3


@pytest.fixture
def world(tmp_path: Path) -> Iterator[SandboxWorld]:
    with sandbox_world(tmp_path, issues=120, seed=7) as w:
        yield w


@pytest.fixture
def service(world: SandboxWorld) -> Iterator[RunningServe]:
    with slack_serve(world, load_plan(DEMO_PLAN)) as running:
        yield running


def _notes(world: SandboxWorld) -> list[str]:
    top = world.slack.top_level(DEMO_CHANNEL)
    return [json.dumps(m.blocks, ensure_ascii=False)
            for m in world.slack.replies(DEMO_CHANNEL, top[0].ts)] if top else []


def test_slash_checkin_given_owner_stores_it_with_author_and_the_next_change_note_has_it(
    world: SandboxWorld, service: RunningServe,
) -> None:
    driver = world.slack.interactions
    request = driver.slash_command(service.commands_url,
                                   'checkin CO-1.KR3 8 "signed two more"', user_id=BOB)
    reply = send(request)

    assert reply.status == 200
    assert reply.json() == {"response_type": "ephemeral", "text": "Checking in CO-1.KR3…"}
    wait_for(lambda: driver.responses_to(request))
    (answer,) = driver.responses_to(request)
    assert answer["response_type"] == "ephemeral"
    assert answer["text"].startswith("Checked in CO-1.KR3 at ")
    (stored,) = service.store.checkins("CO-1.KR3")
    assert (stored.value, stored.note, stored.author) == (8, "signed two more", "bob")
    # The check-in asked for a pass: the manual KR moved 40% -> 80%, so a change note
    # follows in the standing message's thread, with the note and who wrote it.
    wait_for(lambda: any("signed two more" in n for n in _notes(world)))
    note = next(n for n in _notes(world) if "signed two more" in n)
    assert "40% → 80% (+40 pp)" in note
    assert "by Bob Ray: signed two more" in note
    assert '"action_id": "okr_checkin:CO-1.KR3"' in note  # the change note's button


def test_button_given_owner_opens_the_modal_and_its_submission_is_stored(
    world: SandboxWorld, service: RunningServe,
) -> None:
    driver = world.slack.interactions
    send(driver.slash_command(service.commands_url, "checkin CO-1.KR3 6", user_id=BOB))
    wait_for(lambda: _notes(world))
    top = world.slack.top_level(DEMO_CHANNEL)[0]
    change_note = world.slack.replies(DEMO_CHANNEL, top.ts)[-1]

    # Alice may not check in Bob's KR: no form, an ephemeral refusal instead.
    refused = driver.button_click(service.interactions_url, change_note.as_json(),
                                  "okr_checkin:CO-1.KR3", user_id=ALICE,
                                  channel_id=DEMO_CHANNEL)
    assert (send(refused).status, send(refused).status) == (200, 401)  # the 2nd: a replay
    wait_for(lambda: driver.responses_to(refused))
    (refusal,) = driver.responses_to(refused)
    assert refusal["response_type"] == "ephemeral" and refusal["replace_original"] is False
    assert refusal["text"].startswith("Not checked in: only CO-1.KR3's owner (Bob Ray)")
    assert driver.views == {}

    click = driver.button_click(service.interactions_url, change_note.as_json(),
                                "okr_checkin:CO-1.KR3", user_id=BOB, channel_id=DEMO_CHANNEL)
    assert send(click).status == 200
    wait_for(lambda: driver.views)
    (view_id,) = driver.views
    modal = driver.views[view_id].view
    assert modal["private_metadata"] == "CO-1.KR3"
    assert [b["block_id"] for b in modal["blocks"] if b["type"] == "input"] == [
        "value", "confidence", "note"]

    stranger = send(driver.view_submission(service.interactions_url, view_id,
                                           {"value": "9"}, user_id=ALICE))
    assert stranger.json()["response_action"] == "errors"
    assert stranger.json()["errors"]["note"].startswith("Not checked in: only CO-1.KR3's")
    bad = send(driver.view_submission(service.interactions_url, view_id,
                                      {"value": "inf"}, user_id=BOB))
    assert bad.status == 200
    assert bad.json()["response_action"] == "errors"
    assert "value must be a finite number" in bad.json()["errors"]["value"]
    assert len(service.store.checkins("CO-1.KR3")) == 1

    done = send(driver.view_submission(
        service.interactions_url, view_id,
        {"value": "9", "confidence": "on_track", "note": "two pilots converted"},
        user_id=BOB))
    assert (done.status, done.body) == (200, b"")
    wait_for(lambda: len(service.store.checkins("CO-1.KR3")) == 2)
    latest = service.store.checkins("CO-1.KR3")[0]
    assert (latest.value, latest.confidence, latest.note, latest.author) == (
        9, "on_track", "two pilots converted", "bob")


def test_checkin_given_someone_not_the_owner_is_refused_and_nothing_is_stored(
    world: SandboxWorld, service: RunningServe,
) -> None:
    driver = world.slack.interactions
    for user in (ALICE, "U0STRANGER"):
        reply = send(driver.slash_command(service.commands_url, "checkin CO-1.KR3 9",
                                          user_id=user))
        assert reply.status == 200
        body = reply.json()
        assert body["response_type"] == "ephemeral"
        assert body["text"].startswith("Not checked in: only CO-1.KR3's owner (Bob Ray)")
    stranger = send(driver.slash_command(service.commands_url, "checkin CO-1.KR3 9",
                                         user_id="U0STRANGER")).json()["text"]
    assert "U0STRANGER) is not in the plan's `people`" in stranger
    invalid = send(driver.slash_command(service.commands_url, "checkin CO-1.KR3 nan",
                                        user_id=BOB)).json()["text"]
    assert invalid.startswith("Not checked in: value must be a finite number")
    jira_kr = send(driver.slash_command(service.commands_url, "checkin CO-1.KR1 3",
                                        user_id=ALICE)).json()["text"]
    assert "only manual KRs take value" in jira_kr
    assert service.store.checkins("CO-1.KR3") == []
    assert service.store.checkins("CO-1.KR1") == []


def _forged(driver_request: SignedRequest, kind: str) -> SignedRequest:
    headers = dict(driver_request.headers)
    if kind == "missing":
        headers.pop("X-Slack-Signature")
        headers.pop("X-Slack-Request-Timestamp")
        return SignedRequest(driver_request.url, driver_request.body, headers)
    # "other body": the signature of one request sent with another's body.
    body = driver_request.body.replace(b"CO-1.KR3+8", b"CO-1.KR3+1")
    assert body != driver_request.body
    return SignedRequest(driver_request.url, body, headers)


def test_slack_endpoints_given_expired_replayed_or_forged_requests_answer_401_storing_nothing(
    world: SandboxWorld, service: RunningServe,
) -> None:
    driver = world.slack.interactions
    url = service.commands_url

    def checkin(**signing: object) -> SignedRequest:
        return driver.slash_command(url, "checkin CO-1.KR3 8", user_id=BOB, **signing)

    refused = {
        "expired": checkin(timestamp=int(time.time()) - 301),
        "from the future": checkin(timestamp=int(time.time()) + 301),
        "bad signature": checkin(secret="not-the-signing-secret"),
        "missing headers": _forged(checkin(), "missing"),
        "signature over another body": _forged(checkin(), "other body"),
    }
    for what, request in refused.items():
        reply = send(request)
        assert reply.status == 401, what
        assert "not verified" in reply.json()["error"], what
    interaction = driver.button_click(
        service.interactions_url,
        {"ts": "1.0", "blocks": [{"type": "actions", "elements": [
            {"type": "button", "action_id": "okr_checkin:CO-1.KR3", "value": "CO-1.KR3",
             "text": {"type": "plain_text", "text": "Check in"}}]}]},
        "okr_checkin:CO-1.KR3", user_id=BOB, channel_id=DEMO_CHANNEL, secret="forged")
    assert send(interaction).status == 401
    assert driver.views == {}

    valid = checkin()
    assert send(valid).status == 200
    wait_for(lambda: driver.responses_to(valid))
    assert send(valid).status == 401  # the same signed bytes again: a replay
    assert len(service.store.checkins("CO-1.KR3")) == 1


def test_status_and_explain_given_a_scorecard_answer_the_asker_only(
    world: SandboxWorld, service: RunningServe,
) -> None:
    driver = world.slack.interactions
    stored = driver.slash_command(service.commands_url, 'checkin CO-1.KR3 7 at_risk "slow Q"',
                                  user_id=BOB)
    send(stored)
    wait_for(lambda: driver.responses_to(stored))

    status = driver.slash_command(service.commands_url, "status", user_id=ALICE)
    explain = driver.slash_command(service.commands_url, "explain CO-1.KR3", user_id=ALICE)
    assert (send(status).status, send(explain).status) == (200, 200)
    wait_for(lambda: driver.responses_to(status) and driver.responses_to(explain))
    (card,) = driver.responses_to(status)
    assert card["response_type"] == "ephemeral"
    assert "CO-1.KR3" in json.dumps(card["blocks"])
    (why,) = driver.responses_to(explain)
    text = json.dumps(why["blocks"], ensure_ascii=False)
    assert why["response_type"] == "ephemeral"
    assert "*CO-1.KR3* Sign 10 lighthouse customers" in text
    assert "check-in " in text and "Bob Ray · value 7 · at risk" in text and "slow Q" in text

    unknown = send(driver.slash_command(service.commands_url, "explain CO-1.KR9",
                                        user_id=ALICE)).json()["text"]
    assert unknown.startswith("Sorry: unknown key result 'CO-1.KR9': did you mean")
    helped = send(driver.slash_command(service.commands_url, "help", user_id=ALICE)).json()
    assert "/okr checkin KR" in helped["text"]


def test_reminder_button_given_friday_slot_opens_the_modal_and_stores_the_check_in(
    world: SandboxWorld,
) -> None:
    plan = load_plan(DEMO_PLAN)
    friday_9 = datetime(2026, 11, 6, 9, 0, tzinfo=UTC)  # demo plan: reminder "0 9 * * FRI"
    settings = world.settings().model_copy(
        update={"slack_signing_secret": SecretStr(DEFAULT_SIGNING_SECRET)})
    runtime = build_runtime(settings, plan, senders=world.senders())
    clock = FakeClock(friday_9 - timedelta(minutes=1))
    runtime.clock = clock
    scheduler = Scheduler(runtime, Schedule.parse("5m"), clock=clock, metrics=ServiceMetrics(),
                          leadership=Leadership(settings.database_url, holder="cron"))
    try:
        scheduler.tick()
        clock.set(friday_9 + timedelta(seconds=5))
        scheduler.tick()
    finally:
        scheduler.close()
        runtime.close()
    reminder = world.slack.top_level(DEMO_CHANNEL)[-1]
    assert reminder.text.startswith("Check-in time")
    assert "okr-sync checkin" not in json.dumps(reminder.blocks)  # the button replaces it

    with slack_serve(world, plan) as service:
        driver = world.slack.interactions
        click = driver.button_click(service.interactions_url, reminder.as_json(),
                                    "okr_checkin:CO-1.KR3", user_id=BOB,
                                    channel_id=DEMO_CHANNEL)
        assert send(click).status == 200
        wait_for(lambda: driver.views)
        (view_id,) = driver.views
        done = send(driver.view_submission(service.interactions_url, view_id,
                                           {"value": "5", "note": "one more"}, user_id=BOB))
        assert (done.status, done.body) == (200, b"")
        wait_for(lambda: service.store.checkins("CO-1.KR3"))
        (stored,) = service.store.checkins("CO-1.KR3")
        assert (stored.value, stored.note, stored.author) == (5, "one more", "bob")
