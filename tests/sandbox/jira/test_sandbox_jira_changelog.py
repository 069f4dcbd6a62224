"""The sandbox's changelogs over loopback HTTP: one history per mutation, served as Jira
serves them (Cloud bulkfetch and per-issue pages, ``expand=changelog`` on search)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import requests

from okr_sync.sandbox.jira.data import JiraDataset, generate_dataset
from okr_sync.sandbox.jira.server import JiraSandbox

TIMEOUT = 10
BULK = "/rest/api/3/changelog/bulkfetch"


def _mutated() -> tuple[JiraDataset, dict[str, int]]:
    data = generate_dataset(seed=3, issues=40)
    ent = [i.id for i in data if i.project == "ENT" and i.issuetype == "Story"]
    epic = next(i.id for i in data if i.issuetype == "Epic" and i.project == "ENT")
    story, other, doomed = data.add_issue("ENT").id, ent[1], ent[2]
    data.set_story_points(story, 3.0)
    data.advance(timedelta(hours=1))
    data.transition(story, "In Progress")
    data.advance(timedelta(hours=1))
    data.update(story, labels=["sso", "beta"], parent_id=epic)
    data.advance(timedelta(hours=1))
    data.set_story_points(story, 5.0)
    data.transition(story, "done")
    data.advance(timedelta(hours=1))
    data.move(story, "SUP")
    data.update(other, fix_versions=[])
    data.transition(doomed, "done")
    data.delete(doomed)
    return data, {"story": story, "other": other, "doomed": doomed, "epic": epic}


@pytest.fixture
def world() -> Iterator[tuple[JiraSandbox, dict[str, int]]]:
    data, ids = _mutated()
    with JiraSandbox(data) as jira:
        yield jira, ids


def _post(jira: JiraSandbox, body: Any) -> requests.Response:
    return requests.post(f"{jira.url}{BULK}", json=body, auth=jira.basic_auth, timeout=TIMEOUT)


def _items(histories: list[dict[str, Any]]) -> list[tuple[str, Any, Any]]:
    return [(i["fieldId"], i["fromString"], i["toString"]) for h in histories for i in h["items"]]


def test_bulkfetch_given_mutations_lists_each_change_as_jira_items(world) -> None:
    jira, ids = world
    answer = _post(jira, {"issueIdsOrKeys": [str(ids["story"])]})
    assert answer.status_code == 200, answer.text
    logs = answer.json()["issueChangeLogs"]
    assert [log["issueId"] for log in logs] == [str(ids["story"])]
    items = _items(logs[0]["changeHistories"])
    assert ("customfield_10016", None, "3") in items
    assert ("customfield_10016", "3", "5") in items
    assert ("status", "To Do", "In Progress") in items
    assert ("labels", "", "sso beta") in items
    assert any(f == "parent" and t is not None for f, _, t in items)
    assert any(f == "issuekey" and t.startswith("SUP-") for f, _, t in items if t)
    assert any(f == "resolution" and t == "Done" for f, _, t in items)
    created = [h["created"] for h in logs[0]["changeHistories"]]
    assert created == sorted(created)


def test_bulkfetch_given_small_pages_and_field_filter_pages_by_token(world) -> None:
    jira, ids = world
    body: dict[str, Any] = {"issueIdsOrKeys": [str(ids["story"]), str(ids["other"])],
                            "maxResults": 2, "fieldIds": ["status", "customfield_10016"]}
    seen: list[tuple[str, Any, Any]] = []
    for _ in range(10):
        page = _post(jira, body).json()
        for log in page["issueChangeLogs"]:
            seen += _items(log["changeHistories"])
        if not page.get("nextPageToken"):
            break
        body["nextPageToken"] = page["nextPageToken"]
    assert {f for f, _, _ in seen} == {"status", "customfield_10016"}
    assert len(seen) == 4  # two status changes and two point edits of the story


def test_bulkfetch_given_deleted_issue_leaves_it_out_and_per_issue_says_404(world) -> None:
    jira, ids = world
    page = _post(jira, {"issueIdsOrKeys": [str(ids["doomed"]), str(ids["other"])]}).json()
    assert [log["issueId"] for log in page["issueChangeLogs"]] == [str(ids["other"])]
    gone = requests.get(f"{jira.url}/rest/api/3/issue/{ids['doomed']}/changelog",
                        auth=jira.basic_auth, timeout=TIMEOUT)
    assert gone.status_code == 404


@pytest.mark.parametrize("body", [
    {"issueIdsOrKeys": []},
    {"issueIdsOrKeys": [str(i) for i in range(1001)]},
    {"issueIdsOrKeys": ["1"], "fieldIds": [f"f{i}" for i in range(11)]},
    {"issueIdsOrKeys": ["1"], "maxResults": 10001},
    {"issueIdsOrKeys": ["1"], "extra": True},
], ids=["none", "1001-issues", "11-fields", "too-many-results", "unknown-property"])
def test_bulkfetch_given_request_outside_the_spec_answers_400(world, body) -> None:
    jira, _ = world
    assert _post(jira, body).status_code == 400


def test_issue_changelog_given_small_pages_walks_to_is_last(world) -> None:
    jira, ids = world
    values: list[dict[str, Any]] = []
    start = 0
    for _ in range(10):
        page = requests.get(f"{jira.url}/rest/api/3/issue/{ids['story']}/changelog",
                            params={"startAt": start, "maxResults": 2}, auth=jira.basic_auth,
                            timeout=TIMEOUT).json()
        values += page["values"]
        start += len(page["values"])
        if page["isLast"]:
            break
    assert page["total"] == len(values) == 6  # one history per mutation


def test_search_given_expand_changelog_embeds_histories_on_dc_and_caps_cloud() -> None:
    data, ids = _mutated()
    for _ in range(25):
        data.set_story_points(ids["other"], 1.0 if _ % 2 else 2.0)
    with JiraSandbox(data, deployment="dc") as dc:
        page = requests.get(f"{dc.url}/rest/api/2/search",
                            params={"jql": f"id = {ids['other']}", "expand": "changelog"},
                            headers=dc.auth_headers(), timeout=TIMEOUT).json()
        log = page["issues"][0]["changelog"]
        assert log["total"] == len(log["histories"]) == 26
    with JiraSandbox(data) as cloud:
        page = requests.get(f"{cloud.url}/rest/api/3/search/jql",
                            params={"jql": f"id = {ids['other']}", "expand": "changelog"},
                            auth=cloud.basic_auth, timeout=TIMEOUT).json()
        log = page["issues"][0]["changelog"]
        assert (log["total"], len(log["histories"])) == (26, 20)
