"""Reading issues by id when some are deleted, against the sandbox on loopback."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from okr_sync.connectors.errors import AuthError
from okr_sync.connectors.jira.by_id import read_issues_by_id
from okr_sync.connectors.jira.client import JiraClient, JiraSource
from okr_sync.connectors.jira.transport import JiraQueryError
from okr_sync.sandbox.jira.data import generate_dataset
from okr_sync.sandbox.jira.server import JiraSandbox


def _client(sandbox: JiraSandbox) -> JiraClient:
    if sandbox.cloud:
        email, token = sandbox.basic_auth
        source = JiraSource(sandbox.url, email=email, api_token=SecretStr(token), timeout=10)
    else:
        source = JiraSource(sandbox.url, pat=SecretStr(sandbox.pat), timeout=10)
    return JiraClient(source, sleep=lambda _: None)


@pytest.mark.parametrize(("deployment", "version"), [("cloud", "3"), ("dc", "2")])
def test_read_issues_by_id_given_a_deleted_id_reads_each_issue_and_names_the_gone_one(
    deployment: str, version: str,
) -> None:
    data = generate_dataset(seed=9, issues=30)
    ids = [str(i) for i in sorted(data.issues)][:12]
    gone = next(i for i in sorted(data.issues)[:12] if not data.children(i))
    with JiraSandbox(data, deployment=deployment) as jira:
        client = _client(jira)
        data.delete(gone)
        # Jira refuses the whole query with a typed 400 (Cloud and Data Center alike).
        with pytest.raises(JiraQueryError):
            list(client.search(f"id in ({', '.join(ids)})"))
        jira.log.clear()
        read = read_issues_by_id(client, ids, ["assignee"], context="KR-1", batch=5)
        gets = [r for r in jira.log.records if r.path.startswith(f"/rest/api/{version}/issue/")]

    assert read.missing == {str(gone)}
    assert sorted(i.id for i in read.issues) == sorted(i for i in ids if i != str(gone))
    # Only the batch holding the gone id is read issue by issue, with the fields asked for.
    assert len(gets) == 5 and any(r.status == 404 for r in gets)
    assert all("assignee" in str(r.params.get("fields")) for r in gets)


def test_read_issues_by_id_given_per_issue_read_refused_raises_the_typed_error() -> None:
    data = generate_dataset(seed=9, issues=10)
    ids = [str(i) for i in sorted(data.issues)]
    with JiraSandbox(data) as jira:
        data.delete(int(ids[-1]))
        jira.faults.revoke(paths="/rest/api/3/issue/")
        # Only a 404 means gone: a refused read fails the call, never a silent "deleted".
        with pytest.raises(AuthError):
            read_issues_by_id(_client(jira), ids)
