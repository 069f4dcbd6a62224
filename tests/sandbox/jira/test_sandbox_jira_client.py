"""The pycontribs ``jira`` client against the sandbox: it cannot tell it from Jira."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from jira import JIRA, JIRAError

from okr_sync.sandbox.jira.data import generate_dataset
from okr_sync.sandbox.jira.server import JiraSandbox

JQL = "project in (ENT, SUP, OPS)"


@pytest.fixture(scope="module")
def jira() -> Iterator[JiraSandbox]:
    with JiraSandbox(generate_dataset(seed=11, issues=1000)) as sandbox:
        yield sandbox


def _client(sandbox: JiraSandbox) -> JIRA:
    return JIRA(server=sandbox.url, basic_auth=sandbox.basic_auth,
                options={"rest_api_version": "3"}, timeout=10, max_retries=0)


def test_client_given_cloud_sandbox_treats_it_as_cloud(jira: JiraSandbox) -> None:
    client = _client(jira)
    assert client._is_cloud is True
    assert client.myself()["timeZone"] == "America/New_York"


def test_enhanced_search_given_max_results_zero_returns_every_issue_once(
    jira: JiraSandbox,
) -> None:
    before = jira.log.count(path="/rest/api/3/search/jql")
    issues = _client(jira).enhanced_search_issues(JQL, maxResults=0)
    ids = [issue.id for issue in issues]
    assert len(ids) == 1000 == len(set(ids))
    assert set(ids) == {str(i.id) for i in jira.dataset}
    assert jira.log.count(path="/rest/api/3/search/jql") - before == 10  # 100 per page


def test_enhanced_search_given_post_and_id_field_returns_every_issue_once(
    jira: JiraSandbox,
) -> None:
    issues = _client(jira).enhanced_search_issues(
        "project = ENT", maxResults=0, fields="id", use_post=True)
    ids = [issue.id for issue in issues]
    assert sorted(ids) == sorted(str(i.id) for i in jira.dataset if i.project == "ENT")
    assert len(ids) == len(set(ids))
    body = jira.log.matching(path="/rest/api/3/search/jql", method="POST")[-1].body
    assert body["expand"] is None and body["reconcileIssues"] == []


def test_enhanced_search_given_field_name_translates_it_through_field_list(
    jira: JiraSandbox,
) -> None:
    issues = _client(jira).enhanced_search_issues(
        "project = SUP AND cf[10016] >= 8", maxResults=0,
        fields=["summary", "Story point estimate"])
    assert issues
    assert all(issue.raw["fields"]["customfield_10016"] >= 8 for issue in issues)
    assert jira.log.matching(path="/rest/api/3/search/jql")[-1].params["fields"] == [
        "summary", "customfield_10016"]


def test_enhanced_search_given_max_results_returns_one_page_with_token(
    jira: JiraSandbox,
) -> None:
    page = _client(jira).enhanced_search_issues(JQL, maxResults=30, fields="key")
    assert len(page) == 30
    assert page.nextPageToken


def test_approximate_issue_count_given_jql_returns_count(jira: JiraSandbox) -> None:
    count = _client(jira).approximate_issue_count("project = OPS AND statusCategory = Done")
    expected = sum(1 for i in jira.dataset if i.project == "OPS" and i.status_category == "done")
    assert count == expected > 0


def test_client_given_bad_jql_raises_400_with_jiras_message(jira: JiraSandbox) -> None:
    with pytest.raises(JIRAError) as caught:
        _client(jira).enhanced_search_issues("project = ENT AND", maxResults=0)
    assert caught.value.status_code == 400
    assert "Expecting a field name before the end of the query" in str(caught.value.text)


def test_client_given_wrong_token_raises_401_on_first_call(jira: JiraSandbox) -> None:
    with pytest.raises(JIRAError) as caught:
        JIRA(server=jira.url, basic_auth=(jira.email, "not-the-token"),
             options={"rest_api_version": "3"}, timeout=10, max_retries=0)
    assert caught.value.status_code == 401
    assert "not-the-token" not in str(caught.value)


def test_client_given_rate_limits_retries_and_still_returns_every_issue_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    waits: list[float] = []
    monkeypatch.setattr("jira.resilientsession.time.sleep", waits.append)
    with JiraSandbox(generate_dataset(seed=12, issues=500)) as sandbox:
        sandbox.faults.rate_limit(every=3, retry_after=2, paths="/search/jql")
        client = JIRA(server=sandbox.url, basic_auth=sandbox.basic_auth,
                      options={"rest_api_version": "3"}, timeout=10, max_retries=3)
        issues = client.enhanced_search_issues(JQL, maxResults=0)
        limited = sandbox.log.count(status=429)
    assert len(issues) == 500 == len({i.id for i in issues})
    assert limited == 2 and len(waits) == 2
    assert all(2 <= w <= 4 for w in waits)  # the client waits 2*Retry-After with jitter


def test_client_given_data_center_pages_search_by_start_at() -> None:
    data = generate_dataset(seed=13, issues=300)
    with JiraSandbox(data, deployment="dc", dc_max_results=25) as sandbox:
        client = JIRA(server=sandbox.url, token_auth=sandbox.pat, timeout=10, max_retries=0)
        issues = client.search_issues("project = ENT", maxResults=False, fields="summary")
        assert client._is_cloud is False
        assert client.enhanced_search_issues("project = ENT") is None  # Cloud-only in the client
    expected = sorted(str(i.id) for i in data if i.project == "ENT")
    assert sorted(i.id for i in issues) == expected
    assert issues.total == len(expected)
