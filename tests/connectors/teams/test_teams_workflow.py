"""TeamsWorkflowClient over loopback HTTP against the Teams sandbox's Workflows endpoint."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from pydantic import SecretStr

from okr_sync.connectors.errors import AuthError, PermanentError, TransientError
from okr_sync.connectors.http import RetryPolicy
from okr_sync.connectors.teams.client import (
    TeamsAuthError,
    TeamsNotFoundError,
    TeamsPayloadError,
    TeamsRateLimitedError,
    TeamsTransientError,
    TeamsWorkflowClient,
    workflow_envelope,
)
from okr_sync.sandbox.teams.server import TeamsSandbox

WORKFLOW = "5f1c0a7e9b2d4c3e8a6f0b1d2c3e4f50"


def card(text: str = "KR CO-1.KR1 moved 0.30 → 0.42 (+2 done)") -> dict[str, Any]:
    return {
        "type": "AdaptiveCard",
        "version": "1.5",
        "body": [{"type": "TextBlock", "text": text, "wrap": True}],
    }


@pytest.fixture
def sandbox() -> Iterator[TeamsSandbox]:
    with TeamsSandbox() as running:
        running.add_workflow(WORKFLOW)
        yield running


def make_client(url: str, *, attempts: int = 4) -> TeamsWorkflowClient:
    return TeamsWorkflowClient(
        SecretStr(url),
        policy=RetryPolicy(max_attempts=attempts, timeout=5.0),
        sleep=lambda _seconds: None,
    )


@pytest.fixture
def client(sandbox: TeamsSandbox) -> TeamsWorkflowClient:
    return make_client(sandbox.workflow_url(WORKFLOW))


def secret_parts(url: str) -> list[str]:
    parts = urlsplit(url)
    return [url, parts.path, parts.query, parse_qs(parts.query)["sig"][0]]


def assert_no_secret(error: BaseException, url: str, *extra: str) -> None:
    texts = [str(error), repr(error), repr(error.args), *extra]
    for secret in secret_parts(url):
        for text in texts:
            assert secret not in text
    assert error.__cause__ is None


def test_post_card_given_valid_card_is_accepted_and_recorded(
    client: TeamsWorkflowClient, sandbox: TeamsSandbox
) -> None:
    client.post_card(card())

    [post] = sandbox.workflow_posts(WORKFLOW)
    assert post.envelope == workflow_envelope(card())
    assert sandbox.workflow_cards(WORKFLOW) == [card()]
    assert sandbox.counters["status:202"] == 1


def test_post_card_given_msteams_width_full_is_accepted(
    client: TeamsWorkflowClient, sandbox: TeamsSandbox
) -> None:
    client.post_card({**card(), "msteams": {"width": "Full"}})

    assert sandbox.workflow_cards(WORKFLOW)[0]["msteams"] == {"width": "Full"}


def test_post_card_given_card_over_28kb_raises_permanent_error_without_retry(
    client: TeamsWorkflowClient, sandbox: TeamsSandbox
) -> None:
    with pytest.raises(TeamsPayloadError) as raised:
        client.post_card(card("x" * 29_000))

    assert isinstance(raised.value, PermanentError)
    assert (raised.value.status, raised.value.code) == (413, "RequestEntityTooLarge")
    assert "Request Entity too large" in str(raised.value)
    assert sandbox.counters["workflow"] == 1
    assert sandbox.workflow_posts(WORKFLOW) == []


@pytest.mark.parametrize(
    ("bad_card", "reason"),
    [
        ({"type": "AdaptiveCard", "version": "1.5", "body": [{"type": "TextBlock"}]}, "body/0"),
        ({**card(), "version": "1.6"}, "above 1.5"),
        ({"type": "AdaptiveCard", "body": []}, "version"),
        ({**card(), "unknownKey": 1}, "unknownKey"),
    ],
    ids=["textblock-without-text", "version-1.6", "no-version", "unknown-key"],
)
def test_post_card_given_invalid_card_raises_payload_error_with_reason(
    client: TeamsWorkflowClient, sandbox: TeamsSandbox, bad_card: dict[str, Any], reason: str
) -> None:
    url = sandbox.workflow_url(WORKFLOW)

    with pytest.raises(TeamsPayloadError) as raised:
        client.post_card(bad_card)

    assert raised.value.status == 400
    assert reason in str(raised.value)
    assert_no_secret(raised.value, url)


def test_post_card_given_wrong_sig_raises_auth_error_without_url_secret(
    sandbox: TeamsSandbox, caplog: pytest.LogCaptureFixture
) -> None:
    url = sandbox.workflow_url(WORKFLOW).replace("sig=", "sig=forged")
    client = make_client(url)
    caplog.set_level(logging.DEBUG)

    with pytest.raises(TeamsAuthError) as raised:
        client.post_card(card())

    assert isinstance(raised.value, AuthError)
    assert raised.value.code == "DirectApiInvalidAuthorizationSignature"
    assert "http://127.0.0.1/…" in str(raised.value)
    client_logs = "\n".join(
        record.getMessage() for record in caplog.records if record.name != "werkzeug"
    )
    assert "POST" in client_logs, "urllib3 logged the request, redacted"
    assert_no_secret(raised.value, url, repr(client), client_logs)


def test_post_card_given_unknown_workflow_raises_not_found(sandbox: TeamsSandbox) -> None:
    url = sandbox.workflow_url(WORKFLOW).replace(WORKFLOW, "0" * 32)
    client = make_client(url)

    with pytest.raises(TeamsNotFoundError) as raised:
        client.post_card(card())

    assert_no_secret(raised.value, url)


def test_post_card_given_429_with_retry_after_waits_then_posts(
    client: TeamsWorkflowClient, sandbox: TeamsSandbox
) -> None:
    sandbox.inject_status("workflow", 429, retry_after=6)

    client.post_card(card())

    assert len(client.retrier.waits) == 1 and client.retrier.waits[0] >= 6
    assert len(sandbox.workflow_posts(WORKFLOW)) == 1


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_post_card_given_5xx_retries_then_posts(
    client: TeamsWorkflowClient, sandbox: TeamsSandbox, status: int
) -> None:
    sandbox.inject_status("workflow", status)

    client.post_card(card())

    assert len(sandbox.workflow_posts(WORKFLOW)) == 1


def test_post_card_given_persistent_429_raises_rate_limited_without_url_secret(
    client: TeamsWorkflowClient, sandbox: TeamsSandbox
) -> None:
    sandbox.inject_status("workflow", 429, count=10, retry_after=1)

    with pytest.raises(TeamsRateLimitedError) as raised:
        client.post_card(card())

    assert sandbox.counters["workflow"] == 4
    assert_no_secret(raised.value, sandbox.workflow_url(WORKFLOW))


def test_post_card_given_unreachable_host_is_transient_without_url_secret() -> None:
    with TeamsSandbox() as stopped:
        url = stopped.add_workflow(WORKFLOW)
    client = make_client(url, attempts=2)

    with pytest.raises(TeamsTransientError) as raised:
        client.post_card(card())

    assert isinstance(raised.value, TransientError)
    assert raised.value.code == "connection_error"
    assert_no_secret(raised.value, url)
    assert raised.value.__suppress_context__


def test_repr_given_client_shows_only_scheme_and_host(client: TeamsWorkflowClient) -> None:
    assert repr(client) == "TeamsWorkflowClient(url='http://127.0.0.1/…')"
    assert client.target == "http://127.0.0.1/…"
