"""The Teams sandbox speaks the wire protocols: Workflows, Entra token, Bot Connector."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from okr_sync.sandbox.teams.adaptive_cards import card_errors
from okr_sync.sandbox.teams.server import BOT_FRAMEWORK_SCOPE, MAX_MESSAGE_BYTES, TeamsSandbox
from support.clocks import FakeMonotonic as FakeClock

TIMEOUT = 5.0
WORKFLOW = "0123456789abcdef0123456789abcdef"


def card(text: str = "hello") -> dict[str, Any]:
    return {"type": "AdaptiveCard", "version": "1.5",
            "body": [{"type": "TextBlock", "text": text}]}  # fmt: skip


def envelope(*cards: dict[str, Any]) -> dict[str, Any]:
    attachments = [
        {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": c}
        for c in cards
    ]
    return {"type": "message", "attachments": attachments}


@pytest.fixture
def sandbox() -> Iterator[TeamsSandbox]:
    with TeamsSandbox() as running:
        running.add_workflow(WORKFLOW)
        yield running


def token_form(sandbox: TeamsSandbox, **overrides: str) -> dict[str, str]:
    form = {
        "grant_type": "client_credentials",
        "client_id": sandbox.app_id,
        "client_secret": sandbox.app_secret,
        "scope": BOT_FRAMEWORK_SCOPE,
    }
    form.update(overrides)
    return form


def get_token(sandbox: TeamsSandbox, **overrides: str) -> requests.Response:
    url = f"{sandbox.url}/{sandbox.tenant_id}/oauth2/v2.0/token"
    return requests.post(url, data=token_form(sandbox, **overrides), timeout=TIMEOUT)


def test_workflow_given_valid_envelope_answers_202_with_empty_body(sandbox: TeamsSandbox) -> None:
    response = requests.post(
        sandbox.workflow_url(WORKFLOW), json=envelope(card("a"), card("b")), timeout=TIMEOUT
    )

    assert (response.status_code, response.content) == (202, b"")
    assert sandbox.workflow_cards(WORKFLOW) == [card("a"), card("b")]


def test_workflow_given_short_path_form_also_accepts(sandbox: TeamsSandbox) -> None:
    sig = sandbox.workflow_url(WORKFLOW).split("sig=")[1]

    response = requests.post(
        f"{sandbox.url}/workflows/{WORKFLOW}?sig={sig}", json=envelope(card()), timeout=TIMEOUT
    )

    assert response.status_code == 202


def test_workflow_given_missing_sig_answers_401(sandbox: TeamsSandbox) -> None:
    url = sandbox.workflow_url(WORKFLOW).split("&sig=")[0]

    response = requests.post(url, json=envelope(card()), timeout=TIMEOUT)

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "DirectApiAuthorizationRequired"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"type": "message", "attachments": []}, "attachments"),
        ({"attachments": envelope(card())["attachments"]}, "type"),
        ({"type": "message", "attachments": [{"contentType": "text/html", "content": "x"}]},
         "contentType"),
        ([card()], "type"),
    ],
    ids=["no-attachments", "no-type", "wrong-content-type", "not-an-object"],
)  # fmt: skip
def test_workflow_given_bad_envelope_answers_400_naming_the_problem(
    sandbox: TeamsSandbox, body: Any, reason: str
) -> None:
    response = requests.post(sandbox.workflow_url(WORKFLOW), json=body, timeout=TIMEOUT)

    assert response.status_code == 400
    assert reason in response.json()["error"]["message"]
    assert sandbox.workflow_posts(WORKFLOW) == []


def test_workflow_given_body_at_limit_accepts_and_one_byte_more_answers_413(
    sandbox: TeamsSandbox,
) -> None:
    base = json.dumps(envelope(card(""))).encode()
    fits = json.dumps(envelope(card("x" * (MAX_MESSAGE_BYTES - len(base))))).encode()
    headers = {"Content-Type": "application/json"}
    url = sandbox.workflow_url(WORKFLOW)

    at_limit = requests.post(url, data=fits, headers=headers, timeout=TIMEOUT)
    over = requests.post(url, data=fits.replace(b'"x', b'"xx', 1), headers=headers, timeout=TIMEOUT)

    assert len(fits) == MAX_MESSAGE_BYTES
    assert at_limit.status_code == 202
    assert over.status_code == 413
    assert over.json()["error"]["message"] == "Request Entity too large"


def test_openid_configuration_given_tenant_points_endpoints_at_authority_host(
    sandbox: TeamsSandbox,
) -> None:
    url = f"{sandbox.url}/{sandbox.tenant_id}/v2.0/.well-known/openid-configuration"

    config = requests.get(url, timeout=TIMEOUT).json()

    expected = f"https://login.microsoftonline.com/{sandbox.tenant_id}/oauth2/v2.0/token"
    assert config["token_endpoint"] == expected


def test_token_given_client_credentials_returns_bearer_token_shape(sandbox: TeamsSandbox) -> None:
    data = get_token(sandbox).json()

    assert set(data) == {"token_type", "expires_in", "ext_expires_in", "access_token"}
    assert data["token_type"] == "Bearer"
    assert (data["expires_in"], data["ext_expires_in"]) == (3600, 3600)


def test_token_given_basic_auth_credentials_accepts(sandbox: TeamsSandbox) -> None:
    form = token_form(sandbox)
    credentials = f"{form.pop('client_id')}:{form.pop('client_secret')}".encode()
    headers = {"Authorization": "Basic " + base64.b64encode(credentials).decode()}

    response = requests.post(
        f"{sandbox.url}/{sandbox.tenant_id}/oauth2/v2.0/token",
        data=form, headers=headers, timeout=TIMEOUT,
    )  # fmt: skip

    assert response.status_code == 200


@pytest.mark.parametrize(
    ("overrides", "status", "error", "aadsts"),
    [
        ({"client_secret": "nope"}, 401, "invalid_client", 7000215),
        ({"client_id": "someone-else"}, 400, "unauthorized_client", 700016),
        ({"scope": "https://graph.microsoft.com/.default"}, 400, "invalid_scope", 1002012),
        ({"grant_type": "password"}, 400, "unsupported_grant_type", 70003),
    ],
    ids=["bad-secret", "unknown-app", "wrong-scope", "wrong-grant"],
)
def test_token_given_bad_request_answers_entra_error_body(
    sandbox: TeamsSandbox, overrides: dict[str, str], status: int, error: str, aadsts: int
) -> None:
    response = get_token(sandbox, **overrides)

    body = response.json()
    assert (response.status_code, body["error"], body["error_codes"]) == (status, error, [aadsts])
    assert body["error_description"].startswith(f"AADSTS{aadsts}:")
    assert {"timestamp", "trace_id", "correlation_id", "error_uri"} <= set(body)


def activity_url(sandbox: TeamsSandbox, conversation: str = "19:c@thread.tacv2") -> str:
    return f"{sandbox.service_url}v3/conversations/{conversation}/activities"


def test_activities_given_no_or_expired_token_answers_401_error_response() -> None:
    clock = FakeClock(1_800_000_000.0)
    with TeamsSandbox(clock=clock, token_lifetime=60) as sandbox:
        token = get_token(sandbox).json()["access_token"]
        activity = {"type": "message", "text": "hi"}
        auth = {"Authorization": f"Bearer {token}"}
        anonymous = requests.post(activity_url(sandbox), json=activity, timeout=TIMEOUT)
        fresh = requests.post(activity_url(sandbox), json=activity, headers=auth, timeout=TIMEOUT)
        clock.now += 61
        expired = requests.post(activity_url(sandbox), json=activity, headers=auth, timeout=TIMEOUT)

    assert anonymous.status_code == 401 and expired.status_code == 401
    assert expired.json()["error"]["code"] == "Unauthorized"
    assert fresh.status_code == 201 and fresh.json()["id"]


def test_activities_given_non_message_or_empty_activity_answers_400(
    sandbox: TeamsSandbox,
) -> None:
    auth = {"Authorization": "Bearer " + get_token(sandbox).json()["access_token"]}

    typing = requests.post(activity_url(sandbox), json={"type": "typing"}, headers=auth,
                           timeout=TIMEOUT)  # fmt: skip
    empty = requests.post(activity_url(sandbox), json={"type": "message"}, headers=auth,
                          timeout=TIMEOUT)  # fmt: skip

    assert [typing.status_code, empty.status_code] == [400, 400]
    assert empty.json()["error"]["code"] == "BadArgument"


def test_inject_status_given_retry_after_sends_header_and_error_response(
    sandbox: TeamsSandbox,
) -> None:
    sandbox.inject_status("workflow", 429, retry_after=12)

    response = requests.post(sandbox.workflow_url(WORKFLOW), json=envelope(card()), timeout=TIMEOUT)

    assert (response.status_code, response.headers["Retry-After"]) == (429, "12")
    assert response.json()["error"]["code"] == "TooManyRequests"
    assert [(r.kind, r.status) for r in sandbox.requests] == [("workflow", 429)]


def test_inject_status_given_unknown_kind_raises(sandbox: TeamsSandbox) -> None:
    with pytest.raises(ValueError, match="unknown request kind"):
        sandbox.inject_status("graph", 500)


@pytest.mark.parametrize(
    ("candidate", "fragment"),
    [
        ({"type": "AdaptiveCard", "version": "1.5", "body": [{"type": "Bogus"}]}, "body/0"),
        ({"type": "AdaptiveCard", "version": "1.5", "body": [{"type": "TextBlock"}]},
         "body/0: 'text' is a required property"),
        ({"type": "AdaptiveCard", "version": "1.5",
          "body": [{"type": "FactSet", "facts": [{"title": "Band"}]}]},
         "body/0/facts/0: 'value' is a required property"),
        ({"type": "AdaptiveCard", "version": "2.0", "body": []}, "above 1.5"),
        ({"type": "AdaptiveCard", "version": "x", "body": []}, "needs a version"),
        ({"type": "MessageCard", "version": "1.5"}, "type"),
        ("not a card", "not a JSON object"),
    ],
)
def test_card_errors_given_invalid_card_explains_why(candidate: Any, fragment: str) -> None:
    assert any(fragment in problem for problem in card_errors(candidate))


def test_card_errors_given_rich_valid_card_with_msteams_returns_nothing() -> None:
    rich = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.5",
        "msteams": {"width": "Full"},
        "body": [
            {"type": "TextBlock", "text": "Q4", "size": "Large", "weight": "Bolder"},
            {"type": "ColumnSet", "columns": [
                {"type": "Column", "width": "stretch",
                 "items": [{"type": "TextBlock", "text": "CO-1", "wrap": True}]},
                {"type": "Column", "width": "auto",
                 "items": [{"type": "TextBlock", "text": "0.53", "color": "Warning"}]},
            ]},
            {"type": "FactSet", "facts": [{"title": "Band", "value": "progress"}]},
        ],
        "actions": [{"type": "Action.OpenUrl", "title": "Jira", "url": "https://jira.test/ENT-1"}],
    }  # fmt: skip

    assert card_errors(rich) == []


def test_delay_replies_given_short_client_timeout_times_out_before_taking_the_post(
    sandbox: TeamsSandbox,
) -> None:
    # The delay far exceeds the client's timeout; stopping the sandbox cuts it short.
    sandbox.delay_replies("workflow", 30.0)
    url = sandbox.workflow_url(WORKFLOW)

    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.post(url, json=envelope(card("late")), timeout=0.5)

    assert sandbox.counters["delayed"] == 1
    assert requests.post(url, json=envelope(card("on time")), timeout=TIMEOUT).status_code == 202
    assert [c["body"][0]["text"] for c in sandbox.workflow_cards(WORKFLOW)] == ["on time"]


def test_delay_replies_given_unknown_kind_or_infinite_seconds_refuses() -> None:
    with pytest.raises(ValueError, match="kind"):
        TeamsSandbox().delay_replies("bot", 1.0)
    with pytest.raises(ValueError, match="finite"):
        TeamsSandbox().delay_replies("workflow", float("inf"))
