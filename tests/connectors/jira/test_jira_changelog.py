"""Reading changelogs through JiraClient's transport, against the sandbox on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from pydantic import SecretStr

from okr_sync.connectors.errors import AuthError
from okr_sync.connectors.jira.changelog import (
    ChangelogTruncatedError,
    read_changelogs,
    status_categories,
)
from okr_sync.connectors.jira.client import JiraClient, JiraSource
from okr_sync.sandbox.jira.data import JiraDataset, generate_dataset
from okr_sync.sandbox.jira.server import JiraSandbox

BULK = "/rest/api/3/changelog/bulkfetch"


def _client(sandbox: JiraSandbox, waits: list[float]) -> JiraClient:
    if sandbox.cloud:
        email, token = sandbox.basic_auth
        source = JiraSource(sandbox.url, email=email, api_token=SecretStr(token), timeout=10)
    else:
        source = JiraSource(sandbox.url, pat=SecretStr(sandbox.pat), timeout=10)
    return JiraClient(source, sleep=waits.append)


@pytest.fixture
def data() -> JiraDataset:
    dataset = generate_dataset(seed=9, issues=30)
    for issue_id in sorted(dataset.issues)[:6]:
        dataset.advance(timedelta(minutes=30))
        dataset.transition(issue_id, "In Review")
        dataset.set_story_points(issue_id, 13.0)
    return dataset


@pytest.fixture
def cloud(data: JiraDataset) -> Iterator[JiraSandbox]:
    with JiraSandbox(data) as sandbox:
        yield sandbox


def _ids(data: JiraDataset) -> list[str]:
    return [str(i) for i in sorted(data.issues)]


def test_read_changelogs_given_few_fields_sends_the_bulk_field_filter(
    cloud: JiraSandbox, data: JiraDataset
) -> None:
    logs = read_changelogs(_client(cloud, []), _ids(data), ["status"])
    bodies = [r.body for r in cloud.log.records if r.path == BULK]
    assert bodies and bodies[0]["fieldIds"] == ["status"]
    assert logs.methods == {"bulk"} and len(logs.histories) == 6
    assert {i.field_id for h in logs.histories.values() for e in h for i in e.items} == {
        "status"}


def test_read_changelogs_given_more_fields_than_bulk_filters_keeps_only_the_wanted(
    cloud: JiraSandbox, data: JiraDataset
) -> None:
    wanted = ["status", *(f"customfield_2{i:04d}" for i in range(10))]
    logs = read_changelogs(_client(cloud, []), _ids(data), wanted)
    assert "fieldIds" not in next(r.body for r in cloud.log.records if r.path == BULK)
    assert {i.field_id for h in logs.histories.values() for e in h for i in e.items} == {
        "status"}


@pytest.mark.parametrize("status", [403, 404])
def test_read_changelogs_given_bulk_refused_reads_each_issue(
    cloud: JiraSandbox, data: JiraDataset, status: int
) -> None:
    cloud.bulk_changelog_status = status
    logs = read_changelogs(_client(cloud, []), _ids(data))
    assert logs.methods == {"per-issue"}
    assert sum(len(h) for h in logs.histories.values()) == 12


def test_read_changelogs_given_rate_limit_retries_through_the_transport(
    cloud: JiraSandbox, data: JiraDataset
) -> None:
    cloud.faults.rate_limit(count=1, retry_after=2, paths=BULK)
    waits: list[float] = []
    logs = read_changelogs(_client(cloud, waits), _ids(data))
    assert waits and waits[0] >= 2
    assert sum(len(h) for h in logs.histories.values()) == 12


def test_read_changelogs_given_bad_credentials_fails_and_does_not_fall_back(
    data: JiraDataset,
) -> None:
    with JiraSandbox(data, api_token="other") as sandbox:
        source = JiraSource(sandbox.url, email=sandbox.email, api_token=SecretStr("wrong"))
        with pytest.raises(AuthError):
            read_changelogs(JiraClient(source, sleep=lambda _: None), _ids(data))
        assert not [r for r in sandbox.log.records if r.path.endswith("/changelog")]


def test_read_changelogs_given_dc_reads_expand_changelog_and_refuses_a_cut_one(
    data: JiraDataset,
) -> None:
    with JiraSandbox(data, deployment="dc") as dc:
        logs = read_changelogs(_client(dc, []), _ids(data))
        assert logs.methods == {"search"}
        assert sum(len(h) for h in logs.histories.values()) == 12
        assert status_categories(_client(dc, []))["10003"] == "done"

        def cut(page: Any) -> Any:
            for issue in page["issues"]:
                issue["changelog"]["total"] += 1
            return page

        dc.faults.rewrite(cut, paths="/rest/api/2/search")
        with pytest.raises(ChangelogTruncatedError, match="changelog entries of issue"):
            read_changelogs(_client(dc, []), _ids(data))


def test_read_changelogs_given_dc_batch_with_a_deleted_id_reads_each_issue_of_it(
    data: JiraDataset,
) -> None:
    ids = _ids(data)
    gone = next(i for i in sorted(data.issues, reverse=True) if not data.children(i))
    with JiraSandbox(data, deployment="dc") as dc:
        before = read_changelogs(_client(dc, []), ids)
        data.delete(gone)
        # Data Center refuses the whole `id in (...)` (400) once one id is gone.
        logs = read_changelogs(_client(dc, []), ids)
        searched = [r for r in dc.log.records if r.path == "/rest/api/2/search"]

    assert searched[-1].status == 400
    assert logs.missing == {str(gone)} and "per-issue" in logs.methods
    assert logs.histories == {i: h for i, h in before.histories.items() if i != str(gone)}
