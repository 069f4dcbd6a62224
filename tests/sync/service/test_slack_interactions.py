"""The Slack endpoint's rules on its own (a WSGI client, recorded ports): ``anyone`` plans,
serve without a bot token, oversized bodies."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import pytest
from pydantic import SecretStr
from werkzeug.test import Client
from werkzeug.wrappers import Request, Response

from okr_sync.config.plan import Plan
from okr_sync.config.plan_loader import load_plan_text
from okr_sync.sandbox.slack.interactions import sign
from okr_sync.sync.service.slack_interactions import SlackInteractions, SlackPorts
from okr_sync.sync.service.slack_signature import SlackVerifier
from okr_sync.sync.store.store import Store
from support.paths import DEMO_PLAN

SECRET = "unit-secret"


class Recorded:
    def __init__(self) -> None:
        self.views: list[tuple[str, dict[str, Any]]] = []
        self.responses: list[tuple[str, dict[str, Any]]] = []
        self.checkins: list[str] = []

    def ports(self, *, bot_token: bool) -> SlackPorts:
        return SlackPorts(
            open_view=(lambda t, v: self.views.append((t, v))) if bot_token else None,
            respond=lambda url, message: self.responses.append((url, message)),
            on_checkin=self.checkins.append,
        )


def _endpoint(plan: Plan, store: Store, recorded: Recorded, *, bot_token: bool = True
              ) -> Iterator[tuple[Client, SlackInteractions]]:
    endpoint = SlackInteractions(plan, store, SlackVerifier(SecretStr(SECRET),
                                                            clock=lambda: datetime.now(UTC)),
                                 recorded.ports(bot_token=bot_token),
                                 clock=lambda: datetime.now(UTC))

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        response: Response = endpoint(Request(environ))
        return response(environ, start_response)

    try:
        yield Client(app), endpoint
    finally:
        endpoint.close()


def _post(client: Client, path: str, fields: dict[str, str]) -> Any:
    body = urlencode(fields).encode()
    stamp = str(int(datetime.now(UTC).timestamp()))
    return client.post(path, data=body, headers={
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": sign(SECRET, stamp, body)})


def test_checkin_given_plan_allows_anyone_stores_a_stranger_as_their_slack_id(
    store: Store,
) -> None:
    plan = load_plan_text(DEMO_PLAN.read_text() + "\ncheckins: {allowed: [anyone]}\n")
    recorded = Recorded()
    for client, endpoint in _endpoint(plan, store, recorded):
        reply = _post(client, "/slack/commands", {
            "command": "/okr", "text": "checkin CO-1.KR3 at_risk “customer paused”",
            "user_id": "U0STRANGER", "response_url": "https://hooks.slack.com/commands/T/1/x"})
        assert reply.status_code == 200 and reply.json["text"] == "Checking in CO-1.KR3…"
        endpoint.work.join()
    (stored,) = store.checkins("CO-1.KR3")
    assert (stored.value, stored.confidence, stored.note, stored.author) == (
        None, "at_risk", "customer paused", "slack:U0STRANGER")
    assert recorded.checkins == ["CO-1.KR3"]
    ((url, answer),) = recorded.responses
    assert url.startswith("https://hooks.slack.com/") and answer["response_type"] == "ephemeral"
    assert "at risk, a note for the next change note" in answer["text"]


def test_button_given_serve_without_bot_token_answers_with_the_slash_command_instead(
    store: Store,
) -> None:
    plan = load_plan_text(DEMO_PLAN.read_text())
    recorded = Recorded()
    payload = {"type": "block_actions", "user": {"id": "U0DEMOBOB"}, "trigger_id": "T1",
               "response_url": "https://hooks.slack.com/actions/T/1/y",
               "actions": [{"action_id": "okr_checkin:CO-1.KR3", "value": "CO-1.KR3"}]}
    for client, endpoint in _endpoint(plan, store, recorded, bot_token=False):
        reply = _post(client, "/slack/interactions", {"payload": json.dumps(payload)})
        assert (reply.status_code, reply.data) == (200, b"")
        endpoint.work.join()
    assert recorded.views == []
    ((_, answer),) = recorded.responses
    assert "no Slack bot token" in answer["text"] and "/okr checkin" in answer["text"]


def test_slack_endpoint_given_body_over_the_limit_refuses_it_unread(store: Store) -> None:
    recorded = Recorded()
    for client, endpoint in _endpoint(load_plan_text(DEMO_PLAN.read_text()), store, recorded):
        huge = b"x" * (endpoint.max_body + 1)
        reply = client.post("/slack/commands", data=huge,
                            headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert reply.status_code == 413
    assert store.checkins("CO-1.KR3") == []


@pytest.mark.parametrize("text", ["", "help", "frobnicate"])
def test_slash_command_given_help_or_unknown_words_answers_the_usage(
    store: Store, text: str,
) -> None:
    recorded = Recorded()
    for client, _ in _endpoint(load_plan_text(DEMO_PLAN.read_text()), store, recorded):
        reply = _post(client, "/slack/commands", {"command": "/okr", "text": text,
                                                  "user_id": "U0DEMOBOB"})
        assert reply.status_code == 200
        assert "`/okr explain KR`" in reply.json["text"]


def _signed_help(client: Client, body: bytes, stamp: str) -> Any:
    return client.post("/slack/commands", data=body, headers={
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": sign(SECRET, stamp, body)})


def test_build_slack_endpoint_given_two_replicas_on_one_store_refuses_a_replay_at_the_other(
    migrated_database_url: str,
) -> None:
    from types import SimpleNamespace

    from okr_sync.config.settings import Settings
    from okr_sync.sync.service.slack_interactions import build_slack_endpoint

    settings = Settings(_env_file=None, slack_signing_secret=SecretStr(SECRET))
    plan = load_plan_text(DEMO_PLAN.read_text())
    clients, endpoints, stores = [], [], []
    for _ in range(2):  # two processes: each its own Store on the one database
        store = Store(migrated_database_url)
        runtime: Any = SimpleNamespace(settings=settings, store=store, plan=plan)
        endpoint = build_slack_endpoint(runtime, lambda kr: None, clock=lambda: datetime.now(UTC))
        assert endpoint is not None
        clients.append(Client(Request.application(endpoint)))  # type: ignore[arg-type]
        endpoints.append(endpoint)
        stores.append(store)
    try:
        body = urlencode({"command": "/okr", "text": "help", "user_id": "U0DEMOBOB"}).encode()
        stamp = str(int(datetime.now(UTC).timestamp()))
        assert _signed_help(clients[0], body, stamp).status_code == 200
        replay = _signed_help(clients[1], body, stamp)
        assert replay.status_code == 401 and "replayed" in replay.get_data(as_text=True)
    finally:
        for endpoint, store in zip(endpoints, stores, strict=True):
            endpoint.close()
            store.close()


def test_button_given_a_plan_store_without_tables_answers_store_not_ready(
    sqlite_url: str,
) -> None:
    recorded = Recorded()
    payload = {"type": "block_actions", "user": {"id": "U0DEMOBOB"}, "trigger_id": "T1",
               "response_url": "https://hooks.slack.com/actions/T/1/y",
               "actions": [{"action_id": "okr_checkin:CO-1.KR3", "value": "CO-1.KR3"}]}
    with Store(sqlite_url, ensure=False) as unmigrated:  # a plan just added: no tables yet
        for client, endpoint in _endpoint(load_plan_text(DEMO_PLAN.read_text()), unmigrated,
                                          recorded):
            reply = _post(client, "/slack/interactions", {"payload": json.dumps(payload)})
            assert (reply.status_code, reply.data) == (200, b"")
            endpoint.work.join()
    assert recorded.views == []
    ((_, answer),) = recorded.responses
    assert "store is not ready; try again shortly" in answer["text"]
