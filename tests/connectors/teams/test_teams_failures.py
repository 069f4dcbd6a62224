"""Teams clients under transport and login failures (strict ``responses``, ordered; sandbox)."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qs

import pytest
import requests
import responses
from pydantic import SecretStr
from responses.registries import OrderedRegistry

from okr_sync.connectors.errors import PermanentError
from okr_sync.connectors.http import RetryPolicy
from okr_sync.connectors.teams.client import (
    TeamsAuthError,
    TeamsBotClient,
    TeamsPermanentError,
    TeamsTransientError,
    TeamsWorkflowClient,
)
from okr_sync.sandbox.teams.server import TeamsSandbox

TENANT = "44444444-4444-4444-8444-444444444444"
LOGIN = f"https://login.microsoftonline.com/{TENANT}"
OPENID = f"{LOGIN}/v2.0/.well-known/openid-configuration"
TOKEN_URL = f"{LOGIN}/oauth2/v2.0/token"
SERVICE = "https://smba.trafficmanager.net/teams/"
CONVERSATION = "19:abc@thread.tacv2"
ACTIVITIES = f"{SERVICE}v3/conversations/19%3Aabc%40thread.tacv2/activities"
SECRET = "failures-client-secret"
SIG = "Wf5ig-S3cr3t"
WORKFLOW_URL = (
    "https://prod-02.westeurope.logic.azure.com:443/workflows/f00d/triggers/manual/paths/"
    f"invoke?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig={SIG}"
)
ACTIVITY = {"type": "message", "text": "hello"}
CARD = {"type": "AdaptiveCard", "version": "1.5", "body": []}


@pytest.fixture
def mocked() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(
        assert_all_requests_are_fired=True, registry=OrderedRegistry
    ) as rsps:
        yield rsps


def expect_discovery(mocked: responses.RequestsMock) -> None:
    mocked.get(
        OPENID,
        json={
            "token_endpoint": TOKEN_URL,
            "authorization_endpoint": f"{LOGIN}/oauth2/v2.0/authorize",
            "issuer": f"{LOGIN}/v2.0",
        },
    )


def expect_token(mocked: responses.RequestsMock) -> None:
    expect_discovery(mocked)
    mocked.post(
        TOKEN_URL,
        json={"token_type": "Bearer", "expires_in": 3600, "access_token": "at-1"},
    )


def bot(*, secret: str = SECRET, attempts: int = 3, max_delay: float = 60.0) -> TeamsBotClient:
    policy = RetryPolicy(
        max_attempts=attempts, timeout=5.0,
        max_delay=max_delay,
    )  # fmt: skip
    return TeamsBotClient(
        "app-id", SecretStr(secret), TENANT, SERVICE, policy=policy, sleep=lambda _s: None
    )


def workflow(url: str = WORKFLOW_URL, *, attempts: int = 2) -> TeamsWorkflowClient:
    return TeamsWorkflowClient(
        SecretStr(url), policy=RetryPolicy(max_attempts=attempts, timeout=5.0),
        sleep=lambda _seconds: None,
    )  # fmt: skip


def assert_hides(error: BaseException, *secrets: str) -> None:
    for text in (str(error), repr(error), repr(error.args)):
        for secret in secrets:
            assert secret not in text
    assert error.__cause__ is None and error.__suppress_context__


# -- requests exceptions ----------------------------------------------------------------

NON_NETWORK_ERRORS: list[tuple[Exception, str]] = [
    (requests.exceptions.SSLError(f"certificate verify failed for {WORKFLOW_URL}"), "tls_error"),
    (requests.exceptions.InvalidHeader(f"Invalid header value {SECRET!r}"), "request_error"),
    (requests.exceptions.InvalidURL(f"Failed to parse: {WORKFLOW_URL}"), "request_error"),
]


@pytest.mark.parametrize(("raised", "code"), NON_NETWORK_ERRORS)
def test_post_card_given_non_network_request_error_is_permanent_naming_only_its_type(
    mocked: responses.RequestsMock, raised: Exception, code: str
) -> None:
    mocked.post(WORKFLOW_URL, body=raised)
    client = workflow()

    with pytest.raises(TeamsPermanentError) as caught:
        client.post_card(CARD)

    assert isinstance(caught.value, PermanentError)
    assert caught.value.code == code
    assert type(raised).__name__ in str(caught.value)
    assert_hides(caught.value, SIG, "f00d", SECRET)
    assert client.retrier.waits == []


@pytest.mark.parametrize(("raised", "code"), NON_NETWORK_ERRORS)
def test_post_activity_given_non_network_request_error_is_permanent_naming_only_its_type(
    mocked: responses.RequestsMock, raised: Exception, code: str
) -> None:
    expect_token(mocked)
    mocked.post(ACTIVITIES, body=raised)

    with pytest.raises(TeamsPermanentError) as caught:
        bot().post_activity(CONVERSATION, ACTIVITY)

    assert caught.value.code == code
    assert_hides(caught.value, SIG, SECRET)


@pytest.mark.parametrize(
    "raised",
    [
        requests.exceptions.ChunkedEncodingError(f"Connection broken: {WORKFLOW_URL}"),
        requests.exceptions.ContentDecodingError(f"Bad gzip: {WORKFLOW_URL}"),
    ],
)
def test_post_card_given_broken_reply_body_is_transient_and_retried(
    mocked: responses.RequestsMock, raised: Exception
) -> None:
    mocked.post(WORKFLOW_URL, body=raised)
    mocked.post(WORKFLOW_URL, body=raised)

    with pytest.raises(TeamsTransientError) as caught:
        workflow(attempts=2).post_card(CARD)

    assert caught.value.code == "incomplete_response"
    assert_hides(caught.value, SIG, "f00d")


def test_post_activity_given_tls_failure_at_login_is_permanent_without_secret(
    mocked: responses.RequestsMock,
) -> None:
    mocked.get(OPENID, body=requests.exceptions.SSLError(f"bad cert; {SECRET}"))

    with pytest.raises(TeamsPermanentError) as caught:
        bot().post_activity(CONVERSATION, ACTIVITY)

    assert caught.value.code == "tls_error"
    assert_hides(caught.value, SECRET)


# -- workflow URL and secret hygiene ------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        f"https://prod.logic.azure.com:99999/workflows/x?sig={SIG}",
        f"https://prod.logic.azure.com:44a3/workflows/x?sig={SIG}",
        f"https://prod.logic.azure.com:0/workflows/x?sig={SIG}",
        f"http://prod.logic.azure.com/workflows/x?sig={SIG}",
        f"ftp://prod.logic.azure.com/workflows/x?sig={SIG}",
        f"https:///workflows/x?sig={SIG}",
        f"https://[::1/workflows/x?sig={SIG}",
        f"prod.logic.azure.com/workflows/x?sig={SIG}",
    ],
)
def test_workflow_client_given_unusable_url_raises_value_error_without_it(url: str) -> None:
    with pytest.raises(ValueError, match="Teams Workflows URL") as caught:
        workflow(url)

    assert SIG not in str(caught.value)
    assert caught.value.__cause__ is None


def test_workflow_client_given_loopback_http_url_is_accepted() -> None:
    assert workflow(f"http://127.0.0.1:8080/workflows/x?sig={SIG}").target == "http://127.0.0.1/…"


def test_post_card_given_url_with_trailing_newline_posts_to_the_stripped_url(
    mocked: responses.RequestsMock,
) -> None:
    mocked.post(WORKFLOW_URL, status=202)

    workflow(f" {WORKFLOW_URL}\n").post_card(CARD)

    assert mocked.calls[0].request.url == WORKFLOW_URL


def test_post_activity_given_secret_with_trailing_newline_sends_the_stripped_secret(
    mocked: responses.RequestsMock,
) -> None:
    expect_token(mocked)
    mocked.post(ACTIVITIES, status=201, json={"id": "1:abc"})

    bot(secret=f"{SECRET}\n").post_activity(CONVERSATION, ACTIVITY)

    form = parse_qs(str(mocked.calls[1].request.body))
    assert form["client_secret"] == [SECRET]


def test_login_requests_given_default_http_client_carry_the_timeout(
    mocked: responses.RequestsMock,
) -> None:
    expect_token(mocked)
    mocked.post(ACTIVITIES, status=201, json={"id": "1:abc"})

    bot().post_activity(CONVERSATION, ACTIVITY)

    sent = [getattr(call.request, "req_kwargs", {}).get("timeout") for call in mocked.calls]
    assert sent == [5.0, 5.0, 5.0]


# -- token endpoint and tenant discovery ------------------------------------------------------


def test_post_activity_given_token_endpoint_5xx_asks_to_wait_out_msal_replay(
    mocked: responses.RequestsMock,
) -> None:
    expect_discovery(mocked)
    mocked.post(TOKEN_URL, status=500, body="")

    with pytest.raises(TeamsTransientError) as caught:
        bot(attempts=1).post_activity(CONVERSATION, ACTIVITY)

    assert caught.value.code == "token_endpoint_unavailable"
    assert caught.value.retry_after == 60


def test_post_activity_given_temporarily_unavailable_token_error_beyond_cap_is_handed_back(
    mocked: responses.RequestsMock,
) -> None:
    # MSAL replays the 400 for 60 s: with a shorter cap the caller reschedules.
    expect_discovery(mocked)
    mocked.post(TOKEN_URL, status=400, json={"error": "temporarily_unavailable"})
    client = bot(max_delay=30)

    with pytest.raises(TeamsTransientError) as caught:
        client.post_activity(CONVERSATION, ACTIVITY)

    assert (caught.value.code, caught.value.retry_after) == ("temporarily_unavailable", 60)
    assert client.retrier.waits == []


@pytest.mark.parametrize("status", [429, 500, 503])
def test_post_activity_given_throttled_tenant_discovery_is_transient_then_recovers(
    status: int,
) -> None:
    with TeamsSandbox(app_secret=SECRET) as sandbox:
        sandbox.inject_status("openid", status, retry_after=3)
        client = TeamsBotClient(
            sandbox.app_id, SecretStr(SECRET), sandbox.tenant_id, sandbox.service_url,
            http_client=sandbox.msal_http_client(timeout=5.0),
            policy=RetryPolicy(max_attempts=2, timeout=5.0),
            sleep=lambda _s: None,
        )  # fmt: skip

        client.post_activity(CONVERSATION, ACTIVITY)

        assert sandbox.counters["openid"] == 2
        assert client.retrier.waits[0] >= 3
        assert len(sandbox.activities(CONVERSATION)) == 1


def test_post_activity_given_tenant_discovery_429_once_out_of_attempts_is_not_auth_error(
    mocked: responses.RequestsMock,
) -> None:
    mocked.get(OPENID, status=429, headers={"Retry-After": "7"}, json={"error": "throttled"})

    with pytest.raises(TeamsTransientError) as caught:
        bot(attempts=1).post_activity(CONVERSATION, ACTIVITY)

    assert not isinstance(caught.value, TeamsAuthError)
    assert (caught.value.code, caught.value.status) == ("tenant_discovery_unavailable", 429)
    assert caught.value.retry_after == 7


def test_post_activity_given_tenant_discovery_400_stays_an_auth_error(
    mocked: responses.RequestsMock,
) -> None:
    mocked.get(OPENID, status=400, json={"error": "invalid_tenant"})

    with pytest.raises(TeamsAuthError) as caught:
        bot().post_activity(CONVERSATION, ACTIVITY)

    assert caught.value.code == "tenant_discovery_failed"
