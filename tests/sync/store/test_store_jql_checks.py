"""Store: Jira's verdicts on raw JQL answered on the mirror."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from okr_sync.sync.store.store import Store, jql_hash

T0 = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
JQL = "project = ENT AND labels = sso"


def test_set_jql_check_given_new_verdict_replaces_the_owners_row(store: Store) -> None:
    store.set_jql_check("main", "KR1", jql=JQL, verdict="match", checked_at=T0)
    store.set_jql_check("main", "KR2", jql=JQL, verdict="match", checked_at=T0)
    later = T0 + timedelta(days=1)
    store.set_jql_check("main", "KR1", jql=f"  {JQL}\n", verdict="mismatch",
                        detail="mirror 3 issues, Jira 4; only Jira: ENT-9", checked_at=later)
    store.set_jql_check("other", "KR1", jql="project = OPS", verdict="match", checked_at=T0)

    checks = store.jql_checks("main")
    assert [(c.kr_id, c.verdict, c.checked_at) for c in checks] == [
        ("KR1", "mismatch", later), ("KR2", "match", T0)]
    assert checks[0].detail == "mirror 3 issues, Jira 4; only Jira: ENT-9"
    # The same JQL up to whitespace is the same query; another JQL is a new one.
    assert checks[0].jql_hash == jql_hash(JQL) and checks[0].matches(JQL)
    assert not checks[0].matches("project = ENT")
    assert [c.source for c in store.jql_checks()] == ["main", "main", "other"]


def test_set_jql_check_given_transaction_rolled_back_keeps_nothing(store: Store) -> None:
    try:
        with store.transaction() as tx:
            tx.set_jql_check("main", "KR1", jql=JQL, verdict="match", checked_at=T0)
            raise RuntimeError("pass failed before commit")
    except RuntimeError:
        pass
    assert store.jql_checks() == []
