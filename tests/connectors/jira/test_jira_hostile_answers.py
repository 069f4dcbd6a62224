"""Issue 11: answers Jira may give that crashed or fooled the connector, over loopback.

Each case is injected into the Jira sandbox (``faults.rewrite`` / ``faults.drip``) and must
end like a clean answer, or in one typed error or warning naming what is wrong.
"""

from __future__ import annotations

import itertools
import time
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import pytest
from pydantic import SecretStr

from okr_sync.connectors.errors import MalformedResponseError, PermanentError
from okr_sync.connectors.http import RequestDeadlineError, RetryPolicy
from okr_sync.connectors.jira.client import (
    UNKNOWN_TIMEZONE_FALLBACK,
    UPDATED_SKEW,
    JiraClient,
    JiraMalformedCountError,
    JiraPagingError,
    JiraSource,
)
from okr_sync.connectors.jira.paging import STORY_POINTS_SCHEMA
from okr_sync.connectors.jira.site import is_cloud_site
from okr_sync.sandbox.jira.data import generate_dataset
from okr_sync.sandbox.jira.server import JiraSandbox
from okr_sync.sync.fetch_plan import MembershipQuery, SourceFetchPlan
from okr_sync.sync.pull import PullOptions, SourcePuller, SourceState


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


# -- 4: story points no estimate can be ----------------------------------------------------
def _first_issue(**changes: Any) -> Any:
    def rewrite(payload: Any) -> Any:
        issues = [dict(issue) for issue in payload["issues"]]
        first = issues[0]
        fields = dict(first.get("fields") or {})
        for name, value in changes.items():
            if name in ("id", "key"):
                first[name] = value
            elif value is _DROP:
                fields.pop(name, None)
            else:
                fields[name] = value
        first["fields"] = fields
        return {**payload, "issues": [first, *issues[1:]]}

    return rewrite


_DROP = object()
POINTS = "customfield_10016"


@pytest.mark.parametrize(
    "points",
    [float("nan"), float("inf"), float("-inf"), 1e308, -1000, 10**400, "NaN", "1e999", "-3",
     [5], {"value": 5}, True],
)
def test_search_given_story_points_no_estimate_can_be_reads_them_as_unset(
    jira: JiraSandbox, points: Any
) -> None:
    jira.faults.rewrite(_first_issue(**{POINTS: points}), paths="search/jql")
    with _client(jira) as client:
        issues = list(client.search('project = "ENT"', [POINTS]))
    assert issues[0].story_points is None
    assert all(i.story_points is None or 0 <= i.story_points <= 1e6 for i in issues)


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_search_given_non_finite_raw_field_keeps_it_out_as_empty(
    jira: JiraSandbox, value: float
) -> None:
    jira.faults.rewrite(_first_issue(customfield_20000=value), paths="search/jql")
    with _client(jira) as client:
        issues = list(client.search('project = "ENT"', ["customfield_20000"]))
    assert issues[0].fields["customfield_20000"] is None


def test_search_given_issue_without_status_reads_it_as_no_status_not_done(
    jira: JiraSandbox,
) -> None:
    jira.faults.rewrite(_first_issue(status=_DROP), paths="search/jql")
    with _client(jira) as client:
        first = next(iter(client.search('project = "ENT"')))
    assert first.status == "" and first.status_category == "undefined"


