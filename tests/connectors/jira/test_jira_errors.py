"""JiraClient error mapping, retries and secret hygiene (``responses``, strict)."""

from __future__ import annotations

import base64
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest
import requests
import responses
from pydantic import SecretStr

from okr_sync.connectors.errors import (
    AuthError,
    MalformedResponseError,
    PermanentError,
    RateLimitedError,
    TransientError,
)
from okr_sync.connectors.http import RetryPolicy
from okr_sync.connectors.jira.client import (
    JiraApiRemovedError,
    JiraAuthError,
    JiraClient,
    JiraIssueShapeError,
    JiraPageTokenError,
    JiraQueryError,
    JiraSource,
    jira_session,
)

SITE = "https://acme.atlassian.net"
SERVER_INFO = f"{SITE}/rest/api/2/serverInfo"
SEARCH_JQL = f"{SITE}/rest/api/3/search/jql"
EMAIL = "okr-bot@acme.test"
TOKEN = "ATATT3xFfGF0-very-secret-token"
PAT = "NjQ2-secret-personal-access-token"
NOW = datetime(2026, 11, 15, 12, 0, tzinfo=UTC)
INFO = {"versionNumbers": [1001, 0, 0], "deploymentType": "Cloud"}


def issue(n: int) -> dict[str, Any]:
    return {
        "id": str(n),
        "key": f"ENT-{n}",
        "fields": {
            "project": {"key": "ENT"},
            "issuetype": {"name": "Task"},
            "status": {"name": "Done", "statusCategory": {"key": "done"}},
            "created": "2026-10-01T09:00:00.000+0000",
            "updated": "2026-10-02T09:00:00.000+0000",
        },
    }


