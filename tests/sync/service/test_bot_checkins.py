"""Check-ins from Teams end to end on loopback: the bot's card carries the form, the Teams
sandbox presses it (a signed Bot Framework invoke), serve stores the check-in with its
author, and the next pass's change note shows the note. Forged requests store nothing."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from okr_sync.config.plan_loader import load_plan
from okr_sync.connectors.teams.bot_auth import CLOCK_SKEW_SECONDS, BotFrameworkKeys
from okr_sync.sandbox.teams.bot_framework import InvokeReply, action_data
from okr_sync.sync.pipeline import PassOptions
from okr_sync.sync.runtime import Runtime, build_runtime
from okr_sync.sync.sandbox_world import DEMO_CONVERSATION, SandboxWorld, sandbox_world
from okr_sync.sync.scheduled import send_slot
from okr_sync.sync.service.app import ServiceHandle, bot_endpoint, serve
from okr_sync.sync.service.bot_framework import BotMessagingEndpoint
from okr_sync.sync.service.http import HttpServer, ServiceApp, UnsignedWebhookRefusal
from okr_sync.sync.service.loop import StatusView
from okr_sync.sync.service.metrics import ServiceMetrics
from okr_sync.sync.service.schedule import Schedule
from support.clocks import FakeMonotonic
from support.paths import DEMO_PLAN

TIMEOUT = 10.0
ALICE = "8f0c2a4e-5b1d-4c7a-9e3f-1a2b3c4d5e6f"  # the demo plan's alice (owns CO-1)
BOB = "0b0b0b0b-1111-4222-8333-444444444444"
CAROL = "ca401ca4-0000-4000-8000-00000000ca40"
MALLORY = "3a11035e-0000-4000-8000-000000000666"
CARD_TYPE = "application/vnd.microsoft.card.adaptive"
#: ``Bot.invoke``'s default: a fresh, valid token signed by the sandbox.
FRESH_TOKEN = "fresh"


def checkin_plan(folder: Path, allowed: str = "carol") -> Path:
    """The demo plan, with bob (owner of the manual CO-1.KR3) and carol (a coach allowed
    to check in every KR) known to Teams."""
    text = DEMO_PLAN.read_text(encoding="utf-8")
    text = text.replace("  bob: {name: Bob Ray, slack: U0DEMOBOB}\n",
                        f"  bob: {{name: Bob Ray, slack: U0DEMOBOB, teams: {BOB}}}\n"
                        f"  carol: {{name: Carol Coach, teams: {CAROL}}}\n")
    text += f"\ncheckins: {{allowed: [{allowed}]}}\n"
    path = folder / "plan.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@dataclass
class Bot:
    world: SandboxWorld
    runtime: Runtime
    url: str
    keys_clock: FakeMonotonic
    endpoint: BotMessagingEndpoint

    @property
    def store(self) -> Any:
        assert self.runtime.store is not None
        return self.runtime.store

    def reminder_card(self) -> dict[str, Any]:
        slot = datetime.now(UTC).replace(microsecond=0)
        send_slot(self.runtime.plan, self.store, self.runtime.notifier, "reminder", slot)
        latest = self.world.teams.activities(DEMO_CONVERSATION)[-1]
        (card,) = latest.cards
        assert card["body"][0]["inlines"][0]["text"].startswith("Check-in time")
        return card

    def invoke(self, data: dict[str, Any], *, aad: str, token: str | None = FRESH_TOKEN,
               activity: dict[str, Any] | None = None) -> InvokeReply:
        teams = self.world.teams
        issuer = teams.bot_framework
        activity = activity or issuer.invoke_activity(
            data, aad_object_id=aad, service_url=teams.service_url,
            conversation_id=DEMO_CONVERSATION)
        if token == FRESH_TOKEN:
            token = issuer.token(service_url=teams.service_url)
        return issuer.send(self.url, activity, token=token)


@pytest.fixture
def bot(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Bot]:
    allowed = getattr(request, "param", "carol")
    with sandbox_world(tmp_path, issues=200, seed=7) as world:
        settings = world.settings().model_copy(update={
            "teams_bot_checkins": True,
            "teams_openid_metadata_url": world.teams.openid_metadata_url,
        })
        runtime = build_runtime(settings, load_plan(checkin_plan(tmp_path, allowed)),
                                senders=world.senders())
        clock = FakeMonotonic()
        endpoint = bot_endpoint(runtime, keys=BotFrameworkKeys(
            settings.teams_openid_metadata_url, clock=clock, timeout=5.0))
        assert endpoint is not None
        start = datetime.now(UTC)
        app = ServiceApp(
            status=lambda: StatusView(start, "leader"), period=lambda at: timedelta(hours=1),
            metrics=ServiceMetrics(), webhook=UnsignedWebhookRefusal(),
            database_probe=lambda: None, clock=lambda: datetime.now(UTC), bot=endpoint,
        )
        server = HttpServer(app, host="127.0.0.1", port=0).start()
        try:
            assert runtime.run_locked(PassOptions()).exit_code == 0
            yield Bot(world, runtime, f"http://127.0.0.1:{server.port}/api/messages", clock,
                      endpoint)
        finally:
            server.stop()
            runtime.close()


def answered_text(reply: InvokeReply) -> str:
    assert reply.status == 200, reply
    assert reply.body["statusCode"] == 200 and reply.body["type"] == CARD_TYPE
    assert reply.card_problems == []  # Teams shows it: a valid Adaptive Card 1.5
    return json.dumps(reply.body["value"], ensure_ascii=False)


def test_bot_checkin_given_owner_presses_the_reminder_form_stores_it_and_notes_it_next_pass(
    bot: Bot,
) -> None:
    card = bot.reminder_card()
    data = action_data(card, "CO-1.KR3", {"value": "8", "confidence": "on_track",
                                          "note": "Two more signed this week"})
    reply = bot.invoke(data, aad=BOB)

    text = answered_text(reply)
    assert "Checked in CO-1.KR3" in text and "by Bob Ray: value 8, on track" in text
    (stored,) = bot.store.checkins("CO-1.KR3")
    assert (stored.value, stored.confidence, stored.note, stored.author) == (
        8, "on_track", "Two more signed this week", "bob")

    second = bot.runtime.run_locked(PassOptions())
    assert second.exit_code == 0, second.failures
    assert [c.kr for c in second.scorecard.changes] == ["CO-1.KR3"]
    note = bot.world.teams.activities(DEMO_CONVERSATION)[-1].activity
    assert note["summary"].startswith("1 key result changed: CO-1.KR3")
    assert "by Bob Ray: Two more signed this week" in json.dumps(note, ensure_ascii=False)


def test_bot_checkin_given_reminder_card_its_form_is_action_execute_with_the_kr(
    bot: Bot,
) -> None:
    card = bot.reminder_card()
    data = action_data(card, "CO-1.KR3", {})
    assert data["kr"] == "CO-1.KR3"
    assert set(data) == {"kr", "value.CO-1.KR3", "confidence.CO-1.KR3", "note.CO-1.KR3"}


def test_bot_checkin_given_allowed_coach_checks_in_anothers_kr_records_the_coach(
    bot: Bot,
) -> None:
    reply = bot.invoke({"kr": "CO-1.KR1", "confidence": "at_risk", "note": "SSO slips"},
                       aad=CAROL.upper())
    assert "by Carol Coach: at risk" in answered_text(reply)
    assert [c.author for c in bot.store.checkins("CO-1.KR1")] == ["carol"]


@pytest.mark.parametrize(("aad", "data", "shown"), [
    (ALICE, {"kr": "CO-1.KR3", "value.CO-1.KR3": "8"}, "Only the owner of CO-1.KR3"),
    (MALLORY, {"kr": "CO-1.KR3", "value.CO-1.KR3": "8"}, "not in the plan's people"),
    (BOB, {"kr": "CO-1.KR3", "value.CO-1.KR3": "NaN"}, "value must be a finite number"),
    (BOB, {"kr": "CO-1.KR3", "value.CO-1.KR3": "1e400"}, "value must be a finite number"),
    (BOB, {"kr": "CO-1.KR3", "value.CO-1.KR3": "eight"}, "value must be a number"),
    (BOB, {"kr": "CO-1.KR3", "confidence.CO-1.KR3": "great"}, "confidence must be one of"),
    (BOB, {"kr": "CO-1.KR3"}, "give at least one of value, confidence, note"),
    (ALICE, {"kr": "CO-1.KR1", "value.CO-1.KR1": "3"}, "only manual KRs take value"),
    (BOB, {"kr": "CO-1.KR9", "note": "x"}, "did you mean"),
])
def test_bot_checkin_given_refused_input_answers_why_and_stores_nothing(
    bot: Bot, aad: str, data: dict[str, str], shown: str
) -> None:
    text = answered_text(bot.invoke(data, aad=aad))
    assert "Check-in not saved" in text and shown in text
    assert bot.store.latest_checkins() == {}


@pytest.mark.parametrize("bot", ["anyone"], indirect=True)
def test_bot_checkin_given_anyone_allowed_stores_a_stranger_by_teams_id(bot: Bot) -> None:
    reply = bot.invoke({"kr": "CO-1.KR3", "note.CO-1.KR3": "heard from sales"}, aad=MALLORY)
    assert "Checked in CO-1.KR3" in answered_text(reply)
    assert [c.author for c in bot.store.checkins("CO-1.KR3")] == [f"teams:{MALLORY}"]


def _tokens(bot: Bot) -> dict[str, str | None]:
    issuer, teams = bot.world.teams.bot_framework, bot.world.teams
    long_ago = time.time() - 3600 - CLOCK_SKEW_SECONDS - 60
    return {
        "no token": None,
        "expired": issuer.token(issued_at=long_ago, service_url=teams.service_url),
        "wrong audience": issuer.token(audience="99999999-0000-4000-8000-000000000000",
                                       service_url=teams.service_url),
        "wrong issuer": issuer.token(issuer="https://sts.windows.net/evil/",
                                     service_url=teams.service_url),
        "forged signature": issuer.token(forged=True, service_url=teams.service_url),
        "unknown kid": issuer.token(kid="not-published", service_url=teams.service_url),
        "other service url": issuer.token(service_url="https://evil.example/teams/"),
    }


@pytest.mark.parametrize("case", ["no token", "expired", "wrong audience", "wrong issuer",
                                  "forged signature", "unknown kid", "other service url"])
def test_bot_checkin_given_bad_token_refuses_401_and_stores_nothing(bot: Bot, case: str) -> None:
    reply = bot.invoke({"kr": "CO-1.KR3", "value.CO-1.KR3": "8"}, aad=BOB,
                       token=_tokens(bot)[case])
    assert reply.status == 401 and reply.body is None
    assert bot.store.latest_checkins() == {}


def test_bot_checkin_given_replayed_request_stores_once_and_refuses_it_once_expired(
    bot: Bot,
) -> None:
    teams = bot.world.teams
    issuer = teams.bot_framework
    activity = issuer.invoke_activity({"kr": "CO-1.KR3", "note.CO-1.KR3": "once"},
                                      aad_object_id=BOB, service_url=teams.service_url,
                                      conversation_id=DEMO_CONVERSATION)
    token = issuer.token(service_url=teams.service_url)
    assert "Checked in" in answered_text(bot.invoke({}, aad=BOB, token=token, activity=activity))
    # The same request again (its token still valid): answered, not stored twice.
    again = answered_text(bot.invoke({}, aad=BOB, token=token, activity=activity))
    assert "already received; it is stored once" in again
    # A captured request replayed with its token long expired: refused outright.
    old = issuer.token(issued_at=time.time() - 3600 - CLOCK_SKEW_SECONDS - 60,
                       service_url=teams.service_url)
    fresh = {**activity, "id": "f:replayed"}
    assert bot.invoke({}, aad=BOB, token=old, activity=fresh).status == 401
    assert [c.note for c in bot.store.checkins("CO-1.KR3")] == ["once"]


def test_bot_checkin_given_rotated_key_fetches_the_new_one_once_then_caches_it(
    bot: Bot,
) -> None:
    teams = bot.world.teams
    assert "Checked in" in answered_text(bot.invoke({"kr": "CO-1.KR3", "note": "a"}, aad=BOB))
    teams.bot_framework.rotate()
    bot.keys_clock.now += 60
    for note in ("b", "c"):
        assert "Checked in" in answered_text(bot.invoke({"kr": "CO-1.KR3", "note": note},
                                                        aad=BOB))
    assert teams.counters["botframework.keys"] == 2


def test_bot_checkin_given_message_activity_answers_200_and_does_nothing(bot: Bot) -> None:
    teams = bot.world.teams
    activity = {"type": "message", "text": "hi", "channelId": "msteams",
                "serviceUrl": teams.service_url, "from": {"aadObjectId": BOB}}
    reply = bot.invoke({}, aad=BOB, activity=activity)
    assert reply.status == 200
    assert bot.store.latest_checkins() == {}


@pytest.mark.parametrize(("enabled", "expected"), [(True, 401), (False, 404)])
def test_serve_given_bot_checkins_setting_mounts_api_messages(
    tmp_path: Path, enabled: bool, expected: int
) -> None:
    with sandbox_world(tmp_path, issues=50, seed=7) as world:
        settings = world.settings().model_copy(update={
            "teams_bot_checkins": enabled,
            "teams_openid_metadata_url": world.teams.openid_metadata_url,
        })
        runtime = build_runtime(settings, load_plan(DEMO_PLAN), senders=world.senders())
        stop, started = threading.Event(), threading.Event()
        handles: list[ServiceHandle] = []

        def on_started(handle: ServiceHandle) -> None:
            handles.append(handle)
            started.set()

        thread = threading.Thread(target=lambda: serve(
            lambda: runtime, Schedule.parse("1h"), host="127.0.0.1", port=0,
            stop_event=stop, on_started=on_started, install_signal_handlers=False))
        thread.start()
        try:
            assert started.wait(TIMEOUT)
            response = requests.post(handles[0].url + "/api/messages", json={"type": "invoke"},
                                     timeout=TIMEOUT)
            assert response.status_code == expected
        finally:
            stop.set()
            thread.join(TIMEOUT)
        assert not thread.is_alive()


def test_serve_given_teams_checkin_runs_a_pass_whose_change_note_has_the_note(
    tmp_path: Path,
) -> None:
    with sandbox_world(tmp_path, issues=50, seed=7) as world:
        settings = world.settings().model_copy(update={
            "teams_bot_checkins": True,
            "teams_openid_metadata_url": world.teams.openid_metadata_url,
        })
        runtime = build_runtime(settings, load_plan(DEMO_PLAN), senders=world.senders())
        stop, started = threading.Event(), threading.Event()
        handles: list[ServiceHandle] = []

        def on_started(handle: ServiceHandle) -> None:
            handles.append(handle)
            started.set()

        thread = threading.Thread(target=lambda: serve(
            lambda: runtime, Schedule.parse("1h"), host="127.0.0.1", port=0,
            stop_event=stop, on_started=on_started, install_signal_handlers=False,
            debounce=timedelta(0)))
        thread.start()
        try:
            assert started.wait(TIMEOUT)
            handle = handles[0]
            for _ in range(200):  # bounded: the first pass runs right after start
                if handle.status().passes:
                    break
                time.sleep(0.05)
            assert handle.status().passes == 1
            issuer = world.teams.bot_framework
            activity = issuer.invoke_activity(
                {"kr": "CO-1.KR1", "confidence.CO-1.KR1": "blocked",
                 "note.CO-1.KR1": "Waiting on the IdP vendor"},
                aad_object_id=ALICE, service_url=world.teams.service_url,
                conversation_id=DEMO_CONVERSATION)
            reply = issuer.send(handle.url + "/api/messages", activity,
                                token=issuer.token(service_url=world.teams.service_url))
            assert "by Alice Ng: blocked" in answered_text(reply)
            for _ in range(200):  # bounded: the check-in asks for a pass
                if handle.status().passes >= 2:
                    break
                time.sleep(0.05)
        finally:
            stop.set()
            thread.join(TIMEOUT)
        assert not thread.is_alive()
        note = world.teams.activities(DEMO_CONVERSATION)[-1].activity
        assert note["summary"].startswith("1 key result changed: CO-1.KR1")
        assert "by Alice Ng: Waiting on the IdP vendor" in json.dumps(note, ensure_ascii=False)


def test_bot_checkin_given_store_failure_answers_not_ready_and_a_repeat_is_stored(
    bot: Bot, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sqlalchemy as sa

    teams = bot.world.teams
    issuer = teams.bot_framework
    activity = issuer.invoke_activity({"kr": "CO-1.KR3", "note.CO-1.KR3": "after the outage"},
                                      aad_object_id=BOB, service_url=teams.service_url,
                                      conversation_id=DEMO_CONVERSATION)
    real = bot.store.add_checkin

    def failing(*args: Any, **kwargs: Any) -> Any:
        raise sa.exc.OperationalError("INSERT", {}, Exception("database is locked"))

    monkeypatch.setattr(bot.store, "add_checkin", failing)
    assert "store is not ready" in answered_text(bot.invoke({}, aad=BOB, activity=activity))
    monkeypatch.setattr(bot.store, "add_checkin", real)
    assert "Checked in" in answered_text(bot.invoke({}, aad=BOB, activity=activity))
    assert [c.note for c in bot.store.checkins("CO-1.KR3")] == ["after the outage"]


def _activity(bot: Bot, kr_id: str = "CO-1.KR3", note: str = "n") -> dict[str, Any]:
    teams = bot.world.teams
    return teams.bot_framework.invoke_activity(
        {"kr": kr_id, f"value.{kr_id}": "8", f"note.{kr_id}": note}, aad_object_id=BOB,
        service_url=teams.service_url, conversation_id=DEMO_CONVERSATION)


def test_bot_checkin_given_a_channel_other_than_msteams_refuses_403_and_stores_nothing(
    bot: Bot,
) -> None:
    # Direct Line lets its client write ``from``; Microsoft's keys endorse that channel too.
    bot.world.teams.bot_framework.channel_id = "directline"
    reply = bot.invoke({}, aad=BOB, activity=_activity(bot))
    assert reply.status == 403
    assert bot.store.checkins("CO-1.KR3") == []


def test_bot_checkin_given_tenant_ids_set_refuses_other_tenants_and_takes_listed_ones(
    bot: Bot,
) -> None:
    bot.endpoint.tenant_ids = frozenset({"another-tenant"})
    assert bot.invoke({}, aad=BOB, activity=_activity(bot, note="refused")).status == 403
    bot.endpoint.tenant_ids = frozenset({"another-tenant", bot.world.teams.bot_framework.tenant_id})
    assert "Checked in" in answered_text(bot.invoke({}, aad=BOB, activity=_activity(bot)))
    assert [c.note for c in bot.store.checkins("CO-1.KR3")] == ["n"]


def test_bot_checkin_given_the_same_activity_at_two_replicas_stores_it_once(bot: Bot) -> None:
    from werkzeug.test import Client
    from werkzeug.wrappers import Request

    from okr_sync.sync.store.store import Store

    other_store = Store(bot.runtime.settings.database_url)  # another process's connection
    other = BotMessagingEndpoint(bot.endpoint.validator, plan=bot.runtime.plan,
                                 store=other_store, clock=lambda: datetime.now(UTC))
    client = Client(Request.application(other))  # type: ignore[arg-type]
    activity = _activity(bot, note="once")
    assert "Checked in" in answered_text(bot.invoke({}, aad=BOB, activity=activity))
    token = bot.world.teams.bot_framework.token(service_url=bot.world.teams.service_url)
    replayed = client.post("/api/messages", json=activity,
                           headers={"Authorization": f"Bearer {token}"})
    other_store.close()
    assert replayed.status_code == 200
    assert "already" in replayed.get_data(as_text=True).lower()
    assert [c.note for c in bot.store.checkins("CO-1.KR3")] == ["once"]
