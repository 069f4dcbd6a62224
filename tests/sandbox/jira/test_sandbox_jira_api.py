"""The Jira sandbox over real loopback HTTP, Cloud mode: search/jql paging, caps, errors."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
import requests

from okr_sync.sandbox.jira.data import JiraDataset, generate_dataset
from okr_sync.sandbox.jira.render import FieldSetup
from okr_sync.sandbox.jira.server import LEGACY_SEARCH_GONE, JiraSandbox

TIMEOUT = 10
JQL = "project in (ENT, SUP, OPS)"


@pytest.fixture(scope="module")
def jira() -> Iterator[JiraSandbox]:
    """Read-only: tests that mutate data or faults start their own sandbox."""
    with JiraSandbox(generate_dataset(seed=5, issues=1000)) as sandbox:
        yield sandbox


def _get(jira: JiraSandbox, path: str, **params: Any) -> requests.Response:
    return requests.get(f"{jira.url}{path}", params=params, auth=jira.basic_auth,
                        timeout=TIMEOUT)


def _post(jira: JiraSandbox, path: str, body: Any) -> requests.Response:
    return requests.post(f"{jira.url}{path}", json=body, auth=jira.basic_auth, timeout=TIMEOUT)


def _all_pages(jira: JiraSandbox, jql: str, **params: Any) -> list[dict[str, Any]]:
    issues: list[dict[str, Any]] = []
    token: str | None = None
    for _ in range(1000):
        page = _get(jira, "/rest/api/3/search/jql", jql=jql, nextPageToken=token, **params)
        assert page.status_code == 200, page.text
        body = page.json()
        issues.extend(body["issues"])
        token = body.get("nextPageToken")
        if token is None:
            assert body["isLast"] is True
            return issues
        assert body["isLast"] is False
    raise AssertionError("paging did not end")


def test_server_info_given_cloud_reports_cloud_deployment(jira: JiraSandbox) -> None:
    info = _get(jira, "/rest/api/2/serverInfo").json()
    assert info["deploymentType"] == "Cloud"
    assert info["baseUrl"] == jira.url
    assert info["versionNumbers"][0] >= 1000


def test_server_info_given_no_credentials_answers_anonymously(jira: JiraSandbox) -> None:
    anonymous = requests.get(f"{jira.url}/rest/api/3/serverInfo", timeout=TIMEOUT)
    wrong = requests.get(f"{jira.url}/rest/api/3/serverInfo", auth=(jira.email, "wrong"),
                         timeout=TIMEOUT)
    assert (anonymous.status_code, wrong.status_code) == (200, 401)


def test_myself_given_configured_timezone_reports_it() -> None:
    with JiraSandbox(generate_dataset(issues=10), user_timezone="Asia/Kolkata") as sandbox:
        me = _get(sandbox, "/rest/api/3/myself").json()
    assert (me["timeZone"], me["emailAddress"]) == ("Asia/Kolkata", sandbox.email)
    assert me["accountId"]


def test_field_given_cloud_lists_story_points_by_schema_and_clause_names(
    jira: JiraSandbox,
) -> None:
    fields = _get(jira, "/rest/api/3/field").json()
    points = [f for f in fields
              if f.get("schema", {}).get("custom") == "com.pyxis.greenhopper.jira:jsw-story-points"]
    assert [(f["id"], f["name"]) for f in points] == [("customfield_10016", "Story point estimate")]
    assert points[0]["clauseNames"] == ["cf[10016]", "Story point estimate"]
    assert {"issuekey", "status", "parent", "resolutiondate"} <= {f["id"] for f in fields}


def test_search_jql_given_no_fields_returns_ids_only(jira: JiraSandbox) -> None:
    body = _get(jira, "/rest/api/3/search/jql", jql="project = ENT").json()
    assert len(body["issues"]) == 50
    assert all(set(i) == {"id"} for i in body["issues"])
    assert "total" not in body and "startAt" not in body and "maxResults" not in body


def test_search_jql_given_repeated_and_comma_fields_renders_exactly_those(
    jira: JiraSandbox,
) -> None:
    params = {"fields": ["summary,status", "customfield_10016"], "maxResults": 5}
    issue = _get(jira, "/rest/api/3/search/jql", jql="project = ENT", **params).json()["issues"][0]
    assert set(issue["fields"]) == {"summary", "status", "customfield_10016"}
    assert issue["key"].startswith("ENT-") and issue["self"].endswith(f"/issue/{issue['id']}")
    everything = _get(jira, "/rest/api/3/search/jql", jql=f"id = {issue['id']}",
                      fields="*all,-summary").json()["issues"][0]
    assert "summary" not in everything["fields"]
    assert {"status", "issuetype", "project", "created", "updated"} <= set(everything["fields"])


def test_search_jql_renders_issue_like_cloud(jira: JiraSandbox) -> None:
    data = jira.dataset
    record = next(i for i in data if i.issuetype == "Sub-task" and i.status == "Done")
    issue = _get(jira, "/rest/api/3/search/jql", jql=f"key = {record.key}",
                 fields="*all").json()["issues"][0]
    fields = issue["fields"]
    assert fields["status"]["statusCategory"] == {
        "self": f"{jira.url}/rest/api/3/statuscategory/3", "id": 3, "key": "done",
        "colorName": "green", "name": "Done"}
    assert fields["issuetype"]["subtask"] is True
    assert fields["parent"]["key"] == data.get(record.parent_id or 0).key
    assert fields["project"]["key"] == record.project
    assert fields["resolution"]["name"] == record.resolution
    assert fields["customfield_10016"] == record.story_points
    stamp = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}-0[45]00$"  # New York offset, no colon
    for name in ("created", "updated", "resolutiondate"):
        assert re.match(stamp, fields[name]), fields[name]
    parsed = datetime.strptime(fields["updated"], "%Y-%m-%dT%H:%M:%S.%f%z")
    assert parsed == record.updated


def test_search_jql_given_only_ids_pages_up_to_5000(jira: JiraSandbox) -> None:
    body = _get(jira, "/rest/api/3/search/jql", jql=JQL, maxResults=5000).json()
    assert len(body["issues"]) == 1000 and body["isLast"] is True
    keys = _get(jira, "/rest/api/3/search/jql", jql=JQL, maxResults=700, fields="key").json()
    assert len(keys["issues"]) == 700 and all("fields" not in i for i in keys["issues"])


def test_search_jql_given_fields_caps_pages_at_100(jira: JiraSandbox) -> None:
    body = _get(jira, "/rest/api/3/search/jql", jql=JQL, maxResults=1000, fields="status").json()
    assert len(body["issues"]) == 100 and body["isLast"] is False


@pytest.mark.parametrize("max_results", [0, -1, 5001])
def test_search_jql_given_max_results_out_of_range_answers_400(
    jira: JiraSandbox, max_results: int,
) -> None:
    response = _get(jira, "/rest/api/3/search/jql", jql=JQL, maxResults=max_results)
    assert response.status_code == 400
    assert set(response.json()) == {"errorMessages", "errors"}


def test_search_jql_given_token_paging_returns_every_issue_once_in_order(
    jira: JiraSandbox,
) -> None:
    issues = _all_pages(jira, f"{JQL} ORDER BY created ASC", maxResults=77, fields="created")
    assert len(issues) == 1000 == len({i["id"] for i in issues})
    stamps = [datetime.strptime(i["fields"]["created"], "%Y-%m-%dT%H:%M:%S.%f%z")
              for i in issues]
    assert stamps == sorted(stamps)


def test_search_jql_given_page_token_it_is_opaque(jira: JiraSandbox) -> None:
    body = _get(jira, "/rest/api/3/search/jql", jql=JQL, maxResults=10).json()
    token = body["nextPageToken"]
    assert not token.isdigit() and token != "10"
    again = _get(jira, "/rest/api/3/search/jql", jql=JQL, maxResults=10).json()
    assert again["nextPageToken"] != token  # a new snapshot per first page


@pytest.mark.parametrize("token", ["10", "bm90LWEtdG9rZW4", "eyJzIjoibm9wZSIsIm8iOjEwfQ"])
def test_search_jql_given_forged_token_answers_400(jira: JiraSandbox, token: str) -> None:
    response = _get(jira, "/rest/api/3/search/jql", jql=JQL, nextPageToken=token)
    assert response.status_code == 400
    assert response.json()["errorMessages"]


def test_search_jql_given_token_of_another_query_answers_400(jira: JiraSandbox) -> None:
    token = _get(jira, "/rest/api/3/search/jql", jql=JQL, maxResults=10).json()["nextPageToken"]
    other = _get(jira, "/rest/api/3/search/jql", jql="project = ENT", nextPageToken=token)
    assert other.status_code == 400


def test_search_jql_given_expired_tokens_answers_400() -> None:
    with JiraSandbox(generate_dataset(issues=100)) as sandbox:
        token = _get(sandbox, "/rest/api/3/search/jql", jql=JQL,
                     maxResults=10).json()["nextPageToken"]
        sandbox.expire_page_tokens()
        response = _get(sandbox, "/rest/api/3/search/jql", jql=JQL, nextPageToken=token)
    assert response.status_code == 400


def test_search_jql_given_changes_between_pages_serves_the_first_snapshot() -> None:
    data = generate_dataset(seed=9, issues=300)
    with JiraSandbox(data) as sandbox:
        jql = "project = ENT ORDER BY updated DESC"
        first = _get(sandbox, "/rest/api/3/search/jql", jql=jql, maxResults=20).json()
        data.add_issue("ENT", "Story", "Arrived mid-paging")
        last_id = int(first["issues"][-1]["id"])
        data.transition(last_id, "In Review")  # moves to the top of `updated DESC`
        rest = _all_pages_from(sandbox, jql, first["nextPageToken"])
    ids = [i["id"] for i in first["issues"] + rest]
    expected = sum(1 for i in data if i.project == "ENT") - 1
    assert len(ids) == len(set(ids)) == expected


def _all_pages_from(jira: JiraSandbox, jql: str, token: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    next_token: str | None = token
    while next_token is not None:
        body = _get(jira, "/rest/api/3/search/jql", jql=jql, nextPageToken=next_token,
                    maxResults=20).json()
        out.extend(body["issues"])
        next_token = body.get("nextPageToken")
    return out


def test_search_jql_given_deleted_issue_between_pages_skips_it() -> None:
    data = generate_dataset(seed=9, issues=120)
    with JiraSandbox(data) as sandbox:
        first = _get(sandbox, "/rest/api/3/search/jql", jql=JQL, maxResults=10).json()
        doomed = next(i for i in data if not data.children(i.id)
                      and str(i.id) not in {x["id"] for x in first["issues"]})
        data.delete(doomed.id)
        rest = _all_pages_from(sandbox, JQL, first["nextPageToken"])
    assert str(doomed.id) not in {i["id"] for i in rest}
    assert len(first["issues"]) + len(rest) == 119


def test_search_jql_post_given_jira_client_body_pages_like_get(jira: JiraSandbox) -> None:
    body = {"jql": "project = SUP", "fields": ["summary"], "expand": None, "properties": None,
            "reconcileIssues": [], "maxResults": 100}
    ids: list[str] = []
    for _ in range(100):
        page = _post(jira, "/rest/api/3/search/jql", body)
        assert page.status_code == 200, page.text
        ids.extend(i["id"] for i in page.json()["issues"])
        if "nextPageToken" not in page.json():
            break
        body["nextPageToken"] = page.json()["nextPageToken"]
    expected = sorted(str(i.id) for i in jira.dataset if i.project == "SUP")
    assert sorted(ids) == expected and len(ids) == len(set(ids))


@pytest.mark.parametrize("body", [
    {"jql": JQL, "startAt": 0},
    {"jql": JQL, "properties": ["a", "b", "c", "d", "e", "f"]},
    {"jql": JQL, "reconcileIssues": list(range(51))},
    {"jql": JQL, "fields": "summary"},
    {"jql": JQL, "maxResults": "ten"},
    {"jql": JQL, "maxResults": True},
    ["not", "an", "object"],
])
def test_search_jql_post_given_body_outside_the_bean_answers_400(
    jira: JiraSandbox, body: Any,
) -> None:
    response = _post(jira, "/rest/api/3/search/jql", body)
    assert response.status_code == 400
    assert response.json()["errors"] == {}


def test_search_jql_given_expand_names_lists_field_names(jira: JiraSandbox) -> None:
    body = _get(jira, "/rest/api/3/search/jql", jql=JQL, maxResults=1,
                fields="summary,customfield_10016", expand="names").json()
    assert body["names"] == {"summary": "Summary", "customfield_10016": "Story point estimate"}


def test_approximate_count_given_jql_counts_matches(jira: JiraSandbox) -> None:
    response = _post(jira, "/rest/api/3/search/approximate-count", {"jql": "project = ENT"})
    assert response.json() == {"count": sum(1 for i in jira.dataset if i.project == "ENT")}


@pytest.mark.parametrize(("body", "status"), [
    ({"jql": "order by key"}, 400), ({"jql": "project = "}, 400),
    ({"jql": "project = ENT", "maxResults": 1}, 400),
])
def test_approximate_count_given_bad_body_answers_400(
    jira: JiraSandbox, body: dict[str, Any], status: int,
) -> None:
    assert _post(jira, "/rest/api/3/search/approximate-count", body).status_code == status


def test_approximate_count_given_get_answers_405(jira: JiraSandbox) -> None:
    assert _get(jira, "/rest/api/3/search/approximate-count").status_code == 405


@pytest.mark.parametrize("version", ["2", "3"])
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_legacy_search_given_cloud_answers_410_with_jiras_body(
    jira: JiraSandbox, version: str, method: str,
) -> None:
    response = requests.request(method, f"{jira.url}/rest/api/{version}/search",
                                params={"jql": JQL}, auth=jira.basic_auth, timeout=TIMEOUT)
    assert response.status_code == 410
    assert response.text == ('{"errorMessages":["' + LEGACY_SEARCH_GONE + '"],"errors":{}}')


@pytest.mark.parametrize("headers", [
    {},
    {"Authorization": "Basic " + base64.b64encode(b"okr-bot@example.com:wrong").decode()},
    {"Authorization": "Basic " + base64.b64encode(b"someone@example.com:sandbox-api-token")
     .decode()},
    {"Authorization": "Bearer sandbox-pat"},
    {"Authorization": "Basic %%%"},
])
def test_any_endpoint_given_no_valid_cloud_credentials_answers_401(
    jira: JiraSandbox, headers: dict[str, str],
) -> None:
    response = requests.get(f"{jira.url}/rest/api/3/search/jql", params={"jql": JQL},
                            headers=headers, timeout=TIMEOUT)
    assert response.status_code == 401
    assert response.json() == {"errorMessages": [
        "You are not authenticated. Authentication required to perform this operation."],
        "errors": {}}


def test_search_jql_given_bad_jql_answers_400_with_jiras_error_shape(jira: JiraSandbox) -> None:
    response = _get(jira, "/rest/api/3/search/jql", jql="project = ENT AND status = Nope")
    assert response.status_code == 400
    assert response.json() == {
        "errorMessages": ["The value 'Nope' does not exist for the field 'status'."],
        "errors": {}}
    unbounded = _get(jira, "/rest/api/3/search/jql", jql="ORDER BY key DESC")
    assert unbounded.status_code == 400
    assert unbounded.json()["errorMessages"] == [
        "Unbounded JQL queries are not allowed here. Please add a search restriction to "
        "your query."]


def test_issue_given_old_key_after_move_returns_the_same_id_with_new_key() -> None:
    data = generate_dataset(seed=4, issues=60)
    with JiraSandbox(data) as sandbox:
        record = next(i for i in data if i.project == "ENT" and i.issuetype == "Story")
        old_key = record.key
        data.move(record.id, "OPS")
        moved = _get(sandbox, f"/rest/api/3/issue/{old_key}").json()
        data.delete(record.id)
        gone = _get(sandbox, f"/rest/api/3/issue/{record.id}")
    assert (moved["id"], moved["key"]) == (str(record.id), record.key)
    assert gone.status_code == 404 and gone.json()["errorMessages"]


def test_search_jql_given_localised_category_names_keeps_keys() -> None:
    data = generate_dataset(issues=30)
    with JiraSandbox(data, status_category_names={"done": "Готово"}) as sandbox:
        body = _get(sandbox, "/rest/api/3/search/jql", jql="statusCategory = done",
                    fields="status").json()
    categories = {i["fields"]["status"]["statusCategory"]["key"]: i["fields"]["status"]
                  ["statusCategory"]["name"] for i in body["issues"]}
    assert categories == {"done": "Готово"}


def test_request_log_records_calls_without_credentials(jira: JiraSandbox) -> None:
    before = len(jira.log)
    _post(jira, "/rest/api/3/search/approximate-count", {"jql": "project = OPS"})
    record = jira.log.records[before]
    assert (record.method, record.path, record.status) == (
        "POST", "/rest/api/3/search/approximate-count", 200)
    assert record.body == {"jql": "project = OPS"} and record.auth == "basic"
    assert "sandbox-api-token" not in repr(jira.log.records) + repr(jira)
    assert jira.log.count(path="approximate-count", method="post", status=200) >= 1


def _dc_dataset() -> JiraDataset:
    return generate_dataset(seed=6, issues=400)


def test_data_center_given_search_pages_by_start_at_with_server_cap() -> None:
    data = _dc_dataset()
    with JiraSandbox(data, deployment="dc", dc_max_results=40) as sandbox:
        headers = sandbox.auth_headers()
        info = requests.get(f"{sandbox.url}/rest/api/2/serverInfo", headers=headers,
                            timeout=TIMEOUT).json()
        ids: list[str] = []
        start = 0
        for _ in range(100):
            params: dict[str, str | int] = {"jql": "project = ENT", "startAt": start,
                                            "maxResults": 100}
            page = requests.get(f"{sandbox.url}/rest/api/2/search", headers=headers,
                                params=params, timeout=TIMEOUT).json()
            assert page["maxResults"] == 40 and page["startAt"] == start
            ids.extend(i["id"] for i in page["issues"])
            start += page["maxResults"]
            if start >= page["total"]:
                break
        everything = requests.post(f"{sandbox.url}/rest/api/2/search", headers=headers,
                                   json={"jql": "", "maxResults": 0}, timeout=TIMEOUT).json()
    assert info["deploymentType"] == "Server"
    expected = sorted(str(i.id) for i in data if i.project == "ENT")
    assert sorted(ids) == expected and len(ids) == len(set(ids))
    assert (everything["total"], everything["issues"]) == (400, [])


def test_data_center_given_cloud_only_paths_answers_404_and_pat_only_auth() -> None:
    with JiraSandbox(_dc_dataset(), deployment="dc") as sandbox:
        headers = sandbox.auth_headers()
        jql_path = requests.get(f"{sandbox.url}/rest/api/2/search/jql", headers=headers,
                                params={"jql": JQL}, timeout=TIMEOUT)
        v3 = requests.get(f"{sandbox.url}/rest/api/3/myself", headers=headers, timeout=TIMEOUT)
        count = requests.post(f"{sandbox.url}/rest/api/2/search/approximate-count",
                              headers=headers, json={"jql": JQL}, timeout=TIMEOUT)
        basic = requests.get(f"{sandbox.url}/rest/api/2/myself", auth=sandbox.basic_auth,
                             timeout=TIMEOUT)
        me = requests.get(f"{sandbox.url}/rest/api/2/myself", headers=headers, timeout=TIMEOUT)
    assert (jql_path.status_code, v3.status_code, count.status_code) == (404, 404, 404)
    assert basic.status_code == 401
    assert me.json()["timeZone"] == "America/New_York"


def test_data_center_given_epic_children_links_them_by_epic_link_only() -> None:
    data = _dc_dataset()
    epic = next(i for i in data if i.issuetype == "Epic" and data.children(i.id))
    with JiraSandbox(data, deployment="dc") as sandbox:
        page = requests.get(f"{sandbox.url}/rest/api/2/search", headers=sandbox.auth_headers(),
                            params={"jql": f'"Epic Link" = {epic.key}'},
                            timeout=TIMEOUT).json()
        fields = requests.get(f"{sandbox.url}/rest/api/2/field", headers=sandbox.auth_headers(),
                              timeout=TIMEOUT).json()
    children = {str(c.id) for c in data.children(epic.id)}
    assert {i["id"] for i in page["issues"]} == children
    assert all("parent" not in i["fields"] for i in page["issues"])
    assert {i["fields"]["customfield_10101"] for i in page["issues"]} == {epic.key}
    points = next(f for f in fields if f["name"] == "Story Points")
    assert points["schema"]["custom"] == "com.atlassian.jira.plugin.system.customfieldtypes:float"


def test_field_given_decoy_story_points_lists_both_and_only_one_holds_data() -> None:
    data = generate_dataset(seed=8, issues=80)
    setup = FieldSetup(decoy_story_points_id="customfield_10028")
    with JiraSandbox(data, fields=setup) as sandbox:
        fields = _get(sandbox, "/rest/api/3/field").json()
        page = _get(sandbox, "/rest/api/3/search/jql", jql='"Story Points" is EMPTY',
                    fields="customfield_10016,customfield_10028", maxResults=100).json()
    named = {f["name"]: f for f in fields if f["custom"]}
    assert named["Story Points"]["schema"]["custom"].endswith(":float")
    assert named["Story point estimate"]["schema"]["custom"].endswith(":jsw-story-points")
    assert len(page["issues"]) == 80
    assert all(i["fields"]["customfield_10028"] is None for i in page["issues"])
    assert any(i["fields"]["customfield_10016"] is not None for i in page["issues"])
