"""TeamsBotClient over loopback HTTP: MSAL against the sandbox's Entra, Bot Connector calls."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import SecretStr

from okr_sync.connectors.errors import AuthError, RateLimitedError, TransientError
from okr_sync.connectors.http import RetryPolicy
from okr_sync.connectors.teams.client import (
    TeamsAuthError,
    TeamsBotClient,
    TeamsNotFoundError,
    TeamsPayloadError,
    TeamsPermanentError,
    TeamsTransientError,
    adaptive_card_attachment,
)
from okr_sync.sandbox.teams.server import TeamsSandbox

CONVERSATION = "19:enterprise-okrs@thread.tacv2"
SECRET = "Xy7~sandbox.client-secret_value"


class RecordingSleep:
    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def card(text: str = "CO-1 Win the enterprise segment: 0.53") -> dict[str, Any]:
    return {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.5",
        "body": [{"type": "TextBlock", "text": text, "wrap": True}],
        "msteams": {"width": "Full"},
    }


def card_activity(card: dict[str, Any]) -> dict[str, Any]:
    """A Bot Framework message activity carrying one Adaptive Card."""
    return {"type": "message", "attachments": [adaptive_card_attachment(card)]}


@pytest.fixture
def sandbox() -> Iterator[TeamsSandbox]:
    with TeamsSandbox(app_secret=SECRET) as running:
        yield running


def make_client(
    sandbox: TeamsSandbox,
    *,
    app_id: str | None = None,
    secret: str = SECRET,
    tenant_id: str | None = None,
    attempts: int = 4,
) -> TeamsBotClient:
    return TeamsBotClient(
        app_id or sandbox.app_id,
        SecretStr(secret),
        tenant_id or sandbox.tenant_id,
        sandbox.service_url,
        http_client=sandbox.msal_http_client(timeout=5.0),
        policy=RetryPolicy(max_attempts=attempts, timeout=5.0, max_total_wait=None),
        sleep=RecordingSleep(),
    )


@pytest.fixture
def client(sandbox: TeamsSandbox) -> Iterator[TeamsBotClient]:
    made = make_client(sandbox)
    yield made
    made.close()


def test_post_activity_given_card_posts_through_msal_token_and_returns_id(
    client: TeamsBotClient, sandbox: TeamsSandbox
) -> None:
    activity_id = client.post_activity(CONVERSATION, card_activity(card()))

    [stored] = sandbox.activities(CONVERSATION)
    assert stored.id == activity_id
    assert stored.cards == [card()]
    assert (sandbox.counters["openid"], sandbox.token_requests) == (1, 1)


def test_update_activity_given_posted_activity_replaces_it_in_place(
    client: TeamsBotClient, sandbox: TeamsSandbox
) -> None:
    activity_id = client.post_activity(CONVERSATION, card_activity(card("v1")))

    returned = client.update_activity(CONVERSATION, activity_id, card_activity(card("v2")))

    assert returned == activity_id
    [stored] = sandbox.activities(CONVERSATION)
    assert stored.updated
    assert stored.cards == [card("v2")]
    assert stored.history[0]["attachments"][0]["content"] == card("v1")


def test_post_activity_given_two_posts_requests_one_token(
    client: TeamsBotClient, sandbox: TeamsSandbox
) -> None:
    client.post_activity(CONVERSATION, card_activity(card("one")))
    client.post_activity(CONVERSATION, card_activity(card("two")))

    assert sandbox.token_requests == 1
    assert len(sandbox.activities(CONVERSATION)) == 2


@pytest.mark.parametrize("status", [429, 412, 502, 503, 504])
def test_post_activity_given_retryable_status_retries_and_posts_once(
    client: TeamsBotClient, sandbox: TeamsSandbox, status: int
) -> None:
    sandbox.inject_status("activity", status, count=2)

    client.post_activity(CONVERSATION, card_activity(card()))

    assert len(sandbox.activities(CONVERSATION)) == 1
    assert sandbox.counters[f"status:{status}"] == 2
    assert len(client.retrier.waits) == 2


def test_post_activity_given_429_with_retry_after_waits_at_least_that_long(
    client: TeamsBotClient, sandbox: TeamsSandbox
) -> None:
    sandbox.inject_status("activity", 429, retry_after=9)

    client.post_activity(CONVERSATION, card_activity(card()))

    assert len(client.retrier.waits) == 1
    assert client.retrier.waits[0] >= 9


def test_post_activity_given_persistent_429_raises_rate_limited(
    client: TeamsBotClient, sandbox: TeamsSandbox
) -> None:
    sandbox.inject_status("activity", 429, count=10, retry_after=3)

    with pytest.raises(RateLimitedError) as raised:
        client.post_activity(CONVERSATION, card_activity(card()))

    assert isinstance(raised.value, TeamsTransientError)
    assert (raised.value.status, raised.value.retry_after) == (429, 3)
    assert sandbox.counters["activity.post"] == 4


def test_post_activity_given_500_is_permanent_and_not_retried(
    client: TeamsBotClient, sandbox: TeamsSandbox
) -> None:
    sandbox.inject_status("activity", 500)

    with pytest.raises(TeamsPermanentError) as raised:
        client.post_activity(CONVERSATION, card_activity(card()))

    assert raised.value.code == "InternalServerError"
    assert sandbox.counters["activity.post"] == 1


def test_post_activity_given_invalid_card_raises_payload_error_with_reason(
    client: TeamsBotClient,
) -> None:
    bad = {"type": "AdaptiveCard", "version": "1.5", "body": [{"type": "TextBlock"}]}

    with pytest.raises(TeamsPayloadError) as raised:
        client.post_activity(CONVERSATION, card_activity(bad))

    assert (raised.value.status, raised.value.code) == (400, "BadArgument")
    assert CONVERSATION in str(raised.value) and "body/0" in str(raised.value)


def test_post_activity_given_card_over_28kb_raises_payload_error(client: TeamsBotClient) -> None:
    with pytest.raises(TeamsPayloadError) as raised:
        client.post_activity(CONVERSATION, card_activity(card("x" * 29_000)))

    assert (raised.value.status, raised.value.code) == (413, "MessageSizeTooBig")


def test_update_activity_given_unknown_activity_raises_not_found(client: TeamsBotClient) -> None:
    with pytest.raises(TeamsNotFoundError) as raised:
        client.update_activity(CONVERSATION, "1700000000000", card_activity(card()))

    assert raised.value.code == "ActivityNotFound"
    assert "1700000000000" in str(raised.value)


def test_post_activity_given_unknown_conversation_raises_not_found() -> None:
    with TeamsSandbox(app_secret=SECRET, conversations=["19:known@thread.tacv2"]) as sandbox:
        client = make_client(sandbox)

        with pytest.raises(TeamsNotFoundError) as raised:
            client.post_activity(CONVERSATION, card_activity(card()))

    assert raised.value.code == "ConversationNotFound"


def test_post_activity_given_revoked_token_fetches_a_new_one_once(
    client: TeamsBotClient, sandbox: TeamsSandbox
) -> None:
    client.post_activity(CONVERSATION, card_activity(card("one")))
    sandbox.revoke_tokens()

    client.post_activity(CONVERSATION, card_activity(card("two")))

    assert sandbox.token_requests == 2
    assert sandbox.counters["status:401"] == 1
    assert len(sandbox.activities(CONVERSATION)) == 2


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"secret": "wrong-client-secret"}, "invalid_client"),
        ({"app_id": "99999999-0000-4000-8000-000000000000"}, "unauthorized_client"),
        ({"tenant_id": "22222222-2222-4222-8222-222222222222"}, "tenant_discovery_failed"),
    ],
    ids=["wrong-secret", "unknown-app", "unknown-tenant"],
)
def test_post_activity_given_bad_credentials_raises_auth_error_without_secret(
    sandbox: TeamsSandbox,
    caplog: pytest.LogCaptureFixture,
    overrides: dict[str, str],
    code: str,
) -> None:
    client = make_client(
        sandbox,
        app_id=overrides.get("app_id"),
        secret=overrides.get("secret", SECRET),
        tenant_id=overrides.get("tenant_id"),
    )
    caplog.set_level(logging.DEBUG)

    with pytest.raises(TeamsAuthError) as raised:
        client.post_activity(CONVERSATION, card_activity(card()))

    error = raised.value
    assert isinstance(error, AuthError)
    assert error.code == code
    assert CONVERSATION in str(error)
    secret = overrides.get("secret", SECRET)
    for text in (str(error), repr(error), repr(error.args), repr(client), caplog.text):
        assert secret not in text
    assert sandbox.counters["activity.post"] == 0
    assert error.__cause__ is None


def test_post_activity_given_token_endpoint_5xx_is_transient_and_msal_replays_it(
    client: TeamsBotClient, sandbox: TeamsSandbox
) -> None:
    # MSAL's throttle cache serves the same 5xx for its Retry-After window
    # (default 5 s), so quick retries never reach the token endpoint again.
    sandbox.inject_status("token", 500)

    with pytest.raises(TeamsTransientError) as raised:
        client.post_activity(CONVERSATION, card_activity(card()))

    assert raised.value.code == "token_endpoint_unavailable"
    assert sandbox.token_requests == 1
    assert sandbox.counters["activity.post"] == 0
    assert isinstance(client.retrier.sleep, RecordingSleep)
    assert len(client.retrier.sleep.waits) == 3, "four attempts, three sleeps"


def test_post_activity_given_tenant_discovery_503_retries_with_a_fresh_app(
    client: TeamsBotClient, sandbox: TeamsSandbox
) -> None:
    sandbox.inject_status("openid", 503)

    client.post_activity(CONVERSATION, card_activity(card()))

    assert sandbox.counters["openid"] == 2
    assert len(sandbox.activities(CONVERSATION)) == 1


def test_post_activity_given_temporarily_unavailable_token_error_retries(
    client: TeamsBotClient, sandbox: TeamsSandbox
) -> None:
    sandbox.inject_status("token", 400, code="temporarily_unavailable")

    with pytest.raises(TransientError):
        client.post_activity(CONVERSATION, card_activity(card()))
    # MSAL replays an HTTP 400 for 60 s; a fresh client (one per process) recovers.
    fresh = make_client(sandbox)
    fresh.post_activity(CONVERSATION, card_activity(card()))

    assert len(sandbox.activities(CONVERSATION)) == 1


def test_msal_http_client_given_other_host_refuses_to_contact_it(sandbox: TeamsSandbox) -> None:
    http_client = sandbox.msal_http_client()

    with pytest.raises(RuntimeError):
        http_client.get("https://example.com/tenant/v2.0/.well-known/openid-configuration")


def test_repr_given_client_shows_ids_not_secret(client: TeamsBotClient) -> None:
    assert SECRET not in repr(client)
    assert client.tenant_id in repr(client)


def test_acquire_token_given_valid_app_gets_a_token_and_posts_nothing(
    client: TeamsBotClient, sandbox: TeamsSandbox
) -> None:
    client.acquire_token()
    assert sandbox.token_requests == 1
    assert sandbox.activities(CONVERSATION) == []


def test_acquire_token_given_wrong_secret_raises_auth_error_without_the_secret(
    sandbox: TeamsSandbox,
) -> None:
    wrong = "Wr0ng~secret-value_for-the-check"
    with pytest.raises(TeamsAuthError) as raised:
        make_client(sandbox, secret=wrong).acquire_token()
    assert wrong not in str(raised.value) and SECRET not in str(raised.value)
