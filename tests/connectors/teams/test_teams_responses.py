"""Teams client edge cases the sandbox cannot produce (strict ``responses``, ordered)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
import responses
from pydantic import SecretStr
from responses import matchers
from responses.registries import OrderedRegistry

from okr_sync.connectors.http import RetryPolicy
from okr_sync.connectors.teams.client import (
    TeamsBotClient,
    TeamsMalformedResponseError,
    TeamsPayloadError,
    TeamsPermanentError,
    TeamsTransientError,
    TeamsWorkflowClient,
)

TENANT = "33333333-3333-4333-8333-333333333333"
LOGIN = f"https://login.microsoftonline.com/{TENANT}"
SERVICE = "https://smba.trafficmanager.net/teams/"
CONVERSATION = "19:abc@thread.tacv2"
ACTIVITIES = f"{SERVICE}v3/conversations/19%3Aabc%40thread.tacv2/activities"
SECRET = "responses-client-secret"
WORKFLOW_URL = (
    "https://prod-01.westeurope.logic.azure.com:443/workflows/abc123/triggers/manual/paths/"
    "invoke?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig=S3cr3tS1gnature"
)
ACTIVITY = {"type": "message", "text": "hello"}


@pytest.fixture
def mocked() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(
        assert_all_requests_are_fired=True, registry=OrderedRegistry
    ) as rsps:
        yield rsps


def expect_token(mocked: responses.RequestsMock) -> None:
    mocked.get(
        f"{LOGIN}/v2.0/.well-known/openid-configuration",
        json={
            "token_endpoint": f"{LOGIN}/oauth2/v2.0/token",
            "authorization_endpoint": f"{LOGIN}/oauth2/v2.0/authorize",
            "issuer": f"{LOGIN}/v2.0",
        },
    )
    mocked.post(
        f"{LOGIN}/oauth2/v2.0/token",
        json={"token_type": "Bearer", "expires_in": 3600, "ext_expires_in": 3600,
              "access_token": "at-1"},
    )  # fmt: skip


def bot() -> TeamsBotClient:
    return TeamsBotClient(
        "app-id",
        SecretStr(SECRET),
        TENANT,
        SERVICE,
        policy=RetryPolicy(max_attempts=3, timeout=5.0),
        sleep=lambda _seconds: None,
    )


def test_post_activity_given_real_login_host_uses_bearer_token_and_encoded_conversation(
    mocked: responses.RequestsMock,
) -> None:
    expect_token(mocked)
    mocked.post(
        ACTIVITIES,
        status=201,
        json={"id": "1:abc"},
        match=[matchers.header_matcher({"Authorization": "Bearer at-1"})],
    )

    assert bot().post_activity(CONVERSATION, ACTIVITY) == "1:abc"


def test_post_activity_given_2xx_without_id_is_permanent_and_not_retried(
    mocked: responses.RequestsMock,
) -> None:
    expect_token(mocked)
    mocked.post(ACTIVITIES, status=201, json={})

    with pytest.raises(TeamsPermanentError) as raised:
        bot().post_activity(CONVERSATION, ACTIVITY)

    assert raised.value.code == "missing_activity_id"


def test_post_activity_given_non_json_2xx_is_malformed(mocked: responses.RequestsMock) -> None:
    expect_token(mocked)
    for _ in range(3):
        mocked.post(ACTIVITIES, status=200, body="<html/>")

    with pytest.raises(TeamsMalformedResponseError):
        bot().post_activity(CONVERSATION, ACTIVITY)


def test_post_activity_given_read_timeout_is_transient(mocked: responses.RequestsMock) -> None:
    expect_token(mocked)
    mocked.post(ACTIVITIES, body=requests.ReadTimeout("slow"))
    mocked.post(ACTIVITIES, status=201, json={"id": "1:abc"})

    assert bot().post_activity(CONVERSATION, ACTIVITY) == "1:abc"


def test_post_activity_given_token_endpoint_unreachable_is_transient_without_secret(
    mocked: responses.RequestsMock,
) -> None:
    for _ in range(3):  # one tenant discovery per attempt: a failed app is not kept
        mocked.get(
            f"{LOGIN}/v2.0/.well-known/openid-configuration",
            body=requests.ConnectionError("login host down"),
        )

    with pytest.raises(TeamsTransientError) as raised:
        bot().post_activity(CONVERSATION, ACTIVITY)

    assert raised.value.code == "tenant_discovery_unavailable"
    assert SECRET not in str(raised.value)


def workflow() -> TeamsWorkflowClient:
    return TeamsWorkflowClient(
        SecretStr(WORKFLOW_URL), policy=RetryPolicy(max_attempts=2, timeout=5.0),
        sleep=lambda _seconds: None,
    )  # fmt: skip


def test_post_card_given_legacy_200_body_accepts(mocked: responses.RequestsMock) -> None:
    mocked.post(WORKFLOW_URL, status=200, body="1")

    workflow().post_card({"type": "AdaptiveCard", "version": "1.5", "body": []})


def test_post_card_given_error_echoing_url_scrubs_it(mocked: responses.RequestsMock) -> None:
    echo = {"error": {"code": "InvalidTemplate", "message": f"bad call to {WORKFLOW_URL}"}}
    mocked.post(WORKFLOW_URL, status=400, json=echo)

    with pytest.raises(TeamsPayloadError) as raised:
        workflow().post_card({"type": "AdaptiveCard", "version": "1.5", "body": []})

    assert "S3cr3tS1gnature" not in str(raised.value)
    assert "abc123" not in str(raised.value)
    assert "https://prod-01.westeurope.logic.azure.com/…" in str(raised.value)
