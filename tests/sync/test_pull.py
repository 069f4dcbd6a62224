"""The incremental pull (sync/pull.py) through a real JiraClient: cursors, overlaps, paging.

Moved here with the connector's former ``pull_updated``: this is the one
implementation of the incremental pull. Sandbox tests run over real HTTP on
127.0.0.1; the exact-JQL ones use ``responses`` (strict).
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import responses
from pydantic import SecretStr
from responses import matchers

from okr_sync.connectors.jira.client import JiraClient, JiraIssue, JiraSource
from okr_sync.connectors.jira.jql import incremental_jql
from okr_sync.sandbox.jira.data import IssueRecord, JiraDataset, generate_dataset
from okr_sync.sandbox.jira.server import JiraSandbox
from okr_sync.sync.fetch_plan import SourceFetchPlan
from okr_sync.sync.pull import DEFAULT_OVERLAP, PulledSource, PullOptions, SourcePuller, SourceState

SCOPE = ("ENT", "SUP", "OPS")
_LITERAL = re.compile(r'updated >= "(\d{4}/\d\d/\d\d \d\d:\d\d)"')
_NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def pull(
    client: JiraClient,
    cursor: datetime | None,
    *,
    overlap: timedelta = DEFAULT_OVERLAP,
    scope: tuple[str, ...] = SCOPE,
) -> PulledSource:
    """One pull of ``scope`` from an empty mirror, with no reconcile due."""
    plan = SourceFetchPlan("main", scope, (), ())
    state = SourceState(issues={}, cursor=cursor, last_full_reconcile=_NOW)
    result = SourcePuller("main", client, plan).pull(state, PullOptions(_NOW, overlap=overlap))
    assert result.source_error is None, result.source_error
    return result


def pulled(result: PulledSource) -> list[JiraIssue]:
    return result.upserts


def ids_of(issues: list[JiraIssue]) -> list[str]:
    return [issue.id for issue in issues]


def last_search_jql(sandbox: JiraSandbox) -> str:
    body = sandbox.log.matching(path="/search/jql")[-1].body
    assert isinstance(body, dict)
    jql = body["jql"]
    assert isinstance(jql, str)
    return jql


class RecordingSleep:
    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def cloud_client(sandbox: JiraSandbox, **options: Any) -> JiraClient:
    email, token = sandbox.basic_auth
    source = JiraSource(sandbox.url, email=email, api_token=SecretStr(token), timeout=10, **options)
    return JiraClient(source, sleep=RecordingSleep())


def dc_client(sandbox: JiraSandbox, **options: Any) -> JiraClient:
    source = JiraSource(sandbox.url, pat=SecretStr(sandbox.pat), timeout=10, **options)
    return JiraClient(source, sleep=RecordingSleep())


def literal_instant(jql: str, zone: str) -> datetime:
    """The instant the sandbox (as the Jira user) reads the JQL's date literal as."""
    match = _LITERAL.search(jql)
    assert match is not None, jql
    wall = datetime.strptime(match.group(1), "%Y/%m/%d %H:%M")
    return wall.replace(tzinfo=ZoneInfo(zone)).astimezone(UTC)


def assert_matches_record(issue: JiraIssue, record: IssueRecord, dataset: JiraDataset) -> None:
    parent = dataset.issues.get(record.parent_id) if record.parent_id is not None else None
    assert (issue.key, issue.project, issue.issuetype) == (
        record.key,
        record.project,
        record.issuetype,
    )
    assert (issue.status, issue.status_category) == (record.status, record.status_category)
    assert issue.is_subtask == record.is_subtask
    assert issue.parent_key == (parent.key if parent else None)
    assert issue.story_points == record.story_points
    assert (issue.created, issue.updated) == (record.created, record.updated)
    assert issue.resolution_date == record.resolutiondate
    assert issue.labels == tuple(record.labels)
    assert issue.components == tuple(record.components)
    assert issue.fix_versions == tuple(record.fix_versions)
    assert issue.priority == record.priority


def test_pull_options_given_negative_overlap_raises() -> None:
    with pytest.raises(ValueError, match="overlap"):
        PullOptions(_NOW, overlap=timedelta(minutes=-1))


# -- full pull --------------------------------------------------------------------------
def test_full_pull_given_5000_issue_cloud_returns_every_issue_once() -> None:
    with JiraSandbox(generate_dataset(seed=5, issues=5000)) as sandbox:
        before = len(sandbox.log)
        with cloud_client(sandbox) as client:
            result = pull(client, None)

        ids = ids_of(pulled(result))
        assert len(ids) == 5000 == len(set(ids))
        assert set(ids) == {str(record.id) for record in sandbox.dataset}
        assert result.cursor == max(record.updated for record in sandbox.dataset)
        for issue in pulled(result):
            assert_matches_record(issue, sandbox.dataset.get(int(issue.id)), sandbox.dataset)
        # serverInfo, myself, field, then 50 pages: the server caps field searches at 100.
        assert client.request_count == len(sandbox.log) - before == 53
        assert sandbox.log.count(path="/search/jql") >= 50


