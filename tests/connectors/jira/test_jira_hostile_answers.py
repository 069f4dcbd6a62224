"""Issue 11: answers Jira may give that crashed or fooled the connector, over loopback.

Each case is injected into the Jira sandbox (``faults.rewrite`` / ``faults.drip``) and must
end like a clean answer, or in one typed error or warning naming what is wrong.
"""

from __future__ import annotations

import time
from typing import Any, Literal

import pytest
from pydantic import SecretStr

from okr_sync.connectors.errors import MalformedResponseError, PermanentError
from okr_sync.connectors.http import RequestDeadlineError, RetryPolicy
from okr_sync.connectors.jira.client import (
    UNKNOWN_TIMEZONE_FALLBACK,
    JiraClient,
    JiraMalformedCountError,
    JiraSource,
)
from okr_sync.connectors.jira.paging import STORY_POINTS_SCHEMA
from okr_sync.connectors.jira.site import is_cloud_site
from okr_sync.sandbox.jira.data import generate_dataset
from okr_sync.sandbox.jira.server import JiraSandbox


def _client(sandbox: JiraSandbox, **options: Any) -> JiraClient:
    waits: list[float] = []
    if sandbox.cloud:
        email, token = sandbox.basic_auth
        source = JiraSource(sandbox.url, email=email, api_token=SecretStr(token), timeout=10,
                            **options)
    else:
        source = JiraSource(sandbox.url, pat=SecretStr(sandbox.pat), timeout=10, **options)
    return JiraClient(source, sleep=waits.append)


@pytest.fixture
def jira() -> Any:
    with JiraSandbox(generate_dataset(seed=11, issues=40)) as sandbox:
        yield sandbox


# -- 9a: a body that drips in ------------------------------------------------------------
def test_request_given_body_dripping_past_the_deadline_fails_as_transient_timeout_at_once(
    jira: JiraSandbox,
) -> None:
    jira.faults.drip(0.05, paths="serverInfo")  # ~500 bytes: 25 s, every read in time
    client = _client(jira, retry=RetryPolicy(deadline=1.0))
    started = time.monotonic()

    with client, pytest.raises(RequestDeadlineError) as raised:
        client.server_info()

    assert time.monotonic() - started < 5
    assert raised.value.status is None
    assert jira.log.count(path="serverInfo") == 1  # not retried in-process


def test_request_given_slow_body_within_the_deadline_reads_it_whole(jira: JiraSandbox) -> None:
    jira.faults.drip(0.001, paths="serverInfo")
    with _client(jira, retry=RetryPolicy(deadline=30.0)) as client:
        assert client.server_info()["deploymentType"] == "Cloud"


# -- 1: a timeZone ZoneInfo cannot load -------------------------------------------------
def _with(**changes: Any) -> Any:
    def rewrite(payload: Any) -> Any:
        return {**payload, **changes}

    return rewrite


@pytest.mark.parametrize(
    "name",
    ["America", "Europe/" + "x" * 300, "Etc/\x00UTC", "../../etc/passwd", "Mars/Olympus", 42],
)
def test_user_timezone_given_name_zoneinfo_cannot_load_falls_back_and_warns_once(
    jira: JiraSandbox, name: Any, caplog: pytest.LogCaptureFixture
) -> None:
    jira.faults.rewrite(_with(timeZone=name), paths="myself")
    with _client(jira) as client, caplog.at_level("WARNING"):
        zone = client.user_timezone()
        again = client.user_timezone()

    assert zone is again is UNKNOWN_TIMEZONE_FALLBACK
    warnings = [r for r in caplog.records if "no usable time zone" in r.getMessage()]
    assert len(warnings) == 1


def test_user_timezone_given_valid_name_uses_it_without_warning(
    jira: JiraSandbox, caplog: pytest.LogCaptureFixture
) -> None:
    with _client(jira) as client, caplog.at_level("WARNING"):
        assert client.user_timezone().key == "America/New_York"
    assert not caplog.records


# -- 2: /field entries without a usable id or name ---------------------------------------
def test_story_points_fields_given_field_entries_without_id_or_name_skips_them(
    jira: JiraSandbox,
) -> None:
    broken = [
        {"name": "Story point estimate", "schema": {"custom": STORY_POINTS_SCHEMA}},
        {"id": 10016, "name": "Story Points"},
        {"id": "customfield_99", "name": None},
        {"id": "", "name": "Story Points"},
        "not an object",
        None,
    ]
    jira.faults.rewrite(lambda catalog: [*broken, *catalog], paths="/field")
    with _client(jira) as client:
        assert client.story_points_fields() == ("customfield_10016",)
        issues = list(client.search('project = "ENT"'))
    assert issues and any(i.story_points is not None for i in issues)


