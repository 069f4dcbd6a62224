"""Check-ins from Slack and Teams in ``serve --plans``, end to end over loopback: the
request is routed to its plan (by the plan its button or form names, or by a KR id
only one plan has), stored in that plan's own store with its author, and the plan's
next change note carries the note. Ambiguous KR ids are refused with the plans that
have them; Slack replays are refused by every replica sharing the database."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
import requests
from pydantic import SecretStr

from okr_sync.config.settings import Settings
from okr_sync.sandbox.slack.interactions import DEFAULT_SIGNING_SECRET, SignedRequest, send
from okr_sync.sync.runtime import build_runtime
from okr_sync.sync.sandbox_world import DEMO_CHANNEL, SandboxWorld, sandbox_world
from okr_sync.sync.service.multi import PlanCoordinator
from okr_sync.sync.service.plans import FolderPlan, settings_check
from okr_sync.sync.service.plans_app import serve_plans
from okr_sync.sync.service.schedule import Schedule
from okr_sync.sync.store.database import plan_store_url
from okr_sync.sync.store.store import Store
from support.paths import slack_only_demo_plan
from support.plan_folders import plan_channel
from support.slack_serve import wait_for

BOB_SLACK = "U0DEMOBOB"  # owner of CO-1.KR3 (manual) in the demo plan
BOB_TEAMS = "0b0b0b0b-1111-4222-8333-444444444444"
T = TypeVar("T")


@dataclass
class Replica:
    url: str
    coordinator: PlanCoordinator
    settings: Settings


def write_folder(folder: Path, world: SandboxWorld) -> Path:
    """Plans ``alpha`` (the demo plan) and ``beta`` (its objective CO-1 renamed CB-1):
    both have SUP-1.KR1, only beta has CB-1.KR3; bob is known to Teams in both."""
    folder.mkdir(parents=True, exist_ok=True)
    template = slack_only_demo_plan(folder.parent).read_text(encoding="utf-8").replace(
        "  bob: {name: Bob Ray, slack: U0DEMOBOB}\n",
        f"  bob: {{name: Bob Ray, slack: U0DEMOBOB, teams: {BOB_TEAMS}}}\n")
    for plan_id in ("alpha", "beta"):
        channel = plan_channel(plan_id)
        world.slack.add_channel(channel)
        text = template.replace(DEMO_CHANNEL, channel)
        if plan_id == "beta":
            text = text.replace("CO-1", "CB-1")
        (folder / f"{plan_id}.yaml").write_text(text, encoding="utf-8")
    return folder


def chat_settings(world: SandboxWorld, database_url: str | None = None) -> Settings:
    update: dict[str, Any] = {
        "slack_signing_secret": SecretStr(DEFAULT_SIGNING_SECRET),
        "teams_bot_checkins": True,
        "teams_openid_metadata_url": world.teams.openid_metadata_url,
    }
    if database_url is not None:
        update["database_url"] = database_url
    return world.settings().model_copy(update=update)


def start_replica(world: SandboxWorld, folder: Path, settings: Settings, stop: threading.Event,
                  threads: list[threading.Thread], replica: str) -> Replica:
    started: list[tuple[PlanCoordinator, int]] = []

    def factory(plan_settings: Settings, plan: FolderPlan) -> Any:
        return build_runtime(plan_settings, plan.plan, senders=world.senders(),
                             checkin_plan=plan.id)

    thread = threading.Thread(target=serve_plans, kwargs={
        "folder": folder, "settings": settings, "schedule": Schedule.parse("1h", None),
        "runtime_factory": factory, "check": settings_check(settings), "port": 0,
        "host": "127.0.0.1", "clock": lambda: datetime.now(UTC), "stop_event": stop,
        "install_signal_handlers": False, "poll": timedelta(milliseconds=200),
        "debounce": timedelta(milliseconds=50), "replica": replica,
        "on_started": lambda c, port: started.append((c, port)),
    }, daemon=True)
    thread.start()
    threads.append(thread)
    wait_for(lambda: started)
    coordinator, port = started[0]
    return Replica(f"http://127.0.0.1:{port}", coordinator, settings)


def wait_for_value(probe: Callable[[], T | None]) -> T:
    found: list[T] = []

    def check() -> bool:
        value = probe()
        if value is not None:
            found.append(value)
        return value is not None

    wait_for(check, timeout=60)
    return found[-1]


@pytest.fixture
def world(tmp_path: Path) -> Iterator[SandboxWorld]:
    with sandbox_world(tmp_path, issues=120, seed=7) as w:
        yield w


@pytest.fixture
def replica(world: SandboxWorld, tmp_path: Path) -> Iterator[Replica]:
    folder = write_folder(tmp_path / "plans", world)
    stop, threads = threading.Event(), []
    try:
        running = start_replica(world, folder, chat_settings(world), stop, threads, "r1")
        # Both plans passed once: their standing messages are up.
        for plan_id in ("alpha", "beta"):
            wait_for(lambda plan_id=plan_id: world.slack.top_level(plan_channel(plan_id)))
        yield running
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)


def _notes(world: SandboxWorld, plan_id: str) -> list[str]:
    channel = plan_channel(plan_id)
    top = world.slack.top_level(channel)
    return [json.dumps(m.blocks, ensure_ascii=False)
            for m in world.slack.replies(channel, top[0].ts)] if top else []


def _checkins(replica: Replica, plan_id: str, kr_id: str) -> list[Any]:
    with Store(plan_store_url(replica.settings.database_url, plan_id), ensure=False) as store:
        return store.checkins(kr_id)


def test_plans_slash_checkin_given_a_kr_only_plan_b_has_stores_it_in_b_and_b_notes_it(
    world: SandboxWorld, replica: Replica,
) -> None:
    driver = world.slack.interactions
    request = driver.slash_command(replica.url + "/slack/commands",
                                   'checkin CB-1.KR3 8 "signed two more"', user_id=BOB_SLACK)
    reply = send(request)

    assert reply.status == 200
    assert reply.json() == {"response_type": "ephemeral", "text": "Checking in CB-1.KR3…"}
    wait_for(lambda: _checkins(replica, "beta", "CB-1.KR3"))
    (stored,) = _checkins(replica, "beta", "CB-1.KR3")
    assert (stored.value, stored.note, stored.author) == (8, "signed two more", "bob")
    wait_for(lambda: any("signed two more" in n for n in _notes(world, "beta")))
    note = next(n for n in _notes(world, "beta") if "signed two more" in n)
    assert "by Bob Ray: signed two more" in note
    # The change note's button names its plan, so a click is routed without guessing.
    assert '"value": "beta:CB-1.KR3"' in note
    assert not any("signed two more" in n for n in _notes(world, "alpha"))


def test_plans_button_given_a_change_note_of_plan_b_opens_a_modal_stored_in_b(
    world: SandboxWorld, replica: Replica,
) -> None:
    driver = world.slack.interactions
    send(driver.slash_command(replica.url + "/slack/commands", "checkin CB-1.KR3 6",
                              user_id=BOB_SLACK))
    wait_for(lambda: len(_notes(world, "beta")) > 0)
    channel = plan_channel("beta")
    top = world.slack.top_level(channel)[0]
    change_note = world.slack.replies(channel, top.ts)[-1]

    click = driver.button_click(replica.url + "/slack/interactions", change_note.as_json(),
                                "okr_checkin:CB-1.KR3", user_id=BOB_SLACK, channel_id=channel)
    assert send(click).status == 200
    wait_for(lambda: driver.views)
    (view_id,) = driver.views
    assert driver.views[view_id].view["private_metadata"] == "beta:CB-1.KR3"
    submitted = send(driver.view_submission(replica.url + "/slack/interactions", view_id,
                                            {"value": "9"}, user_id=BOB_SLACK))
    assert submitted.status == 200 and submitted.body == b""
    wait_for(lambda: len(_checkins(replica, "beta", "CB-1.KR3")) == 2)
    assert [c.value for c in _checkins(replica, "beta", "CB-1.KR3")] == [9, 6]


def test_plans_slash_checkin_given_a_kr_of_several_plans_refuses_and_lists_them(
    world: SandboxWorld, replica: Replica,
) -> None:
    driver = world.slack.interactions
    reply = send(driver.slash_command(replica.url + "/slack/commands", "checkin SUP-1.KR1 3",
                                      user_id=BOB_SLACK))

    assert reply.status == 200
    answer = reply.json()
    assert answer["response_type"] == "ephemeral"
    assert answer["text"].startswith("Not checked in: SUP-1.KR1 is a key result of several "
                                     "plans (alpha, beta)")
    assert "/okr checkin alpha:SUP-1.KR1" in answer["text"]
    assert _checkins(replica, "alpha", "SUP-1.KR1") == []
    assert _checkins(replica, "beta", "SUP-1.KR1") == []


def test_plans_teams_invoke_given_plan_a_in_its_data_stores_it_in_a_and_a_notes_it(
    world: SandboxWorld, replica: Replica,
) -> None:
    teams = world.teams
    issuer = teams.bot_framework
    activity = issuer.invoke_activity(
        {"plan": "alpha", "kr": "CO-1.KR3", "value.CO-1.KR3": "6",
         "note.CO-1.KR3": "two renewals from teams"},
        aad_object_id=BOB_TEAMS, service_url=teams.service_url,
        conversation_id="19:plans@thread.tacv2")
    reply = issuer.send(replica.url + "/api/messages", activity,
                        token=issuer.token(service_url=teams.service_url))

    assert reply.status == 200
    assert "Checked in" in json.dumps(reply.body)
    (stored,) = _checkins(replica, "alpha", "CO-1.KR3")
    assert (stored.value, stored.note, stored.author) == (6, "two renewals from teams", "bob")
    wait_for(lambda: any("two renewals from teams" in n for n in _notes(world, "alpha")))


def test_plans_chat_given_forged_slack_and_teams_requests_refuses_them_and_stores_nothing(
    world: SandboxWorld, replica: Replica,
) -> None:
    driver = world.slack.interactions
    forged = send(driver.slash_command(replica.url + "/slack/commands", "checkin CB-1.KR3 7",
                                       user_id=BOB_SLACK, secret="not-the-secret"))
    assert forged.status == 401 and "bad_signature" in forged.json()["error"]
    teams = world.teams
    activity = teams.bot_framework.invoke_activity(
        {"plan": "alpha", "kr": "CO-1.KR3", "value.CO-1.KR3": "7"}, aad_object_id=BOB_TEAMS,
        service_url=teams.service_url, conversation_id="19:plans@thread.tacv2")
    assert teams.bot_framework.send(replica.url + "/api/messages", activity,
                                    token="not.a.token").status == 401
    assert _checkins(replica, "beta", "CB-1.KR3") == []
    assert _checkins(replica, "alpha", "CO-1.KR3") == []


def test_plans_chat_given_plan_dropped_after_routing_answers_no_longer_served(
    world: SandboxWorld, replica: Replica, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from okr_sync.sync.service.plans_chat import PlansChat

    routed = PlansChat.route
    # The folder drops the plan between routing and answering: routed to a plan now gone.
    monkeypatch.setattr(PlansChat, "route",
                        lambda self, ref: ("retired", routed(self, ref)[1]))
    driver = world.slack.interactions
    reply = send(driver.slash_command(replica.url + "/slack/commands", "checkin CB-1.KR3 7",
                                      user_id=BOB_SLACK))
    assert reply.status == 200
    assert "'retired' is no longer served here" in reply.json()["text"]
    teams = world.teams
    activity = teams.bot_framework.invoke_activity(
        {"kr": "CB-1.KR3", "value.CB-1.KR3": "7"}, aad_object_id=BOB_TEAMS,
        service_url=teams.service_url, conversation_id="19:plans@thread.tacv2")
    answer = teams.bot_framework.send(replica.url + "/api/messages", activity,
                                      token=teams.bot_framework.token(
                                          service_url=teams.service_url))
    assert answer.status == 200 and "no longer served here" in json.dumps(answer.body)
    assert _checkins(replica, "beta", "CB-1.KR3") == []


def test_plans_report_given_two_plans_lists_them_and_serves_each(replica: Replica) -> None:
    index = requests.get(replica.url + "/", timeout=10)
    assert index.status_code == 200
    assert 'href="/report/alpha"' in index.text and 'href="/report/beta"' in index.text
    beta = requests.get(replica.url + "/report/beta", timeout=10)
    assert beta.status_code == 200 and "CB-1.KR3" in beta.text
    assert requests.get(replica.url + "/report/gamma", timeout=10).status_code == 404


@pytest.mark.postgres
def test_plans_chat_given_two_replicas_on_postgresql_refuses_replays_and_reaches_the_holder(
    world: SandboxWorld, tmp_path: Path, postgres_url: str,
) -> None:
    folder = write_folder(tmp_path / "plans", world)
    settings = chat_settings(world, postgres_url)
    stop, threads = threading.Event(), []
    try:
        first = start_replica(world, folder, settings, stop, threads, "r1")
        second = start_replica(world, folder, settings, stop, threads, "r2")
        request = world.slack.interactions.slash_command(first.url + "/slack/commands",
                                                         "help", user_id=BOB_SLACK)
        assert send(request).status == 200
        replay = SignedRequest(second.url + "/slack/commands", request.body, request.headers)
        refused = send(replay)
        assert refused.status == 401
        assert "replayed" in refused.json()["error"]
        # A new request (a new signature) is taken by either replica.
        fresh = world.slack.interactions.slash_command(second.url + "/slack/commands",
                                                       "help", user_id=BOB_SLACK)
        assert send(fresh).status == 200

        # Once the plans are shared out, a check-in for beta sent to the replica that does
        # not run it is stored in beta's store and beta's replica posts the change note.
        def holders() -> dict[str, str] | None:
            with Store(postgres_url) as store:
                leases = {p: lease.replica for p, lease in store.plan_leases().items()}
            return leases if sorted(leases) == ["alpha", "beta"] and \
                set(leases.values()) == {"r1", "r2"} else None

        leases = wait_for_value(holders)
        for plan_id in ("alpha", "beta"):
            wait_for(lambda plan_id=plan_id: world.slack.top_level(plan_channel(plan_id)))
        elsewhere, holder = (first, second) if leases["beta"] == "r2" else (second, first)
        assert elsewhere.coordinator.worker("beta") is None
        # The holder's own first pass is done: with an hourly schedule, the next pass is
        # the one the check-in asks for through beta's store.
        wait_for(lambda: (w := holder.coordinator.worker("beta")) is not None
                 and w.view().passes >= 1 and w.view().role == "leader")
        reply = send(world.slack.interactions.slash_command(
            elsewhere.url + "/slack/commands", 'checkin beta:CB-1.KR3 8 "from elsewhere"',
            user_id=BOB_SLACK))
        assert reply.json()["text"] == "Checking in CB-1.KR3…"
        wait_for(lambda: _checkins(elsewhere, "beta", "CB-1.KR3"))
        (stored,) = _checkins(elsewhere, "beta", "CB-1.KR3")
        assert (stored.value, stored.author) == (8, "bob")
        wait_for(lambda: any("from elsewhere" in n for n in _notes(world, "beta")))
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