class RecordingSleep:
    """Stands in for time.sleep: records each wait instead of sleeping."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def cloud_source(**options: Any) -> JiraSource:
    options.setdefault("story_points_field", "customfield_10016")
    return JiraSource(SITE, email=EMAIL, api_token=SecretStr(TOKEN), **options)


def make_client(
    source: JiraSource | None = None, sleep: RecordingSleep | None = None
) -> JiraClient:
    return JiraClient(
        source or cloud_source(),
        sleep=sleep or RecordingSleep(),
        rng=random.Random(3),
        clock=lambda: NOW,
    )


def secret_forms() -> list[str]:
    basic = base64.b64encode(f"{EMAIL}:{TOKEN}".encode()).decode()
    return [TOKEN, PAT, EMAIL, basic]


def assert_no_secret(text: str) -> None:
    for secret in secret_forms():
        assert secret not in text


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


# -- retries ----------------------------------------------------------------------
def test_search_given_429_with_retry_after_waits_at_least_that_long(
    rsps: responses.RequestsMock,
) -> None:
    rsps.get(SERVER_INFO, json=INFO)
    rsps.post(SEARCH_JQL, status=429, headers={"Retry-After": "7"}, json={"errorMessages": []})
    rsps.post(SEARCH_JQL, status=429, headers={"Retry-After": "2"})
    rsps.post(SEARCH_JQL, json={"issues": [issue(1)], "isLast": True})
    sleep = RecordingSleep()
    client = make_client(sleep=sleep)

    assert [i.key for i in client.search("project = ENT")] == ["ENT-1"]

    assert len(sleep.waits) == 2
    assert sleep.waits[0] >= 7
    assert sleep.waits[1] >= 2
    assert client.retrier.waits == sleep.waits
    assert client.request_count == 4


def test_search_given_retry_after_http_date_waits_until_then(rsps: responses.RequestsMock) -> None:
    rsps.get(SERVER_INFO, json=INFO)
    later = format_datetime(NOW + timedelta(seconds=50), usegmt=True)
    rsps.post(SEARCH_JQL, status=503, headers={"Retry-After": later})
    rsps.post(SEARCH_JQL, json={"issues": [], "isLast": True})
    sleep = RecordingSleep()
    list(make_client(sleep=sleep).search("project = ENT"))
    assert sleep.waits[0] >= 50


def test_search_given_429_with_only_rate_limit_reset_waits_until_reset(
    rsps: responses.RequestsMock,
) -> None:
    rsps.get(SERVER_INFO, json=INFO)
    rsps.post(SEARCH_JQL, status=429, headers={"X-RateLimit-Reset": "2026-11-15T12:02Z"})
    rsps.post(SEARCH_JQL, json={"issues": [], "isLast": True})
    sleep = RecordingSleep()
    policy = RetryPolicy(max_delay=300, max_total_wait=None)
    list(make_client(cloud_source(retry=policy), sleep=sleep).search("project = ENT"))
    assert sleep.waits[0] >= 120


@pytest.mark.parametrize(
    ("status", "headers", "expected"),
    [
        (429, {"X-RateLimit-Reset": "2026-11-15T13:00Z"}, 3600.0),
        (429, {"Retry-After": "61"}, 61.0),
        (503, {"Retry-After": format_datetime(NOW + timedelta(seconds=90), usegmt=True)}, 90.0),
    ],
)
def test_search_given_server_wait_beyond_max_delay_raises_at_once_with_retry_after(
    rsps: responses.RequestsMock, status: int, headers: dict[str, str], expected: float
) -> None:
    # Sleeping an hour in-process would hold the pass; the caller reschedules instead.
    rsps.get(SERVER_INFO, json=INFO)
    rsps.post(SEARCH_JQL, status=status, headers=headers)
    sleep = RecordingSleep()
    client = make_client(cloud_source(retry=RetryPolicy(max_delay=60)), sleep=sleep)
    with pytest.raises(TransientError) as caught:
        list(client.search("project = ENT"))
    assert caught.value.retry_after == expected
    assert isinstance(caught.value, RateLimitedError) == (status == 429)
    assert sleep.waits == [] and client.retrier.waits == []
    assert client.request_count == 2


def test_search_given_503_burst_then_success_retries_only_the_failing_page(
    rsps: responses.RequestsMock,
) -> None:
    rsps.get(SERVER_INFO, json=INFO)
    rsps.post(SEARCH_JQL, json={"issues": [issue(1)], "nextPageToken": "t2"})
    for _ in range(3):
        rsps.post(SEARCH_JQL, status=503, body="<html>down</html>")
    rsps.post(SEARCH_JQL, json={"issues": [issue(2)], "isLast": True})
    sleep = RecordingSleep()
    client = make_client(sleep=sleep)
    assert [i.key for i in client.search("project = ENT")] == ["ENT-1", "ENT-2"]
    assert len(sleep.waits) == 3
    assert client.request_count == 6


def test_search_given_persistent_500_gives_up_after_policy_attempts(
    rsps: responses.RequestsMock,
) -> None:
    rsps.get(SERVER_INFO, json=INFO)
    rsps.post(SEARCH_JQL, status=500, json={"errorMessages": ["Internal server error"]})
    client = make_client(cloud_source(retry=RetryPolicy(max_attempts=3)))
    with pytest.raises(TransientError, match="HTTP 500") as caught:
        list(client.search("project = ENT"))
    assert caught.value.status == 500
    assert client.request_count == 1 + 3


def test_server_info_given_connection_error_retries_then_succeeds(
    rsps: responses.RequestsMock,
) -> None:
    rsps.get(SERVER_INFO, body=requests.ConnectionError("connection reset"))
    rsps.get(SERVER_INFO, body=requests.ReadTimeout("read timed out"))
    rsps.get(SERVER_INFO, json=INFO)
    client = make_client()
    assert client.is_cloud
    assert client.request_count == 3


def test_search_given_body_that_is_not_json_retries_as_malformed(
    rsps: responses.RequestsMock,
) -> None:
    rsps.get(SERVER_INFO, json=INFO)
    rsps.post(SEARCH_JQL, body='{"issues": [', content_type="application/json")
    rsps.post(SEARCH_JQL, json={"unexpected": True})
    rsps.post(SEARCH_JQL, json={"issues": [issue(1)], "isLast": True})
    sleep = RecordingSleep()
    assert len(list(make_client(sleep=sleep).search("project = ENT"))) == 1
    assert len(sleep.waits) == 2


def test_search_given_one_unreadable_issue_fails_at_once_naming_it(
    rsps: responses.RequestsMock,
) -> None:
    rsps.get(SERVER_INFO, json=INFO)
    broken = issue(2)
    broken["fields"]["created"] = "not a date"
    rsps.post(SEARCH_JQL, json={"issues": [issue(1), broken], "isLast": True})
    sleep = RecordingSleep()
    client = make_client(sleep=sleep)
    with pytest.raises(JiraIssueShapeError, match="ENT-2") as caught:
        list(client.search("project = ENT"))
    assert isinstance(caught.value, PermanentError)
    assert not isinstance(caught.value, TransientError)
    assert caught.value.issue_id == "2"
    assert sleep.waits == [] and client.request_count == 2


def test_search_ids_given_issue_without_id_fails_at_once(rsps: responses.RequestsMock) -> None:
    rsps.get(SERVER_INFO, json=INFO)
    rsps.post(SEARCH_JQL, json={"issues": [{"id": "1"}, {"key": "ENT-9"}], "isLast": True})
    client = make_client()
    with pytest.raises(JiraIssueShapeError, match="ENT-9"):
        client.search_ids("project = ENT")
    assert client.request_count == 2


def test_any_call_given_tls_failure_is_permanent_without_exception_text(
    rsps: responses.RequestsMock,
) -> None:
    rsps.get(SERVER_INFO, body=requests.exceptions.SSLError(f"certificate verify failed {TOKEN}"))
    sleep = RecordingSleep()
    client = make_client(sleep=sleep)
    with pytest.raises(PermanentError, match="SSLError") as caught:
        client.server_info()
    assert not isinstance(caught.value, TransientError)
    assert "certificate verify failed" not in str(caught.value)
    assert_no_secret(str(caught.value))
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    assert sleep.waits == [] and client.request_count == 1


def test_search_given_always_malformed_raises_malformed_response(
    rsps: responses.RequestsMock,
) -> None:
    rsps.get(SERVER_INFO, json=INFO)
    rsps.post(SEARCH_JQL, body="<html>proxy error</html>", status=200)
    client = make_client(cloud_source(retry=RetryPolicy(max_attempts=2)))
    with pytest.raises(MalformedResponseError, match="not JSON"):
        list(client.search("project = ENT"))


def test_every_request_carries_the_configured_timeout(rsps: responses.RequestsMock) -> None:
    rsps.get(SERVER_INFO, json=INFO)
    rsps.post(SEARCH_JQL, json={"issues": [], "isLast": True})
    list(make_client(cloud_source(timeout=7.5)).search("project = ENT"))
    # responses keeps the adapter's send() keyword arguments on each request.
    sent = [getattr(call.request, "req_kwargs", {}).get("timeout") for call in rsps.calls]
    assert sent == [7.5, 7.5]


# -- fail fast --------------------------------------------------------------------
@pytest.mark.parametrize("status", [401, 403])
def test_any_call_given_rejected_credentials_fails_fast_without_secret(
    rsps: responses.RequestsMock, status: int
) -> None:
    rsps.get(
        SERVER_INFO,
        status=status,
        json={"errorMessages": ["Client must be authenticated to access this resource."]},
        headers={"WWW-Authenticate": 'Basic realm="protected-area"'},
    )
    sleep = RecordingSleep()
    client = make_client(sleep=sleep)
    with pytest.raises(JiraAuthError) as caught:
        list(client.search("project = ENT", context="CO-1.KR1"))
    error = caught.value
    assert isinstance(error, AuthError)
    assert error.status == status
    assert client.request_count == 1
    assert sleep.waits == []
    assert SITE in str(error)
    assert "credentials" in str(error)
    assert error.__cause__ is None
    assert error.__suppress_context__
    assert_no_secret(str(error))
    assert_no_secret(repr(error))


def test_any_call_given_dc_pat_rejected_names_site_not_token(rsps: responses.RequestsMock) -> None:
    site = "https://jira.example.org"
    rsps.get(f"{site}/rest/api/2/serverInfo", status=401)
    client = make_client(JiraSource(site, pat=SecretStr(PAT)))
    with pytest.raises(JiraAuthError, match="rejected the credentials") as caught:
        client.server_info()
    assert site in str(caught.value)
    assert_no_secret(str(caught.value))


def test_reprs_of_source_and_client_contain_no_secret() -> None:
    cloud = cloud_source()
    dc = JiraSource("https://jira.example.org", pat=SecretStr(PAT))
    for shown in (repr(cloud), str(cloud), repr(dc), str(dc), repr(make_client(cloud))):
        assert_no_secret(shown)
    assert SITE in repr(make_client(cloud))


def test_search_given_bad_jql_names_the_callers_context_and_is_not_retried(
    rsps: responses.RequestsMock,
) -> None:
    rsps.get(SERVER_INFO, json=INFO)
    message = "Field 'prioritty' does not exist or you do not have permission to view it."
    rsps.post(SEARCH_JQL, status=400, json={"errorMessages": [message], "errors": {}})
    client = make_client()
    jql = "project = SUP AND prioritty = Highest"
    with pytest.raises(JiraQueryError) as caught:
        list(client.search(jql, context="CO-1.KR2"))
    error = caught.value
    assert isinstance(error, PermanentError)
    assert not isinstance(error, JiraPageTokenError)
    assert (error.context, error.jql, error.messages) == ("CO-1.KR2", jql, (message,))
    assert "CO-1.KR2" in str(error)
    assert message in str(error)
    assert jql in str(error)
    assert client.request_count == 2


def test_approximate_count_given_bad_jql_raises_query_error_with_context(
    rsps: responses.RequestsMock,
) -> None:
    rsps.get(SERVER_INFO, json=INFO)
    rsps.post(
        f"{SITE}/rest/api/3/search/approximate-count",
        status=400,
        json={"errorMessages": ["Error in the JQL Query: Expecting ')'"]},
    )
    with pytest.raises(JiraQueryError, match=r"the query of KPI-7.*Expecting '\)'"):
        make_client().approximate_count("project in (A", context="KPI-7")


def test_search_given_expired_page_token_raises_typed_token_error(
    rsps: responses.RequestsMock,
) -> None:
    rsps.get(SERVER_INFO, json=INFO)
    rsps.post(SEARCH_JQL, json={"issues": [issue(1)], "nextPageToken": "stale"})
    rsps.post(SEARCH_JQL, status=400, json={"errorMessages": ["Invalid nextPageToken."]})
    client = make_client()
    pages = client.search("project = ENT", context="CO-1.KR1")
    assert next(pages).key == "ENT-1"
    with pytest.raises(JiraPageTokenError, match="re-run the search") as caught:
        next(pages)
    assert isinstance(caught.value, JiraQueryError)
    assert caught.value.context == "CO-1.KR1"
    assert client.request_count == 3


def test_search_given_410_gone_says_to_migrate(rsps: responses.RequestsMock) -> None:
    rsps.get(SERVER_INFO, json=INFO)
    removed = (
        "The requested API has been removed. Please migrate to the /rest/api/3/search/jql API."
    )
    rsps.post(SEARCH_JQL, status=410, json={"errorMessages": [removed], "errors": {}})
    client = make_client()
    with pytest.raises(JiraApiRemovedError, match="migrate") as caught:
        list(client.search("project = ENT"))
    assert isinstance(caught.value, PermanentError)
    assert client.request_count == 2


def test_server_info_given_404_is_permanent_and_mentions_base_url(
    rsps: responses.RequestsMock,
) -> None:
    rsps.get(SERVER_INFO, status=404, body="Not Found")
    with pytest.raises(PermanentError, match="base URL") as caught:
        make_client().server_info()
    assert not isinstance(caught.value, TransientError)


def test_rate_limited_error_is_typed_and_carries_retry_after(rsps: responses.RequestsMock) -> None:
    rsps.get(SERVER_INFO, status=429, headers={"Retry-After": "30"})
    client = make_client(cloud_source(retry=RetryPolicy(max_attempts=1)))
    with pytest.raises(RateLimitedError) as caught:
        client.server_info()
    assert caught.value.retry_after == 30


# -- source validation --------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"base_url": "http://jira.example.org"}, "loopback"),
        ({"base_url": f"https://{EMAIL}:{TOKEN}@jira.example.org"}, "credentials"),
        ({"pat": SecretStr(PAT)}, "exactly one"),
        ({"api_token": None}, "both"),
        ({"timeout": 0}, "timeout"),
    ],
)
def test_source_given_invalid_settings_raises_without_secret(
    kwargs: dict[str, Any], problem: str
) -> None:
    settings: dict[str, Any] = {"base_url": SITE, "email": EMAIL, "api_token": SecretStr(TOKEN)}
    settings.update(kwargs)
    with pytest.raises(ValueError, match=problem) as caught:
        JiraSource(**settings)
    assert_no_secret(str(caught.value))


def test_source_given_loopback_http_and_plain_string_token_accepts_and_wraps() -> None:
    source = JiraSource("http://127.0.0.1:8080/", email=EMAIL, api_token=TOKEN)  # type: ignore[arg-type]
    assert source.base_url == "http://127.0.0.1:8080"
    assert isinstance(source.api_token, SecretStr)
    assert_no_secret(repr(source))


# -- the session ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("source", "authorization"),
    [
        (cloud_source(), "Basic " + base64.b64encode(f"{EMAIL}:{TOKEN}".encode()).decode()),
        (JiraSource(SITE, pat=SecretStr(PAT)), f"Bearer {PAT}"),
    ],
)
def test_jira_session_given_source_signs_in_and_sends_the_headers_jira_expects(
    rsps: responses.RequestsMock, source: JiraSource, authorization: str
) -> None:
    rsps.get(SERVER_INFO, json=INFO, match=[responses.matchers.header_matcher({
        "Authorization": authorization,
        "Accept": "application/json,*/*;q=0.9",
        "Content-Type": "application/json",
        "X-Atlassian-Token": "no-check",
    })])  # fmt: skip
    session = jira_session(source)
    assert_no_secret(repr(session.auth))
    assert make_client(source).server_info() == INFO
