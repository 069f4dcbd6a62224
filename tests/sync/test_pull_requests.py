"""Which Jira requests a pull makes: none that the pass already has the answer to.

Against the Jira sandbox over real HTTP; the request log names each search.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import SecretStr

from okr_sync.connectors.jira.client import JiraClient, JiraSource
from okr_sync.sandbox.jira.data import generate_dataset
from okr_sync.sandbox.jira.server import JiraSandbox
from okr_sync.sync.fetch_plan import SourceFetchPlan
from okr_sync.sync.pull import PulledSource, PullOptions, SourcePuller, SourceState

SCOPE = ("ENT", "SUP")
_NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


@pytest.fixture
def sandbox() -> Iterator[JiraSandbox]:
    with JiraSandbox(generate_dataset(seed=5, issues=600)) as jira:
        yield jira


def _client(sandbox: JiraSandbox) -> JiraClient:
    email, token = sandbox.basic_auth
    return JiraClient(JiraSource(sandbox.url, email=email, api_token=SecretStr(token),
                                 timeout=10), sleep=lambda _: None)


def _pull(client: JiraClient, state: SourceState, *, full: bool = False) -> PulledSource:
    plan = SourceFetchPlan("main", SCOPE, (), ())
    result = SourcePuller("main", client, plan).pull(state, PullOptions(_NOW, full=full))
    assert result.source_error is None, result.source_error
    return result


def _id_listings(sandbox: JiraSandbox, since: int) -> int:
    """Id-only searches (a reconcile's or a membership's) since the ``since``-th request."""
    return sum(1 for r in sandbox.log.records[since:]
               if isinstance(r.body, dict) and r.body.get("fields") == ["id"])


def _in_scope(sandbox: JiraSandbox) -> set[str]:
    return {str(r.id) for r in sandbox.dataset if r.project in SCOPE}


def test_pull_given_a_cold_pass_due_to_reconcile_lists_no_ids_it_just_read(
    sandbox: JiraSandbox,
) -> None:
    with _client(sandbox) as client:
        mark = len(sandbox.log)
        result = _pull(client, SourceState(issues={}))
    assert set(result.issues) == _in_scope(sandbox)
    assert _id_listings(sandbox, mark) == 0
    assert result.reconciled_at == _NOW
    assert not result.deleted


def test_pull_given_full_pass_over_a_mirror_with_deleted_and_moved_out_issues_drops_them(
    sandbox: JiraSandbox,
) -> None:
    with _client(sandbox) as client:
        first = _pull(client, SourceState(issues={}))
        ent = sorted(r.id for r in sandbox.dataset if r.project == "ENT" and not r.is_subtask
                     and not sandbox.dataset.children(r.id))
        sandbox.dataset.advance(timedelta(minutes=3))
        deleted = sandbox.dataset.delete(ent[0])
        sandbox.dataset.move(ent[1], "OPS")
        mark = len(sandbox.log)
        full = _pull(client, SourceState(issues=dict(first.issues), cursor=first.cursor,
                                         last_full_reconcile=_NOW), full=True)
    gone = {str(i) for i in deleted} | {str(ent[1])}
    assert gone <= full.deleted
    assert set(full.issues) == _in_scope(sandbox)
    # A mirrored issue the read of the scope did not send is confirmed by the listing.
    assert _id_listings(sandbox, mark) >= 1


def test_pull_given_full_pass_over_an_unchanged_mirror_lists_no_ids(
    sandbox: JiraSandbox,
) -> None:
    with _client(sandbox) as client:
        first = _pull(client, SourceState(issues={}))
        mark = len(sandbox.log)
        full = _pull(client, SourceState(issues=dict(first.issues), cursor=first.cursor,
                                         last_full_reconcile=_NOW), full=True)
    assert not full.deleted and full.reconciled_at == _NOW
    assert _id_listings(sandbox, mark) == 0
