"""JiraClient paging, discovery and reconcile against the real wire format.

``responses`` is strict here: an unexpected request fails, and so does a
registered one that was never made.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import responses
from pydantic import SecretStr
from responses import matchers

from okr_sync.connectors.jira.client import (
    UNKNOWN_TIMEZONE_FALLBACK,
    JiraClient,
    JiraPagingError,
    JiraSource,
)

SITE = "https://acme.atlassian.net"
DC_SITE = "https://jira.example.org/jira"
SEARCH_JQL = f"{SITE}/rest/api/3/search/jql"
DC_SEARCH = f"{DC_SITE}/rest/api/2/search"
POINTS = "customfield_10016"
FLOAT_TYPE = "com.atlassian.jira.plugin.system.customfieldtypes:float"


# -- builders ---------------------------------------------------------------
def issue(
    n: int, *, updated: str = "2026-11-15T09:00:00.000+0000", **fields: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "summary": f"Issue {n}",
        "issuetype": {"name": "Story", "subtask": False},
        "project": {"key": "ENT"},
        "status": {"name": "To Do", "statusCategory": {"key": "new"}},
        "created": "2026-10-01T09:00:00.000+0000",
        "updated": updated,
    }
    body.update(fields)
    return {"id": str(10000 + n), "key": f"ENT-{n}", "fields": body}


def cloud_page(
    issues: list[dict[str, Any]], token: str | None = None, *, is_last: bool | None = None
) -> dict[str, Any]:
    page: dict[str, Any] = {"issues": issues}
    if token is not None:
        page["nextPageToken"] = token
    if is_last is not None:
        page["isLast"] = is_last
    return page


def dc_page(
    issues: list[dict[str, Any]], *, start: int, max_results: int, total: int
) -> dict[str, Any]:
    return {"startAt": start, "maxResults": max_results, "total": total, "issues": issues}


def cloud_source(**options: Any) -> JiraSource:
    options.setdefault("story_points_field", POINTS)
    return JiraSource(
        SITE, email="bot@acme.test", api_token=SecretStr("cloud-token-123"), **options
    )


def dc_source(**options: Any) -> JiraSource:
    options.setdefault("story_points_field", POINTS)
    options.setdefault("epic_link_field", None)
    return JiraSource(DC_SITE, pat=SecretStr("dc-pat-456"), **options)


def make_client(source: JiraSource) -> JiraClient:
    return JiraClient(source, sleep=lambda _: None, rng=random.Random(7))


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


def serve_info(rsps: responses.RequestsMock, site: str = SITE, kind: str = "Cloud") -> None:
    rsps.get(
        f"{site}/rest/api/2/serverInfo",
        json={"baseUrl": site, "versionNumbers": [1001, 0, 0], "deploymentType": kind},
    )


def expect_search(rsps: responses.RequestsMock, response: dict[str, Any], **body: Any) -> None:
    rsps.post(
        SEARCH_JQL, json=response, match=[matchers.json_params_matcher(body, strict_match=False)]
    )


def bodies(rsps: responses.RequestsMock, url: str) -> list[dict[str, Any]]:
    return [json.loads(c.request.body or "{}") for c in rsps.calls if c.request.url == url]


# -- Cloud token paging -------------------------------------------------------
def test_search_given_two_token_pages_returns_every_issue_once(
    rsps: responses.RequestsMock,
) -> None:
    serve_info(rsps)
    expect_search(rsps, cloud_page([issue(1), issue(2)], "tok-2"), jql="project = ENT")
    expect_search(rsps, cloud_page([issue(3)], is_last=True), nextPageToken="tok-2")
    client = make_client(cloud_source())

    keys = [i.key for i in client.search("project = ENT", page_size=2)]

    assert keys == ["ENT-1", "ENT-2", "ENT-3"]
    first, second = bodies(rsps, SEARCH_JQL)
    assert "nextPageToken" not in first
    assert first["maxResults"] == 2
    assert second["nextPageToken"] == "tok-2"
    assert client.request_count == 3


def test_search_given_empty_result_returns_nothing(rsps: responses.RequestsMock) -> None:
    serve_info(rsps)
    expect_search(rsps, cloud_page([], is_last=True))
    assert list(make_client(cloud_source()).search("project = NONE")) == []


def test_search_given_last_page_without_token_or_is_last_stops(
    rsps: responses.RequestsMock,
) -> None:
    serve_info(rsps)
    expect_search(rsps, cloud_page([issue(1)], "tok-2"))
    expect_search(rsps, cloud_page([issue(2)]), nextPageToken="tok-2")
    assert len(list(make_client(cloud_source()).search("project = ENT"))) == 2


def test_search_given_is_last_true_with_token_present_stops(rsps: responses.RequestsMock) -> None:
    serve_info(rsps)
    expect_search(rsps, cloud_page([issue(1)], "dangling", is_last=True))
    assert len(list(make_client(cloud_source()).search("project = ENT"))) == 1


def test_search_given_short_page_with_token_keeps_paging(rsps: responses.RequestsMock) -> None:
    # Jira may return fewer items than maxResults mid-stream; only the token decides.
    serve_info(rsps)
    expect_search(rsps, cloud_page([issue(1)], "tok-2"))
    expect_search(rsps, cloud_page([], "tok-3"), nextPageToken="tok-2")
    expect_search(rsps, cloud_page([issue(2)], is_last=True), nextPageToken="tok-3")
    keys = [i.key for i in make_client(cloud_source()).search("project = ENT", page_size=50)]
    assert keys == ["ENT-1", "ENT-2"]


def test_search_given_same_issue_on_two_pages_yields_it_once(rsps: responses.RequestsMock) -> None:
    serve_info(rsps)
    expect_search(rsps, cloud_page([issue(1), issue(2)], "tok-2"))
    expect_search(rsps, cloud_page([issue(2), issue(3)], is_last=True), nextPageToken="tok-2")
    keys = [i.key for i in make_client(cloud_source()).search("project = ENT")]
    assert keys == ["ENT-1", "ENT-2", "ENT-3"]


def test_search_given_repeated_token_raises_paging_error(rsps: responses.RequestsMock) -> None:
    serve_info(rsps)
    expect_search(rsps, cloud_page([issue(1)], "loop"))
    expect_search(rsps, cloud_page([issue(2)], "loop"), nextPageToken="loop")
    with pytest.raises(JiraPagingError, match="repeated a page token"):
        list(make_client(cloud_source()).search("project = ENT", context="CO-1.KR1"))


def test_search_given_more_pages_than_hard_limit_raises_paging_error(
    rsps: responses.RequestsMock,
) -> None:
    serve_info(rsps)
    expect_search(rsps, cloud_page([issue(1)], "t1"))
    expect_search(rsps, cloud_page([issue(2)], "t2"), nextPageToken="t1")
    with pytest.raises(JiraPagingError, match="did not end within 2 pages"):
        list(make_client(cloud_source(max_pages=2)).search("project = ENT"))


def test_search_requests_standard_points_and_extra_fields_only(
    rsps: responses.RequestsMock,
) -> None:
    serve_info(rsps)
    expect_search(rsps, cloud_page([issue(1, customfield_10050=[1, 2])], is_last=True))
    found = list(make_client(cloud_source()).search("project = ENT", ["customfield_10050"]))
    (body,) = bodies(rsps, SEARCH_JQL)
    assert body["fields"] == [
        "summary", "issuetype", "project", "parent", "status", "resolution", "resolutiondate",
        "priority", "labels", "components", "fixVersions", "created", "updated", POINTS,
        "customfield_10050",
    ]  # fmt: skip
    assert dict(found[0].fields) == {"customfield_10050": [1, 2]}


# -- Data Center offset paging ------------------------------------------------
def test_search_given_dc_server_caps_max_results_reads_it_back(
    rsps: responses.RequestsMock,
) -> None:
    serve_info(rsps, DC_SITE, "Server")
    total = 5
    for start, size, numbers in ((0, 4, [1, 2]), (2, 2, [3, 4]), (4, 2, [5])):
        rsps.get(
            DC_SEARCH,
            json=dc_page([issue(n) for n in numbers], start=start, max_results=2, total=total),
            match=[
                matchers.query_param_matcher(
                    {"jql": "project = ENT", "startAt": str(start), "maxResults": str(size)},
                    strict_match=False,
                )
            ],
        )
    client = make_client(dc_source())
    keys = [i.key for i in client.search("project = ENT", page_size=4)]
    assert keys == ["ENT-1", "ENT-2", "ENT-3", "ENT-4", "ENT-5"]
    assert client.request_count == 4
    assert rsps.calls[0].request.headers["Authorization"] == "Bearer dc-pat-456"


def test_search_given_dc_empty_page_before_total_stops(rsps: responses.RequestsMock) -> None:
    # Issues deleted while paging shrink the result; an empty page ends it.
    serve_info(rsps, DC_SITE, "Server")
    rsps.get(DC_SEARCH, json=dc_page([issue(1)], start=0, max_results=1, total=3))
    rsps.get(DC_SEARCH, json=dc_page([], start=1, max_results=1, total=3))
    assert len(list(make_client(dc_source()).search("project = ENT", page_size=1))) == 1


def test_search_ids_given_dc_pages_by_offset_with_id_field(rsps: responses.RequestsMock) -> None:
    serve_info(rsps, DC_SITE, "Server")
    ids = [{"id": str(n)} for n in range(3)]
    rsps.get(
        DC_SEARCH,
        json=dc_page(ids, start=0, max_results=1000, total=3),
        match=[
            matchers.query_param_matcher({"fields": "id", "maxResults": "1000"}, strict_match=False)
        ],
    )
    assert make_client(dc_source()).search_ids("project = ENT") == ["0", "1", "2"]


def test_approximate_count_given_dc_uses_total_of_empty_page(rsps: responses.RequestsMock) -> None:
    serve_info(rsps, DC_SITE, "Server")
    rsps.get(
        DC_SEARCH,
        json=dc_page([], start=0, max_results=0, total=42),
        match=[matchers.query_param_matcher({"maxResults": "0"}, strict_match=False)],
    )
    assert make_client(dc_source()).approximate_count("project = ENT") == 42


def test_search_given_dc_epic_link_field_fills_parent_key(rsps: responses.RequestsMock) -> None:
    serve_info(rsps, DC_SITE, "Server")
    rsps.get(
        f"{DC_SITE}/rest/api/2/field",
        json=[
            {"id": "customfield_10100", "name": "Epic Link",
             "schema": {"type": "any", "custom": "com.pyxis.greenhopper.jira:gh-epic-link"}},
        ],
    )  # fmt: skip
    rsps.get(
        DC_SEARCH,
        json=dc_page([issue(1, customfield_10100="ENT-9")], start=0, max_results=50, total=1),
    )
    client = make_client(dc_source(epic_link_field="auto"))
    (found,) = client.search("project = ENT")
    assert found.parent_key == "ENT-9"
    assert "customfield_10100" in rsps.calls[-1].request.url  # type: ignore[operator]


# -- id-only membership and counts (Cloud) --------------------------------------
def test_search_ids_given_cloud_asks_for_id_only_5000_per_page(
    rsps: responses.RequestsMock,
) -> None:
    serve_info(rsps)
    expect_search(rsps, cloud_page([{"id": "1"}, {"id": "2"}], "t"), fields=["id"], maxResults=5000)
    expect_search(rsps, cloud_page([{"id": "3"}], is_last=True), nextPageToken="t")
    assert make_client(cloud_source()).search_ids("filter = 1") == ["1", "2", "3"]


def test_approximate_count_given_cloud_posts_jql(rsps: responses.RequestsMock) -> None:
    serve_info(rsps)
    rsps.post(
        f"{SITE}/rest/api/3/search/approximate-count",
        json={"count": 153},
        match=[matchers.json_params_matcher({"jql": "project = SUP"})],
    )
    assert make_client(cloud_source()).approximate_count("project = SUP") == 153


# -- discovery ------------------------------------------------------------------
FIELD_CATALOG = [
    {"id": "summary", "name": "Summary", "schema": {"type": "string", "system": "summary"}},
    {
        "id": "customfield_10028",
        "name": "Story Points",
        "schema": {"type": "number", "custom": FLOAT_TYPE},
    },
    {
        "id": "customfield_10016",
        "name": "Story point estimate",
        "schema": {"type": "number", "custom": "com.pyxis.greenhopper.jira:jsw-story-points"},
    },
]


def test_discover_story_points_given_schema_field_prefers_it_and_keeps_named_fallback(
    rsps: responses.RequestsMock,
) -> None:
    serve_info(rsps)
    rsps.get(f"{SITE}/rest/api/3/field", json=FIELD_CATALOG)
    client = make_client(cloud_source(story_points_field="auto"))
    assert client.discover_story_points_field() == "customfield_10016"
    assert client.story_points_fields() == ("customfield_10016", "customfield_10028")
    assert client.request_count == 2  # serverInfo + field, cached afterwards


@pytest.mark.parametrize("name", ["Story point estimate", "Story Points", "story points"])
def test_discover_story_points_given_name_only_finds_it(
    rsps: responses.RequestsMock, name: str
) -> None:
    serve_info(rsps)
    rsps.get(f"{SITE}/rest/api/3/field", json=[{"id": "customfield_1", "name": name, "schema": {}}])
    client = make_client(cloud_source(story_points_field="auto"))
    assert client.discover_story_points_field() == "customfield_1"


def test_discover_story_points_given_none_returns_none(rsps: responses.RequestsMock) -> None:
    serve_info(rsps)
    rsps.get(f"{SITE}/rest/api/3/field", json=FIELD_CATALOG[:1])
    assert (
        make_client(cloud_source(story_points_field="auto")).discover_story_points_field() is None
    )


def test_discover_story_points_given_explicit_field_makes_no_request(
    rsps: responses.RequestsMock,
) -> None:
    client = make_client(cloud_source(story_points_field="customfield_10050"))
    assert client.discover_story_points_field() == "customfield_10050"
    assert client.request_count == 0


@pytest.mark.parametrize(
    ("payload", "zone"),
    [
        ({"timeZone": "Asia/Kolkata"}, ZoneInfo("Asia/Kolkata")),
        ({"timeZone": None}, UNKNOWN_TIMEZONE_FALLBACK),
        ({"timeZone": "Mars/Olympus_Mons"}, UNKNOWN_TIMEZONE_FALLBACK),
        ({}, UNKNOWN_TIMEZONE_FALLBACK),
    ],
)
def test_user_timezone_given_myself_payload_returns_zone(
    rsps: responses.RequestsMock, payload: dict[str, Any], zone: ZoneInfo
) -> None:
    serve_info(rsps)
    rsps.get(f"{SITE}/rest/api/3/myself", json={"accountId": "a1", **payload})
    assert make_client(cloud_source()).user_timezone() == zone


# -- reconcile ------------------------------------------------------------------
def test_reconcile_given_known_ids_splits_present_missing_and_new(
    rsps: responses.RequestsMock,
) -> None:
    serve_info(rsps)
    for _ in range(2):  # "2" is missing: a second run confirms it
        expect_search(
            rsps,
            cloud_page([{"id": "1"}, {"id": "3"}], is_last=True),
            jql='project in ("ENT") ORDER BY created ASC',
            fields=["id"],
        )
    result = make_client(cloud_source()).reconcile(["ENT"], ["1", "2"])
    assert result.present_ids == {"1"}
    assert result.missing_ids == {"2"}
    assert result.new_ids == {"3"}
