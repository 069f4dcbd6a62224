"""Which Jira requests a pull makes: none that the pass already has the answer to.

Against the Jira sandbox over real HTTP; the request log names each search.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import SecretStr

from okr_sync.connectors.errors import PermanentError
from okr_sync.connectors.jira.client import JiraClient, JiraSource
from okr_sync.sandbox.jira.data import generate_dataset
from okr_sync.sandbox.jira.server import JiraSandbox
from okr_sync.sync.fetch_plan import MembershipQuery, SourceFetchPlan, build_fetch_plan
from okr_sync.sync.jql_local import analyse
from okr_sync.sync.pull import PulledSource, PullOptions, SourcePuller, SourceState
from okr_sync.sync.store.store import Store
from support.paging_races import after_first_page
from support.plan_builders import PlanBuilder, objective
from support.stored_pulls import stored_pull

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
               if (isinstance(r.body, dict) and r.body.get("fields") == ["id"])
               or (r.params.get("fields") == ["id"] and r.params.get("maxResults") != ["0"]))


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


@pytest.mark.parametrize("deployment", ["cloud", "dc"])
def test_pull_given_an_issue_deleted_while_a_cold_pass_reads_mirrors_every_issue_left(
    deployment: str,
) -> None:
    data = generate_dataset(seed=5, issues=600)
    victim = min(r.id for r in data if r.project in SCOPE and not r.is_subtask
                 and not data.children(r.id))
    with JiraSandbox(data, deployment=deployment, dc_max_results=50) as jira:
        if deployment == "dc":
            client = JiraClient(JiraSource(jira.url, pat=SecretStr(jira.pat), timeout=10),
                                sleep=lambda _: None)
        else:
            client = _client(jira)
        with client:
            # Data Center pages by offset: the deletion shifts an issue behind the offset.
            after_first_page(client, lambda: data.delete(victim))
            result = _pull(client, SourceState(issues={}))
        listings = _id_listings(jira, 0)
    assert _in_scope(jira) <= set(result.issues)
    assert result.reconciled_at == _NOW
    # Cloud's page tokens page one result: no listing. Offset pages are listed.
    # (On Cloud the deletion is as one just after the read: the daily reconcile sees it.)
    assert (listings > 0) is (deployment == "dc")


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


# -- raw JQL Jira answers, kept while no change can move its answer ---------------------
EPIC = 10000  # OPS-1, outside the scope: its children are reached by raw JQL only
PARENT_JQL = "parent = OPS-1"


def _plan(jql: str = PARENT_JQL) -> SourceFetchPlan:
    query = MembershipQuery("KR", jql, "ids", volatile=False,
                            screen=analyse(jql, restricted=False))
    return SourceFetchPlan("main", SCOPE, (), (query,))


def _chain(client: JiraClient, state: SourceState, now: datetime = _NOW
           ) -> tuple[PulledSource, SourceState]:
    """One pull, and the state the store keeps after it (as the pipeline writes it)."""
    result = SourcePuller("main", client, _plan()).pull(state, PullOptions(now))
    assert result.source_error is None and not result.failures
    return result, _after(state, result)


def _after(state: SourceState, result: PulledSource) -> SourceState:
    memberships = {o: m for o, m in state.memberships.items()
                   if o not in result.forgotten_memberships}
    memberships.update((o, (jql, tuple(ids)))
                       for o, (jql, ids) in result.refreshed_memberships.items())
    return SourceState(issues=dict(result.issues), cursor=result.cursor,
                       last_full_reconcile=result.reconciled_at or state.last_full_reconcile,
                       memberships=memberships)


def _members(sandbox: JiraSandbox) -> set[str]:
    return {str(c.id) for c in sandbox.dataset.children(EPIC) if not c.is_subtask}


def _membership_searches(sandbox: JiraSandbox, since: int, jql: str = PARENT_JQL) -> int:
    return sum(1 for r in sandbox.log.records[since:]
               if isinstance(r.body, dict) and r.body.get("jql") == jql)


def test_pull_given_changes_raw_jql_jira_answers_reruns_only_when_a_member_or_joiner_changed(
    sandbox: JiraSandbox,
) -> None:
    data = sandbox.dataset
    unrelated = min(r.id for r in data if r.project == "ENT" and r.parent_id is None
                    and r.issuetype != "Epic")
    member = min(int(i) for i in _members(sandbox))
    joiner = min(r.id for r in data if r.project == "SUP" and r.parent_id is None
                 and r.issuetype != "Epic")
    with _client(sandbox) as client:
        _, state = _chain(client, SourceState(issues={}, last_full_reconcile=_NOW))
        steps = [
            ("unrelated edit", lambda: data.transition(unrelated, "done"), 0),
            ("member edit", lambda: data.transition(member, "done"), 1),
            ("joins", lambda: data.update(joiner, parent_id=EPIC), 1),
            ("leaves", lambda: data.update(joiner, parent_id=None), 1),
            ("nothing", lambda: None, 0),
        ]
        for name, change, searches in steps:
            data.advance(timedelta(minutes=10))
            change()
            mark = len(sandbox.log)
            result, state = _chain(client, state)
            assert _membership_searches(sandbox, mark) == searches, name
            assert set(result.memberships["KR"]) == _members(sandbox), name
            # Every member's details are as fresh as Jira's (out of scope as they are).
            for issue_id in result.memberships["KR"]:
                assert result.issues[issue_id].status_category == (
                    data.get(int(issue_id)).status_category), name


def test_pull_given_the_daily_reconcile_reruns_raw_jql_jira_answers_and_sees_deleted_members(
    sandbox: JiraSandbox,
) -> None:
    member = min(int(i) for i in _members(sandbox))
    with _client(sandbox) as client:
        _, state = _chain(client, SourceState(issues={}, last_full_reconcile=_NOW))
        sandbox.dataset.advance(timedelta(minutes=10))
        sandbox.dataset.delete(member)
        mark = len(sandbox.log)
        result, _ = _chain(client, state, now=_NOW + timedelta(days=1))
    assert _membership_searches(sandbox, mark) == 1
    assert set(result.memberships["KR"]) == _members(sandbox)
    assert str(member) not in result.memberships["KR"]


def test_pull_given_jira_refused_a_kept_raw_jql_once_asks_it_again_on_the_next_change(
    sandbox: JiraSandbox,
) -> None:
    data = sandbox.dataset
    joiner = min(r.id for r in data if r.project == "SUP" and r.parent_id is None
                 and r.issuetype != "Epic")
    unrelated = min(r.id for r in data if r.project == "ENT" and r.parent_id is None
                    and r.issuetype != "Epic")
    with _client(sandbox) as client:
        _, state = _chain(client, SourceState(issues={}, last_full_reconcile=_NOW))
        data.advance(timedelta(minutes=10))
        data.update(joiner, parent_id=EPIC)
        search_ids = client.search_ids

        def refused(jql: str, *, context: str | None = None) -> list[str]:
            raise PermanentError(f"Jira refused {jql}")

        client.search_ids = refused  # type: ignore[method-assign]
        result = SourcePuller("main", client, _plan()).pull(state, PullOptions(_NOW))
        client.search_ids = search_ids  # type: ignore[method-assign]
        assert "KR" in result.failures
        state = _after(state, result)
        data.advance(timedelta(minutes=10))
        data.transition(unrelated, "done")
        mark = len(sandbox.log)
        result, _ = _chain(client, state)
    assert _membership_searches(sandbox, mark) == 1
    assert str(joiner) in result.memberships["KR"]
    assert set(result.memberships["KR"]) == _members(sandbox)


def test_pull_given_the_parent_of_raw_jql_moved_keeps_matching_joiners_by_parent_id(
    sandbox: JiraSandbox, store: Store,
) -> None:
    data = sandbox.dataset
    epic = min(r.id for r in data if r.project == "ENT" and r.issuetype == "Epic"
               and any(not c.is_subtask for c in data.children(r.id)))
    jql = f"parent = {data.get(epic).key}"
    joiner = min(r.id for r in data if r.project == "SUP" and r.parent_id is None
                 and r.issuetype != "Epic")
    other_child = min(r.id for r in data if r.parent_id not in (None, epic)
                      and not r.is_subtask)
    plan = _plan(jql)

    def children() -> set[str]:
        return {str(c.id) for c in data.children(epic) if not c.is_subtask}

    with _client(sandbox) as client:
        stored_pull(store, client, plan, _NOW)
        data.advance(timedelta(minutes=10))
        data.move(epic, "SUP")  # a new key; the store keeps the one it had
        stored_pull(store, client, plan, _NOW)
        steps = [
            # Its child names the epic's new key: still `parent = <old key>` on Jira.
            ("joins the moved epic", lambda: data.update(joiner, parent_id=epic), 1),
            # Another epic's child is not in it: the old key is resolved, nothing re-runs.
            ("another parent's child", lambda: data.transition(other_child, "done"), 0),
        ]
        for name, change, searches in steps:
            data.advance(timedelta(minutes=10))
            change()
            mark = len(sandbox.log)
            result = stored_pull(store, client, plan, _NOW)
            assert _membership_searches(sandbox, mark, jql) == searches, name
            assert set(result.memberships["KR"]) == children(), name
    assert str(joiner) in children()


def _other_raw_kr() -> SourceFetchPlan:
    jql = "parent = OPS-2"
    query = MembershipQuery("OTHER", jql, "ids", volatile=False,
                            screen=analyse(jql, restricted=False))
    return SourceFetchPlan("main", SCOPE, (), (query,))


@pytest.mark.parametrize("meanwhile", ["another raw KR", "no raw KR"])
def test_pull_given_a_raw_kr_back_in_the_plan_asks_jira_for_an_answer_older_than_the_cursor(
    sandbox: JiraSandbox, store: Store, meanwhile: str,
) -> None:
    data = sandbox.dataset
    joiner = min(r.id for r in data if r.project == "SUP" and r.parent_id is None
                 and r.issuetype != "Epic")
    unrelated = min(r.id for r in data if r.project == "ENT" and r.parent_id is None
                    and r.issuetype != "Epic")
    without = (_other_raw_kr() if meanwhile == "another raw KR"
               else SourceFetchPlan("main", SCOPE, (), ()))
    with _client(sandbox) as client:
        stored_pull(store, client, _plan(), _NOW)
        data.advance(timedelta(minutes=10))
        data.update(joiner, parent_id=EPIC)
        stored_pull(store, client, without, _NOW)  # the KR is out of the plan
        if meanwhile == "another raw KR":
            # A plan's raw KRs drop the stored answers of KRs it no longer has.
            assert store.get_membership("main", "KR") is None
        data.advance(timedelta(minutes=10))
        data.transition(unrelated, "done")
        mark = len(sandbox.log)
        result = stored_pull(store, client, _plan(), _NOW)
    assert _membership_searches(sandbox, mark) == 1
    assert set(result.memberships["KR"]) == _members(sandbox)


def test_pull_given_a_stored_answer_not_known_to_hold_through_the_cursor_asks_jira(
    sandbox: JiraSandbox, store: Store,
) -> None:
    data = sandbox.dataset
    unrelated = min(r.id for r in data if r.project == "ENT" and r.parent_id is None
                    and r.issuetype != "Epic")
    with _client(sandbox) as client:
        stored_pull(store, client, _plan(), _NOW)
        steps = [("kept", 0), ("stored before the upgrade", 1), ("kept again", 0)]
        for name, searches in steps:
            if name == "stored before the upgrade":
                # As older code left it (e.g. kept when Jira refused to renew it).
                stored = store.get_membership("main", "KR")
                assert stored is not None and stored.checked_through is not None
                store.set_membership("main", "KR", jql=PARENT_JQL, issue_ids=stored.issue_ids)
            data.advance(timedelta(minutes=10))
            data.transition(unrelated, "done" if name != "kept" else "in progress")
            mark = len(sandbox.log)
            result = stored_pull(store, client, _plan(), _NOW)
            assert _membership_searches(sandbox, mark) == searches, name
            assert set(result.memberships["KR"]) == _members(sandbox), name


def test_pull_given_a_source_without_structured_scope_reruns_raw_jql_once_a_day(
    sandbox: JiraSandbox,
) -> None:
    plan = SourceFetchPlan("main", (), (), _plan().memberships)

    def chain(state: SourceState, now: datetime) -> tuple[PulledSource, SourceState]:
        result = SourcePuller("main", client, plan).pull(state, PullOptions(now))
        assert result.source_error is None and not result.failures
        return result, _after(state, result)

    with _client(sandbox) as client:
        first, state = chain(SourceState(issues={}), _NOW)
        assert first.reconciled_at == _NOW
        for name, later, searches in [("quiet", timedelta(minutes=10), 0),
                                      ("a day later", timedelta(days=1), 1)]:
            sandbox.dataset.advance(timedelta(minutes=10))
            mark = len(sandbox.log)
            result, state = chain(state, _NOW + later)
            assert _membership_searches(sandbox, mark) == searches, name
            assert set(result.memberships["KR"]) == _members(sandbox), name
    assert result.reconciled_at == _NOW + timedelta(days=1)


ACCOUNT = "5b10a2844c20165700ede21f"


def test_pull_given_raw_jql_on_the_assignee_keeps_jiras_answer_through_an_unrelated_change(
    sandbox: JiraSandbox,
) -> None:
    data = sandbox.dataset
    jql = f"assignee = {ACCOUNT}"
    plan = build_fetch_plan(
        PlanBuilder()
        .set("jira", {"main": {"projects": list(SCOPE)}})
        .with_objective(objective(
            "O",
            {"id": "S", "title": "S", "measure": {"kind": "done_ratio",
                                                   "select": {"project": "ENT"}}},
            {"id": "KR", "title": "KR", "measure": {"kind": "done_ratio", "jql": jql}},
        ))
        .build())["main"]
    sup = sorted(r.id for r in data if r.project == "SUP" and r.issuetype != "Epic")
    unrelated = min(r.id for r in data if r.project == "ENT" and r.issuetype != "Epic")
    data.update(sup[0], assignee=ACCOUNT)

    def assigned() -> set[str]:
        return {str(r.id) for r in data if r.assignee == ACCOUNT}

    with _client(sandbox) as client:
        state = SourceState(issues={}, last_full_reconcile=_NOW)
        for name, change, searches in [
            ("cold", lambda: None, 1),
            ("unrelated edit", lambda: data.transition(unrelated, "done"), 0),
            ("assigned", lambda: data.update(sup[1], assignee=ACCOUNT), 1),
        ]:
            data.advance(timedelta(minutes=10))
            change()
            mark = len(sandbox.log)
            result = SourcePuller("main", client, plan).pull(state, PullOptions(_NOW))
            assert result.source_error is None and not result.failures
            state = _after(state, result)
            assert _membership_searches(sandbox, mark, jql) == searches, name
            assert set(result.memberships["KR"]) == assigned(), name
