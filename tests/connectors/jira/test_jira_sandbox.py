"""JiraClient over real HTTP on 127.0.0.1 against the Jira sandbox (Cloud and Data Center)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import pytest
from pydantic import SecretStr

from okr_sync.connectors.http import RetryPolicy
from okr_sync.connectors.jira.client import (
    JiraAuthError,
    JiraClient,
    JiraPageTokenError,
    JiraQueryError,
    JiraSource,
)
from okr_sync.sandbox.jira.data import generate_dataset
from okr_sync.sandbox.jira.server import JiraSandbox

SCOPE_JQL = 'project in ("ENT", "SUP", "OPS")'


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


# -- full fetch ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def big_cloud() -> Iterator[JiraSandbox]:
    with JiraSandbox(generate_dataset(seed=5, issues=5000)) as sandbox:
        yield sandbox


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


# -- faults ------------------------------------------------------------------------------------
def test_search_given_429_every_third_request_and_503_burst_completes_identically() -> None:
    dataset = generate_dataset(seed=51, issues=1500)
    with JiraSandbox(dataset) as sandbox:
        with cloud_client(sandbox) as clean_client:
            clean = list(clean_client.search(SCOPE_JQL))
        start = len(sandbox.log)
        sandbox.faults.rate_limit(every=3, retry_after=2)
        sandbox.faults.server_errors(count=3, status=503, retry_after=1, after=5)
        sandbox.faults.server_errors(count=2, status=502, after=12)
        sleep = RecordingSleep()
        with cloud_client(sandbox, sleep=sleep, retry=RetryPolicy(max_attempts=8)) as client:
            faulty = list(client.search(SCOPE_JQL))
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


def test_search_given_truncated_json_bodies_retries_them() -> None:
    dataset = generate_dataset(seed=52, issues=400)
    with JiraSandbox(dataset) as sandbox:
        with cloud_client(sandbox) as clean_client:
            clean = list(clean_client.search(SCOPE_JQL))
        sandbox.faults.malformed(count=2, after=1, paths="/search/jql")
        sleep = RecordingSleep()
        with cloud_client(sandbox, sleep=sleep) as client:
            assert list(client.search(SCOPE_JQL)) == clean
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
            list(client.search(SCOPE_JQL))
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


def test_begin_pass_given_facts_younger_than_max_age_reuses_them_else_reads_again() -> None:
    with JiraSandbox(generate_dataset(seed=5, issues=20)) as sandbox:
        now = [datetime(2026, 12, 1, tzinfo=UTC)]
        email, token = sandbox.basic_auth
        source = JiraSource(sandbox.url, email=email, api_token=SecretStr(token), timeout=10)
        with JiraClient(source, sleep=RecordingSleep(), clock=lambda: now[0]) as client:
            assert client.is_cloud
            client.user_timezone()
            assert client.request_count == 2  # serverInfo, myself

            client.begin_pass(facts_max_age=timedelta(hours=1))
            assert client.request_count == 0
            client.user_timezone()
            assert client.request_count == 0  # kept: same session, facts reused

            now[0] += timedelta(hours=1)
            client.begin_pass(facts_max_age=timedelta(hours=1))
            client.user_timezone()
            assert client.request_count == 2  # an hour old: serverInfo and myself again