# -- incremental pulls -------------------------------------------------------------------
def mutate_across_minute_boundaries(dataset: JiraDataset, cursor: datetime) -> dict[str, int]:
    """Changes at awkward instants after ``cursor``; returns the touched ids by role."""
    live = sorted(r.id for r in dataset if not r.is_subtask and r.project == "ENT")
    roles: dict[str, int] = {}
    dataset.set_now(cursor + timedelta(milliseconds=1))  # same minute as the cursor
    roles["transitioned"] = dataset.transition(live[0], "done").id
    next_minute = cursor.replace(second=0, microsecond=0) + timedelta(minutes=1)
    dataset.set_now(next_minute)  # exactly on a minute boundary
    roles["points"] = dataset.set_story_points(live[1], 13).id
    dataset.set_now(next_minute + timedelta(seconds=59, milliseconds=999))
    roles["created"] = dataset.add_issue("SUP", "Bug", priority="Highest").id
    dataset.set_now(next_minute + timedelta(minutes=7, seconds=30))
    roles["moved"] = dataset.move(live[2], "OPS").id
    roles["relabelled"] = dataset.update(live[3], labels=["okr"]).id
    dataset.delete(live[4])
    return roles


@pytest.mark.parametrize("zone", ["Asia/Kolkata", "America/New_York", "UTC"])
@pytest.mark.parametrize("overlap", [timedelta(0), timedelta(minutes=2)])
def test_incremental_pull_given_mutations_returns_exactly_the_changed_issues(
    zone: str, overlap: timedelta
) -> None:
    dataset = generate_dataset(seed=21, issues=600)
    with JiraSandbox(dataset, user_timezone=zone) as sandbox, cloud_client(sandbox) as client:
        first = pull(client, None)
        assert first.cursor is not None
        roles = mutate_across_minute_boundaries(dataset, first.cursor)

        second = pull(client, first.cursor, overlap=overlap)

        # The literal, as the Jira user reads it, is at most a minute before cursor - overlap.
        since = literal_instant(last_search_jql(sandbox), zone)
        assert first.cursor - overlap - timedelta(minutes=1) < since <= first.cursor - overlap
        changed = {str(i) for i in roles.values()}
        in_window = {str(r.id) for r in dataset if r.updated >= since}
        returned = ids_of(pulled(second))
        assert len(returned) == len(set(returned))
        assert changed <= set(returned)
        assert set(returned) == in_window  # nothing else: only the overlap window is re-read
        assert second.cursor == max(r.updated for r in dataset)
        moved = next(i for i in pulled(second) if i.id == str(roles["moved"]))
        assert moved.key.startswith("OPS-")
        assert dataset.get(roles["moved"]).key_history[-1].startswith("ENT-")

        third = pull(client, second.cursor, overlap=overlap)
        assert third.cursor == second.cursor
        assert all(
            i.updated >= second.cursor - overlap - timedelta(minutes=1) for i in pulled(third)
        )


def test_incremental_jql_given_utc_literal_for_new_york_user_would_miss_updates() -> None:
    # The trap the user-timezone literal avoids: Jira reads "14:00" as 14:00 in New York.
    dataset = generate_dataset(seed=22, issues=300)
    with (
        JiraSandbox(dataset, user_timezone="America/New_York") as sandbox,
        cloud_client(sandbox) as client,
    ):
        cursor = pull(client, None).cursor
        assert cursor is not None
        roles = mutate_across_minute_boundaries(dataset, cursor)
        naive = client.search_ids(incremental_jql(SCOPE, cursor, ZoneInfo("UTC")))
        right = ids_of(pulled(pull(client, cursor, overlap=timedelta(0))))
    assert str(roles["transitioned"]) not in naive
    assert str(roles["transitioned"]) in right


# -- Data Center ---------------------------------------------------------------------------
def test_dc_pull_given_server_cap_pages_by_offset_and_returns_every_issue_once() -> None:
    dataset = generate_dataset(seed=41, issues=1200)
    with (
        JiraSandbox(
            dataset, deployment="dc", dc_max_results=50, user_timezone="Europe/Berlin"
        ) as sandbox,
        dc_client(sandbox) as client,
    ):
        result = pull(client, None)
        searches = sandbox.log.matching(path="/rest/api/2/search")
        assert all(r.auth == "bearer" for r in sandbox.log.records)

        ids = ids_of(pulled(result))
        assert len(ids) == 1200 == len(set(ids))
        for issue in pulled(result):
            assert_matches_record(issue, dataset.get(int(issue.id)), dataset)
        assert [r.params["startAt"] for r in searches] == [[str(n)] for n in range(0, 1200, 50)]
        assert [r.params["maxResults"][0] for r in searches] == ["100"] + ["50"] * 23
        assert client.story_points_fields() == ("customfield_10106",)  # "Story Points" by name
        assert client.epic_link_field() == "customfield_10101"

        cursor = result.cursor
        assert cursor is not None
        # Jira's clock (its answers' Date) only moves forward: the cursor may be its time.
        dataset.set_now(max(cursor, dataset.now()) + timedelta(seconds=20))
        done = dataset.transition(
            next(r.id for r in dataset if r.status_category != "done"), "done"
        )
        again = pull(client, cursor, overlap=timedelta(minutes=1))
        assert str(done.id) in ids_of(pulled(again))
        assert again.cursor == done.updated

        jql = "project = OPS AND statusCategory = Done"
        expected = {
            str(r.id) for r in dataset if r.project == "OPS" and r.status_category == "done"
        }
        assert set(client.search_ids(jql)) == expected
        assert client.approximate_count(jql) == len(expected)