# -- 6: serverInfo without deploymentType --------------------------------------------------
def _without_deployment_type(payload: Any) -> Any:
    return {k: v for k, v in payload.items() if k != "deploymentType"}


@pytest.mark.parametrize("deployment", ["cloud", "dc"])
def test_is_cloud_given_server_info_without_deployment_type_tells_cloud_from_dc(
    deployment: Literal["cloud", "dc"],
) -> None:
    with JiraSandbox(generate_dataset(seed=11, issues=30), deployment=deployment) as sandbox:
        sandbox.faults.rewrite(_without_deployment_type, paths="serverInfo")
        with _client(sandbox) as client:
            assert client.is_cloud is (deployment == "cloud")
            # The search runs on the matching API (v3 token paging / v2 offsets).
            assert len(list(client.search('project = "ENT"'))) > 0


@pytest.mark.parametrize(
    ("url", "info", "cloud"),
    [
        ("https://acme.atlassian.net", {}, True),
        ("https://acme.jira.com", {"versionNumbers": [9, 12, 0]}, True),
        ("https://acme.jira-dev.com", {}, True),
        ("https://jira.acme.example", {"displayUrl": "https://jira.acme.example"}, True),
        ("https://jira.acme.example", {"versionNumbers": [1001, 0, 0]}, True),
        ("https://jira.acme.example", {"versionNumbers": [9, 12, 15]}, False),
        ("https://jira.acme.example", {}, False),
        ("https://notatlassian.net", {}, False),
        ("https://acme.atlassian.net", {"deploymentType": "Server"}, False),
        ("https://jira.acme.example", {"deploymentType": "Cloud"}, True),
    ],
)
def test_is_cloud_site_given_url_and_server_info_detects_cloud(
    url: str, info: dict[str, Any], cloud: bool
) -> None:
    assert is_cloud_site(url, info) is cloud


# -- 3: counts that cannot be counts -------------------------------------------------------
@pytest.mark.parametrize("count", [-1, 1e30, 10**9 + 1, 10**30, 4.5, "12", True, None])
@pytest.mark.parametrize("deployment", ["cloud", "dc"])
def test_approximate_count_given_impossible_count_refuses_it_naming_the_query(
    deployment: Literal["cloud", "dc"], count: Any
) -> None:
    name, path = ("count", "approximate-count") if deployment == "cloud" else ("total", "/search")
    jql = "project = SUP AND priority = Highest"
    with JiraSandbox(generate_dataset(seed=11, issues=30), deployment=deployment) as sandbox:
        sandbox.faults.rewrite(_with(**{name: count}), paths=path)
        with _client(sandbox) as client, pytest.raises(JiraMalformedCountError) as raised:
            client.approximate_count(jql, context="CO-1.KR2")
        # Refused once, not retried: Jira would count the same query the same way.
        assert sandbox.log.count(path=path) == 1

    error = raised.value
    assert isinstance(error, MalformedResponseError) and isinstance(error, PermanentError)
    assert "CO-1.KR2" in str(error) and error.context == "CO-1.KR2" and error.jql == jql


@pytest.mark.parametrize("count", [0, 10**9])
def test_approximate_count_given_count_at_the_bounds_returns_it(jira: JiraSandbox,
                                                                count: int) -> None:
    jira.faults.rewrite(_with(count=count), paths="approximate-count")
    with _client(jira) as client:
        assert client.approximate_count("project = SUP") == count


# -- 7: credentials an HTTP header cannot carry --------------------------------------------
@pytest.mark.parametrize(
    ("credentials", "named"),
    [
        ({"email": "bot@example.com", "api_token": SecretStr("tok\u2019en-secret")}, "API token"),
        ({"pat": SecretStr("\u201cpat-secret\u201d")}, "personal access token"),
        ({"email": "b\u00f6t\u2014@example.com", "api_token": SecretStr("token")}, "email"),
    ],
)
def test_source_given_credential_outside_latin1_refuses_at_start_naming_the_setting(
    credentials: dict[str, Any], named: str
) -> None:
    with pytest.raises(ValueError, match=named) as raised:
        JiraSource("https://acme.atlassian.net", **credentials)
    assert "secret" not in str(raised.value)


def test_source_given_latin1_credentials_accepts_them() -> None:
    source = JiraSource("https://acme.atlassian.net", email="b\u00f6t@example.com",
                        api_token=SecretStr("caf\u00e9-token"))
    assert source.auth_kind == "basic"