# -- 5: ids and keys that are not what Jira promises -----------------------------------------
@pytest.mark.parametrize(
    "identity",
    [{"key": "SUP-\u00b2"}, {"key": "SUP-\u0663"}, {"key": "sup-1"}, {"key": "SUP-1 OR x"},
     {"id": "12 OR id > 0"}, {"id": "\u00b9\u00b2"}, {"id": -4}, {"id": "1.5"}],
)
def test_search_given_issue_with_unpromised_id_or_key_skips_and_counts_it(
    jira: JiraSandbox, identity: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    jira.faults.rewrite(_first_issue(**identity), paths="search/jql")
    with _client(jira) as client, caplog.at_level("WARNING"):
        issues = list(client.search('project = "ENT"'))
        expected = sum(1 for r in jira.dataset if r.project == "ENT")
    assert len(issues) == expected - 1
    assert len(client.skipped_issues) == 1
    assert all(i.id.isascii() and i.id.isdigit() for i in issues)
    assert sum("skipped" in r.getMessage() for r in caplog.records) == 1


@pytest.mark.parametrize("ident", ["12 OR id > 0", "\u00b2", "-4"])
def test_search_ids_given_id_that_is_not_ascii_digits_never_returns_it(
    jira: JiraSandbox, ident: str
) -> None:
    jira.faults.rewrite(_first_issue(id=ident), paths="search/jql")
    with _client(jira) as client:
        ids = client.search_ids('project = "ENT"')
    assert ident not in ids and ids
    assert all(i.isascii() and i.isdigit() for i in ids)
    assert len(client.skipped_issues) == 1


# -- 8: an issue updated in the future ------------------------------------------------------
def test_high_water_mark_given_issue_updated_in_2099_clamps_to_server_time_and_warns_once(
    jira: JiraSandbox, caplog: pytest.LogCaptureFixture
) -> None:
    jira.faults.rewrite(_first_issue(updated="2099-01-01T00:00:00.000+0000"), paths="search/jql")
    with _client(jira) as client, caplog.at_level("WARNING"):
        issues = list(client.search('project = "ENT"'))
        mark = client.high_water_mark(i.updated for i in issues)
        again = client.high_water_mark(i.updated for i in issues)
    now = jira.dataset.now()  # the sandbox's answers are dated by its dataset's clock
    assert mark is not None and mark == again
    assert now - timedelta(minutes=2) < mark <= now + UPDATED_SKEW + timedelta(seconds=5)
    assert sum("after the server's time" in r.getMessage() for r in caplog.records) == 1


def test_high_water_mark_given_past_updates_returns_the_newest(jira: JiraSandbox) -> None:
    with _client(jira) as client:
        issues = list(client.search('project = "ENT"'))
        assert client.high_water_mark(i.updated for i in issues) == max(
            i.updated for i in issues)
        assert client.high_water_mark([]) is None


# -- 9b: pages that hand out tokens and no issues -------------------------------------------
def test_search_given_empty_pages_with_new_tokens_stops_after_three_as_paging_error(
    jira: JiraSandbox,
) -> None:
    tokens = itertools.count()

    def empty(payload: Any) -> Any:
        return {"issues": [], "nextPageToken": f"t{next(tokens)}", "isLast": False}

    jira.faults.rewrite(empty, paths="search/jql")
    with _client(jira) as client, pytest.raises(JiraPagingError, match="3 empty pages"):
        list(client.search('project = "ENT"'))
    assert jira.log.count(path="search/jql") == 3


def test_pull_given_negative_count_fails_only_that_kr_and_keeps_the_rest(
    jira: JiraSandbox,
) -> None:
    # How sync/pull.py meets the refusal: the KR's query fails (it keeps its last value),
    # the source and the other KR go through.
    jira.faults.rewrite(_with(count=-40), paths="approximate-count", count=1)
    queries = (
        MembershipQuery("CO-1.KR2", "project = SUP AND priority = Highest", "count", False),
        MembershipQuery("CO-1.KR4", "project = SUP", "count", False),
    )
    plan = SourceFetchPlan("main", ("ENT",), (), queries)
    now = datetime.now(UTC)
    with _client(jira) as client:
        result = SourcePuller("main", client, plan).pull(
            SourceState(issues={}, last_full_reconcile=now), PullOptions(now)
        )
    assert result.source_error is None
    assert set(result.failures) == {"CO-1.KR2"} and "CO-1.KR2" in result.failures["CO-1.KR2"]
    assert "CO-1.KR2" not in result.memberships
    assert result.memberships["CO-1.KR4"] == sum(1 for r in jira.dataset if r.project == "SUP")