# -- exact JQL and cursors (strict ``responses``) ---------------------------------------------
SITE = "https://acme.atlassian.net"
SEARCH_JQL = f"{SITE}/rest/api/3/search/jql"


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


def mocked_client(rsps: responses.RequestsMock, zone: str) -> JiraClient:
    rsps.get(
        f"{SITE}/rest/api/2/serverInfo",
        json={"baseUrl": SITE, "versionNumbers": [1001, 0, 0], "deploymentType": "Cloud"},
    )
    rsps.get(f"{SITE}/rest/api/3/myself", json={"timeZone": zone})
    source = JiraSource(
        SITE, email="bot@acme.test", api_token=SecretStr("cloud-token-123"),
        story_points_field="customfield_10016",
    )  # fmt: skip
    return JiraClient(source, sleep=lambda _: None, rng=random.Random(7))


def issue(n: int, *, updated: str) -> dict[str, Any]:
    fields = {
        "summary": f"Issue {n}",
        "issuetype": {"name": "Story", "subtask": False},
        "project": {"key": "ENT"},
        "status": {"name": "To Do", "statusCategory": {"key": "new"}},
        "created": "2026-10-01T09:00:00.000+0000",
        "updated": updated,
    }
    return {"id": str(10000 + n), "key": f"ENT-{n}", "fields": fields}


def expect_search(rsps: responses.RequestsMock, page: dict[str, Any], **body: Any) -> None:
    rsps.post(
        SEARCH_JQL, json=page, match=[matchers.json_params_matcher(body, strict_match=False)]
    )


def test_pull_given_user_timezone_builds_jql_and_returns_high_water_mark(
    rsps: responses.RequestsMock,
) -> None:
    client = mocked_client(rsps, "America/New_York")
    expected_jql = 'project in ("ENT") AND updated >= "2026/11/15 08:55" ORDER BY created ASC'
    page = {
        "issues": [
            issue(1, updated="2026-11-15T08:58:00.000-0500"),
            issue(2, updated="2026-11-15T09:01:30.250-0500"),
        ],
        "isLast": True,
    }
    expect_search(rsps, page, jql=expected_jql)
    cursor = datetime(2026, 11, 15, 14, 0, 10, tzinfo=UTC)
    result = pull(client, cursor, overlap=timedelta(minutes=5), scope=("ENT",))
    assert [i.key for i in pulled(result)] == ["ENT-1", "ENT-2"]
    assert result.cursor == datetime(2026, 11, 15, 14, 1, 30, 250_000, tzinfo=UTC)
    assert result.cursor is not None
    assert result.cursor.tzinfo == UTC


def test_pull_given_only_overlap_hits_keeps_previous_cursor(
    rsps: responses.RequestsMock,
) -> None:
    client = mocked_client(rsps, "UTC")
    expect_search(rsps, {"issues": [issue(1, updated="2026-11-15T13:58:00.000+0000")]})
    cursor = datetime(2026, 11, 15, 14, 0, tzinfo=UTC)
    assert pull(client, cursor, scope=("ENT",)).cursor == cursor


def test_pull_given_nothing_and_no_cursor_starts_the_cursor_at_now(
    rsps: responses.RequestsMock,
) -> None:
    # The former connector verb returned no cursor here; the pass stores "now"
    # instead, and the next pull's overlap covers clock skew.
    client = mocked_client(rsps, "UTC")
    expect_search(
        rsps, {"issues": [], "isLast": True}, jql='project in ("ENT") ORDER BY created ASC'
    )
    result = pull(client, None, scope=("ENT",))
    assert pulled(result) == []
    assert result.cursor == _NOW


def test_pull_given_issue_updated_in_the_future_keeps_the_cursor_at_the_server_time(
    rsps: responses.RequestsMock,
) -> None:
    client = mocked_client(rsps, "UTC")
    page = {"issues": [issue(1, updated="2099-01-01T00:00:00.000+0000"),
                       issue(2, updated="2026-11-15T14:02:00.000+0000")]}
    rsps.post(SEARCH_JQL, json=page, headers={"Date": "Sun, 15 Nov 2026 14:10:00 GMT"})
    cursor = datetime(2026, 11, 15, 14, 0, tzinfo=UTC)

    result = pull(client, cursor, scope=("ENT",))

    assert ids_of(pulled(result)) == ["10001", "10002"]
    # The server's Date plus the allowed skew, never 2099: the next pull still asks
    # for what changes from now on.
    assert result.cursor == datetime(2026, 11, 15, 14, 15, tzinfo=UTC)
