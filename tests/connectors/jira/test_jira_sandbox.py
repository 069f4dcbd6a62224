"""JiraClient over real HTTP on 127.0.0.1 against the Jira sandbox (Cloud and Data Center)."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

import pytest
from pydantic import SecretStr

from okr_sync.connectors.http import RetryPolicy
from okr_sync.connectors.jira.client import (
    JiraAuthError,
    JiraClient,
    JiraIssue,
    JiraPageTokenError,
    JiraQueryError,
    JiraSource,
    incremental_jql,
)
from okr_sync.sandbox.jira.data import IssueRecord, JiraDataset, generate_dataset
from okr_sync.sandbox.jira.server import JiraSandbox

SCOPE = ("ENT", "SUP", "OPS")
SCOPE_JQL = 'project in ("ENT", "SUP", "OPS")'
_LITERAL = re.compile(r'updated >= "(\d{4}/\d\d/\d\d \d\d:\d\d)"')


class RecordingSleep:
    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def cloud_client(
    sandbox: JiraSandbox, *, sleep: RecordingSleep | None = None, **options: Any
) -> JiraClient:
    email, token = sandbox.basic_auth
    source = JiraSource(sandbox.url, email=email, api_token=SecretStr(token), timeout=10, **options)
    return JiraClient(source, sleep=sleep or RecordingSleep())


def dc_client(sandbox: JiraSandbox, **options: Any) -> JiraClient:
    source = JiraSource(sandbox.url, pat=SecretStr(sandbox.pat), timeout=10, **options)
    return JiraClient(source, sleep=RecordingSleep())


def ids_of(issues: tuple[JiraIssue, ...] | list[JiraIssue]) -> list[str]:
    return [issue.id for issue in issues]


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


# -- full fetch ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def big_cloud() -> Iterator[JiraSandbox]:
    with JiraSandbox(generate_dataset(seed=5, issues=5000)) as sandbox:
        yield sandbox


def test_full_pull_given_5000_issue_cloud_returns_every_issue_once(big_cloud: JiraSandbox) -> None:
    before = len(big_cloud.log)
    with cloud_client(big_cloud) as client:
        result = client.pull_updated(SCOPE, None)

    ids = ids_of(result.issues)
    assert len(ids) == 5000 == len(set(ids))
    assert set(ids) == {str(record.id) for record in big_cloud.dataset}
    assert result.cursor == max(record.updated for record in big_cloud.dataset)
    for issue in result.issues:
        assert_matches_record(issue, big_cloud.dataset.get(int(issue.id)), big_cloud.dataset)
    # serverInfo, myself, field, then 50 pages: the server caps field searches at 100.
    assert client.request_count == len(big_cloud.log) - before == 53
    assert big_cloud.log.count(path="/search/jql") >= 50


def test_search_ids_and_count_given_cloud_agree_with_dataset(big_cloud: JiraSandbox) -> None:
    jql = "project = SUP AND statusCategory != Done"
    expected = {
        str(r.id) for r in big_cloud.dataset if r.project == "SUP" and r.status_category != "done"
    }
    with cloud_client(big_cloud) as client:
        ids = client.search_ids(jql)
        count = client.approximate_count(jql)
        assert client.request_count == 3  # serverInfo + one id-only page + count
    assert len(ids) == len(set(ids)) == count == len(expected) > 0
    assert set(ids) == expected


def test_search_ids_given_more_than_5000_ids_pages_on_token() -> None:
    dataset = generate_dataset(seed=6, issues=5003)
    with JiraSandbox(dataset) as sandbox, cloud_client(sandbox) as client:
        ids = client.search_ids(SCOPE_JQL)
        assert client.request_count == 3  # serverInfo + id-only pages of 5000 and 3
    assert len(ids) == len(set(ids)) == 5003
    assert set(ids) == {str(record.id) for record in dataset}


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
        first = client.pull_updated(SCOPE, None)
        assert first.cursor is not None
        roles = mutate_across_minute_boundaries(dataset, first.cursor)

        second = client.pull_updated(SCOPE, first.cursor, overlap=overlap)

        # The literal, as the Jira user reads it, is at most a minute before cursor - overlap.
        since = literal_instant(second.jql, zone)
        assert first.cursor - overlap - timedelta(minutes=1) < since <= first.cursor - overlap
        changed = {str(i) for i in roles.values()}
        in_window = {str(r.id) for r in dataset if r.updated >= since}
        returned = ids_of(second.issues)
        assert len(returned) == len(set(returned))
        assert changed <= set(returned)
        assert set(returned) == in_window  # nothing else: only the overlap window is re-read
        assert second.cursor == max(r.updated for r in dataset)
        moved = next(i for i in second.issues if i.id == str(roles["moved"]))
        assert moved.key.startswith("OPS-")
        assert dataset.get(roles["moved"]).key_history[-1].startswith("ENT-")

        third = client.pull_updated(SCOPE, second.cursor, overlap=overlap)
        assert third.cursor == second.cursor
        assert all(
            i.updated >= second.cursor - overlap - timedelta(minutes=1) for i in third.issues
        )


def test_incremental_jql_given_utc_literal_for_new_york_user_would_miss_updates() -> None:
    # The trap the user-timezone literal avoids: Jira reads "14:00" as 14:00 in New York.
    dataset = generate_dataset(seed=22, issues=300)
    with (
        JiraSandbox(dataset, user_timezone="America/New_York") as sandbox,
        cloud_client(sandbox) as client,
    ):
        cursor = client.pull_updated(SCOPE, None).cursor
        assert cursor is not None
        roles = mutate_across_minute_boundaries(dataset, cursor)
        naive = client.search_ids(incremental_jql(SCOPE, cursor, timedelta(0), ZoneInfo("UTC")))
        right = ids_of(client.pull_updated(SCOPE, cursor, overlap=timedelta(0)).issues)
    assert str(roles["transitioned"]) not in naive
    assert str(roles["transitioned"]) in right


# -- reconcile: deletions and moves ------------------------------------------------------
def test_reconcile_given_deleted_and_moved_issues_reports_them_by_id() -> None:
    dataset = generate_dataset(seed=31, issues=600)
    scope = ["ENT", "SUP"]
    with JiraSandbox(dataset) as sandbox, cloud_client(sandbox) as client:
        known = client.search_ids('project in ("ENT", "SUP")')
        parents = [r for r in dataset if r.project == "ENT" and r.issuetype != "Sub-task"]
        with_subtasks = next(
            p for p in parents if any(c.is_subtask for c in dataset.children(p.id))
        )
        subtasks = {c.id for c in dataset.children(with_subtasks.id) if c.is_subtask}
        stays = next(p for p in parents if p.id != with_subtasks.id and not dataset.children(p.id))
        old_key = stays.key
        dataset.advance(timedelta(minutes=1))
        dataset.move(stays.id, "SUP")  # moved inside the scope: same id, new key
        dataset.move(with_subtasks.id, "OPS")  # moved out, with its sub-tasks
        deleted = next(r for r in dataset if r.project == "SUP" and not dataset.children(r.id))
        dataset.delete(deleted.id)
        created = dataset.add_issue("ENT", "Task")

        result = client.reconcile(scope, known)
        (moved,) = client.search(f"id = {stays.id}")

    assert result.missing_ids == {str(i) for i in {with_subtasks.id, deleted.id, *subtasks}}
    assert str(stays.id) in result.present_ids
    assert result.new_ids == {str(created.id)}
    assert (moved.id, moved.project) == (str(stays.id), "SUP")
    assert moved.key != old_key and moved.key.startswith("SUP-")


# -- Data Center ---------------------------------------------------------------------------
def test_dc_pull_given_server_cap_pages_by_offset_and_returns_every_issue_once() -> None:
    dataset = generate_dataset(seed=41, issues=1200)
    with (
        JiraSandbox(
            dataset, deployment="dc", dc_max_results=50, user_timezone="Europe/Berlin"
        ) as sandbox,
        dc_client(sandbox) as client,
    ):
        result = client.pull_updated(SCOPE, None, page_size=100)
        searches = sandbox.log.matching(path="/rest/api/2/search")
        assert all(r.auth == "bearer" for r in sandbox.log.records)

        ids = ids_of(result.issues)
        assert len(ids) == 1200 == len(set(ids))
        for issue in result.issues:
            assert_matches_record(issue, dataset.get(int(issue.id)), dataset)
        assert [r.params["startAt"] for r in searches] == [[str(n)] for n in range(0, 1200, 50)]
        assert [r.params["maxResults"][0] for r in searches] == ["100"] + ["50"] * 23
        assert client.story_points_fields() == ("customfield_10106",)  # "Story Points" by name
        assert client.epic_link_field() == "customfield_10101"

        cursor = result.cursor
        assert cursor is not None
        dataset.set_now(cursor + timedelta(seconds=20))
        done = dataset.transition(
            next(r.id for r in dataset if r.status_category != "done"), "done"
        )
        again = client.pull_updated(SCOPE, cursor, overlap=timedelta(minutes=1))
        assert str(done.id) in ids_of(again.issues)
        assert again.cursor == done.updated

        jql = "project = OPS AND statusCategory = Done"
        expected = {
            str(r.id) for r in dataset if r.project == "OPS" and r.status_category == "done"
        }
        assert set(client.search_ids(jql)) == expected
        assert client.approximate_count(jql) == len(expected)


# -- faults ------------------------------------------------------------------------------------
def test_full_pull_given_429_every_third_request_and_503_burst_completes_identically() -> None:
    dataset = generate_dataset(seed=51, issues=1500)
    with JiraSandbox(dataset) as sandbox:
        with cloud_client(sandbox) as clean_client:
            clean = clean_client.pull_updated(SCOPE, None)
        start = len(sandbox.log)
        sandbox.faults.rate_limit(every=3, retry_after=2)
        sandbox.faults.server_errors(count=3, status=503, retry_after=1, after=5)
        sandbox.faults.server_errors(count=2, status=502, after=12)
        sleep = RecordingSleep()
        with cloud_client(sandbox, sleep=sleep, retry=RetryPolicy(max_attempts=8)) as client:
            faulty = client.pull_updated(SCOPE, None)
        records = sandbox.log.records[start:]

    assert faulty == clean
    faults = [r for r in records if r.fault is not None]
    assert {r.fault for r in faults} == {"rate_limit", "server_error"}
    assert sum(r.status == 429 for r in faults) >= 5
    assert len(sleep.waits) == len(faults)  # one wait per failed answer, no retry layer but ours
    for wait, record in zip(sleep.waits, faults, strict=True):
        assert wait >= (record.retry_after or 0)
        assert wait > 0
    assert client.request_count == len(records)


def test_full_pull_given_truncated_json_bodies_retries_them() -> None:
    dataset = generate_dataset(seed=52, issues=400)
    with JiraSandbox(dataset) as sandbox:
        with cloud_client(sandbox) as clean_client:
            clean = clean_client.pull_updated(SCOPE, None)
        sandbox.faults.malformed(count=2, after=1, paths="/search/jql")
        sleep = RecordingSleep()
        with cloud_client(sandbox, sleep=sleep) as client:
            assert client.pull_updated(SCOPE, None) == clean
        assert sandbox.log.count(fault="malformed") == 2
    assert len(sleep.waits) == 2


@pytest.mark.parametrize("deployment", ["cloud", "dc"])
def test_any_call_given_wrong_credentials_fails_fast_without_secret(
    deployment: Literal["cloud", "dc"],
) -> None:
    wrong = "wrong-token-that-must-not-leak"
    with JiraSandbox(generate_dataset(seed=1, issues=20), deployment=deployment) as sandbox:
        site = sandbox.url
        sleep = RecordingSleep()
        if deployment == "cloud":
            source = JiraSource(sandbox.url, email=sandbox.email, api_token=SecretStr(wrong))
        else:
            source = JiraSource(sandbox.url, pat=SecretStr(wrong))
        with JiraClient(source, sleep=sleep) as client, pytest.raises(JiraAuthError) as caught:
            client.pull_updated(SCOPE, None)
        assert len(sandbox.log) == client.request_count == 1
    assert sleep.waits == []
    message = str(caught.value)
    assert site in message and "credentials" in message
    for secret in (wrong, sandbox.basic_auth[1], sandbox.pat, sandbox.email):
        assert secret not in message
        assert secret not in repr(client)
        assert secret not in repr(source)


def test_search_given_bad_jql_names_the_measure_and_is_not_retried() -> None:
    with (
        JiraSandbox(generate_dataset(seed=2, issues=50)) as sandbox,
        cloud_client(sandbox) as client,
    ):
        with pytest.raises(JiraQueryError) as caught:
            client.search_ids("project = SUP AND prioritty = Highest", context="CO-1.KR2")
        assert sandbox.log.count(path="/search/jql") == 1
    assert "CO-1.KR2" in str(caught.value)
    assert caught.value.messages
    assert all(m in str(caught.value) for m in caught.value.messages)


def test_search_given_page_token_expires_mid_search_raises_token_error() -> None:
    with (
        JiraSandbox(generate_dataset(seed=3, issues=250)) as sandbox,
        cloud_client(sandbox) as client,
    ):
        issues = client.search(SCOPE_JQL, page_size=100, context="CO-2.KR1")
        assert len(list(itertools.islice(issues, 100))) == 100
        sandbox.expire_page_tokens()
        with pytest.raises(JiraPageTokenError, match=r"CO-2\.KR1"):
            next(issues)
