"""The read-only verbs ``okr-sync doctor`` uses, against the Jira sandbox (Cloud and DC)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pydantic import SecretStr

from okr_sync.connectors.jira.checks import UNBOUNDED
from okr_sync.connectors.jira.client import JiraClient, JiraSource
from okr_sync.sandbox.jira.data import generate_dataset
from okr_sync.sandbox.jira.server import JiraSandbox


def cloud_client(sandbox: JiraSandbox) -> JiraClient:
    email, token = sandbox.basic_auth
    return JiraClient(JiraSource(sandbox.url, email=email, api_token=SecretStr(token), timeout=10))


def dc_client(sandbox: JiraSandbox) -> JiraClient:
    return JiraClient(JiraSource(sandbox.url, pat=SecretStr(sandbox.pat), timeout=10))


@pytest.fixture(scope="module")
def cloud() -> Iterator[JiraSandbox]:
    with JiraSandbox(generate_dataset(seed=3, issues=60)) as sandbox:
        yield sandbox


@pytest.fixture(scope="module")
def dc() -> Iterator[JiraSandbox]:
    with JiraSandbox(generate_dataset(seed=3, issues=60), deployment="dc") as sandbox:
        yield sandbox


def test_missing_projects_given_unknown_key_names_only_that_key(cloud: JiraSandbox) -> None:
    with cloud_client(cloud) as client:
        assert client.missing_projects(["ENT", "NOPE", "SUP"]) == ["NOPE"]
    asked = [r.path for r in cloud.log.records if "/project/" in r.path]
    assert asked[-3:] == ["/rest/api/3/project/ENT", "/rest/api/3/project/NOPE",
                          "/rest/api/3/project/SUP"]


def test_missing_projects_given_data_center_uses_api_2(dc: JiraSandbox) -> None:
    with dc_client(dc) as client:
        assert client.missing_projects(["OPS", "GONE"]) == ["GONE"]
    assert dc.log.records[-1].path == "/rest/api/2/project/GONE"


def test_field_ids_given_cloud_lists_story_points_field(cloud: JiraSandbox) -> None:
    with cloud_client(cloud) as client:
        ids = client.field_ids()
    assert "customfield_10016" in ids and "summary" in ids


def test_myself_given_cloud_returns_the_bot_user(cloud: JiraSandbox) -> None:
    with cloud_client(cloud) as client:
        assert client.myself()["emailAddress"] == cloud.email


def test_jql_errors_given_cloud_parses_all_queries_in_one_request_without_searching(
    cloud: JiraSandbox,
) -> None:
    queries = ["project = SUP", "project = SUP AND nosuchfield = 1", "project = ",
               "ORDER BY created"]
    before = len(cloud.log.records)
    with cloud_client(cloud) as client:
        errors = client.jql_errors(queries)
    requests = cloud.log.records[before:]
    assert [r.path for r in requests if "jql/parse" in r.path] == ["/rest/api/3/jql/parse"]
    assert not any("search" in r.path for r in requests)
    assert errors["project = SUP"] == ()
    assert "nosuchfield" in errors["project = SUP AND nosuchfield = 1"][0]
    assert errors["project = "]
    assert errors["ORDER BY created"] == (UNBOUNDED,)


def test_jql_errors_given_data_center_asks_empty_search_pages(dc: JiraSandbox) -> None:
    before = len(dc.log.records)
    with dc_client(dc) as client:
        errors = client.jql_errors(["project = OPS", "project = OPS AND nosuchfield = 1"])
    assert errors["project = OPS"] == ()
    assert "nosuchfield" in errors["project = OPS AND nosuchfield = 1"][0]
    searches = [r for r in dc.log.records[before:] if r.path.endswith("/search")]
    assert searches and all(r.params["maxResults"] == ["0"] for r in searches)
