"""Store: issue mirror, key history, raw-JQL memberships and cursors."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import event

from okr_sync.sync.store.issues import UPSERT_BATCH
from okr_sync.sync.store.store import InvalidRecordError, Store, StoreError, jql_hash

T0 = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)


def issue(
    issue_id: str = "10001",
    key: str = "ENT-1",
    *,
    project: str = "ENT",
    updated: datetime | str = T0,
    **fields: Any,
) -> dict[str, Any]:
    """A Jira issue record as the connector hands it over (fields beyond the four required)."""
    record: dict[str, Any] = {
        "id": issue_id,
        "key": key,
        "project": project,
        "updated": updated,
        "status_category": "indeterminate",
        "story_points": 3.0,
        "labels": ["sso"],
    }
    record.update(fields)
    return record


@dataclass(frozen=True)
class TypedIssue:
    id: str
    key: str
    project: str
    updated: datetime
    labels: tuple[str, ...]
    resolutiondate: datetime | None = None


def test_upsert_issues_given_new_records_inserts_and_returns_them_as_json(store: Store) -> None:
    result = store.upsert_issues("main", [issue("2", "ENT-2"), issue("1", "ENT-1")], seen_at=T0)

    assert (result.inserted, result.updated, result.stale, result.key_changes) == (2, 0, 0, ())
    issues = store.get_issues("main")
    assert [i["id"] for i in issues] == ["1", "2"]
    assert issues[0] == {
        "id": "1",
        "key": "ENT-1",
        "project": "ENT",
        "updated": T0.isoformat(),
        "status_category": "indeterminate",
        "story_points": 3.0,
        "labels": ["sso"],
    }


def test_upsert_issues_given_dataclass_records_stores_their_fields(store: Store) -> None:
    record = TypedIssue("7", "ENT-7", "ENT", T0, ("a", "b"), resolutiondate=T0)

    store.upsert_issues("main", [record])

    assert store.get_issues("main") == [
        {
            "id": "7",
            "key": "ENT-7",
            "project": "ENT",
            "updated": T0.isoformat(),
            "labels": ["a", "b"],
            "resolutiondate": T0.isoformat(),
        }
    ]


def test_upsert_issues_given_newer_record_updates_and_older_one_is_skipped(store: Store) -> None:
    store.upsert_issues("main", [issue(status_category="new")])

    newer = store.upsert_issues(
        "main", [issue(updated=T0 + timedelta(minutes=5), status_category="done")]
    )
    stale = store.upsert_issues("main", [issue(updated=T0, status_category="new")])

    assert (newer.inserted, newer.updated, newer.stale) == (0, 1, 0)
    assert (stale.inserted, stale.updated, stale.stale) == (0, 0, 1)
    assert store.get_issues("main")[0]["status_category"] == "done"


def test_upsert_issues_given_same_updated_refreshes_fields(store: Store) -> None:
    # A workflow admin can move a status to another category without touching `updated`.
    store.upsert_issues("main", [issue(status_category="indeterminate")])

    result = store.upsert_issues("main", [issue(status_category="done")])

    assert result.updated == 1
    assert store.get_issues("main")[0]["status_category"] == "done"


def test_upsert_issues_given_duplicate_ids_in_batch_keeps_latest(store: Store) -> None:
    later = T0 + timedelta(minutes=1)
    store.upsert_issues("main", [issue(updated=later, summary="new"), issue(summary="old")])

    assert store.get_issues("main")[0]["summary"] == "new"


def test_upsert_issues_given_jira_timestamp_text_parses_offset(store: Store) -> None:
    store.upsert_issues("main", [issue(updated="2026-11-02T04:30:00.000-0500")])
    result = store.upsert_issues("main", [issue(updated=T0 - timedelta(seconds=1))])

    assert result.stale == 1  # 04:30-05:00 is 09:30 UTC, later than 09:29:59 UTC


def test_upsert_issues_given_moved_issue_records_key_change(store: Store) -> None:
    store.upsert_issues("main", [issue("5", "ENT-5")], seen_at=T0)
    later = T0 + timedelta(hours=1)

    result = store.upsert_issues(
        "main", [issue("5", "SUP-9", project="SUP", updated=later)], seen_at=later
    )

    assert [(c.issue_id, c.old_key, c.new_key) for c in result.key_changes] == [
        ("5", "ENT-5", "SUP-9")
    ]
    assert [(c.old_key, c.new_key, c.changed_at) for c in store.key_history("main", "5")] == [
        ("ENT-5", "SUP-9", later)
    ]
    assert store.resolve_key("main", "SUP-9") == "5"
    assert store.resolve_key("main", "ENT-5") == "5"
    assert store.resolve_key("main", "ENT-404") is None


def test_resolve_keys_given_current_former_and_unknown_keys_answers_as_resolve_key(
    store: Store,
) -> None:
    store.upsert_issues("main", [issue("5", "ENT-5"), issue("6", "ENT-6")], seen_at=T0)
    later = T0 + timedelta(hours=1)
    store.upsert_issues("main", [issue("5", "SUP-9", project="SUP", updated=later)],
                        seen_at=later)
    keys = ["SUP-9", "ENT-5", "ENT-6", "ENT-404"]

    resolved = store.resolve_keys("main", keys)

    assert resolved == {key: store.resolve_key("main", key) for key in keys}
    assert resolved == {"SUP-9": "5", "ENT-5": "5", "ENT-6": "6", "ENT-404": None}


def test_record_key_change_given_webhook_move_appends_history(store: Store) -> None:
    change = store.record_key_change("main", "8", "ENT-8", "OPS-1", at=T0)

    assert store.key_history("main") == [change]
    assert store.resolve_key("main", "ENT-8") == "8"


def test_upsert_issues_given_invalid_records_refuses_the_batch(store: Store) -> None:
    with pytest.raises(InvalidRecordError, match="lacks key"):
        store.upsert_issues("main", [issue(), {"id": "2", "project": "ENT", "updated": T0}])
    with pytest.raises(InvalidRecordError, match="UTC offset"):
        store.upsert_issues("main", [issue(updated=datetime(2026, 1, 1))])
    with pytest.raises(InvalidRecordError, match="cannot be stored"):
        store.upsert_issues("main", [issue(extra=object())])

    assert store.get_issues("main") == []


def test_upsert_issues_given_5000_records_stores_all_in_one_call(store: Store) -> None:
    records = [issue(str(n), f"ENT-{n}", story_points=float(n % 8)) for n in range(5000)]

    result = store.upsert_issues("main", records)
    again = store.upsert_issues(
        "main", [issue(str(n), f"ENT-{n}", updated=T0 + timedelta(1)) for n in range(5000)]
    )

    assert (result.inserted, again.updated) == (5000, 5000)
    assert store.issue_ids("main") == {str(n) for n in range(5000)}
    assert len(store.get_issues("main", ids=[str(n) for n in range(0, 5000, 7)])) == 715


def test_upsert_issues_given_more_records_than_a_batch_binds_at_most_a_batch_at_once(
    store: Store,
) -> None:
    # A cold pass hands over the whole mirror: its rows (every record as JSON) must not
    # all be built and bound in one statement, or memory grows with the mirror.
    records = [issue(str(n), f"ENT-{n}") for n in range(3 * UPSERT_BATCH + 7)]
    bound: list[int] = []

    def count(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any,
              executemany: bool) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO ISSUES"):
            bound.append(len(parameters) if executemany else 1)

    event.listen(store.engine, "before_cursor_execute", count)
    try:
        result = store.upsert_issues("main", records, seen_at=T0)
    finally:
        event.remove(store.engine, "before_cursor_execute", count)

    assert result.inserted == len(records)
    assert sum(bound) == len(records)
    assert max(bound) <= UPSERT_BATCH


def test_upsert_issues_given_an_invalid_record_after_a_full_batch_stores_nothing(
    store: Store,
) -> None:
    records = [issue(str(n), f"ENT-{n}") for n in range(UPSERT_BATCH + 1)]
    records.append({"id": "x1", "project": "ENT", "updated": T0})

    with pytest.raises(InvalidRecordError, match="lacks key"):
        store.upsert_issues("main", records)

    assert store.get_issues("main") == []


def test_upsert_issues_given_duplicates_in_different_batches_keeps_the_latest(
    store: Store,
) -> None:
    records = [issue(str(n), f"ENT-{n}") for n in range(UPSERT_BATCH + 3)]
    records.append(issue("1", "ENT-1", updated=T0 - timedelta(hours=1), labels=["old"]))
    records.append(issue("2", "ENT-2", updated=T0 + timedelta(hours=1), labels=["new"]))

    result = store.upsert_issues("main", records)

    assert (result.inserted, result.updated, result.stale) == (UPSERT_BATCH + 3, 0, 0)
    stored = {i["id"]: i for i in store.get_issues("main", ids=["1", "2"])}
    assert (stored["1"]["labels"], stored["2"]["labels"]) == (["sso"], ["new"])


def test_mark_deleted_given_ids_hides_them_until_they_reappear(store: Store) -> None:
    store.upsert_issues("main", [issue("1", "ENT-1"), issue("2", "ENT-2")])

    assert store.mark_deleted("main", ["2", "404"], at=T0) == 1
    assert store.mark_deleted("main", ["2"], at=T0) == 0
    assert [i["id"] for i in store.get_issues("main")] == ["1"]
    assert [i["id"] for i in store.get_issues("main", include_deleted=True)] == ["1", "2"]
    assert store.issue_ids("main") == {"1"}
    assert store.issue_ids("main", include_deleted=True) == {"1", "2"}

    store.upsert_issues("main", [issue("2", "ENT-2")])

    assert store.issue_ids("main") == {"1", "2"}


def test_get_issues_given_two_sources_keeps_them_apart(store: Store) -> None:
    store.upsert_issues("main", [issue("1", "ENT-1")])
    store.upsert_issues("dc", [issue("1", "OPS-1", project="OPS")])

    assert [i["key"] for i in store.get_issues("main")] == ["ENT-1"]
    assert [i["key"] for i in store.get_issues("dc")] == ["OPS-1"]


def test_set_membership_given_jql_and_ids_round_trips_and_replaces(store: Store) -> None:
    jql = "project = SUP AND priority = Highest"
    first = store.set_membership(
        "main", "CO-1.KR2", jql=jql, issue_ids=["3", "1", "3"], refreshed_at=T0
    )

    assert store.get_membership("main", "CO-1.KR2") == first
    assert first.issue_ids == ("1", "3")
    assert first.matches("project = SUP  AND priority = Highest")
    assert not first.matches("project = SUP")
    assert first.jql_hash == jql_hash(jql)

    store.set_membership("main", "CO-1.KR2", jql="project = SUP", issue_ids=[], refreshed_at=T0)

    replaced = store.get_membership("main", "CO-1.KR2")
    assert replaced is not None
    assert (replaced.issue_ids, replaced.matches("project = SUP")) == ((), True)
    assert store.get_membership("main", "CO-1.KR9") is None


def test_delete_memberships_given_keep_list_drops_the_others(store: Store) -> None:
    for kr in ("A", "B", "C"):
        store.set_membership("main", kr, jql="project = X", issue_ids=["1"])

    assert store.delete_memberships("main", keep=["B"]) == 2
    assert [store.get_membership("main", kr) is not None for kr in "ABC"] == [False, True, False]


def test_forget_membership_given_one_owner_drops_only_that_one(store: Store) -> None:
    for kr in ("A", "B"):
        store.set_membership("main", kr, jql="project = X", issue_ids=["1"])
    store.set_membership("other", "A", jql="project = X", issue_ids=["1"])

    assert store.forget_membership("main", "A") is True
    assert store.forget_membership("main", "A") is False
    assert store.get_membership("main", "A") is None
    assert store.get_membership("main", "B") is not None
    assert store.get_membership("other", "A") is not None


def test_set_cursor_given_partial_updates_keeps_other_field(store: Store) -> None:
    assert store.get_cursor("main") is None

    store.set_cursor("main", high_water_mark=T0, at=T0)
    cursor = store.set_cursor("main", last_full_reconcile=T0 + timedelta(hours=1), at=T0)

    assert cursor.high_water_mark == T0
    assert cursor.last_full_reconcile == T0 + timedelta(hours=1)
    assert store.get_cursor("main") == cursor
    assert [c.source for c in store.list_cursors()] == ["main"]
    with pytest.raises(InvalidRecordError):
        store.set_cursor("main")


def test_set_cursor_given_other_offset_returns_same_instant_in_utc(store: Store) -> None:
    plus_two = datetime(2026, 11, 2, 11, 30, tzinfo=timezone(timedelta(hours=2)))

    cursor = store.set_cursor("main", high_water_mark=plus_two)

    assert cursor.high_water_mark == T0
    assert cursor.high_water_mark is not None
    assert cursor.high_water_mark.utcoffset() == timedelta(0)


def test_reset_cursor_given_existing_cursor_forgets_it(store: Store) -> None:
    store.set_cursor("main", high_water_mark=T0)

    assert store.reset_cursor("main") is True
    assert store.reset_cursor("main") is False
    assert store.get_cursor("main") is None


def test_store_given_naive_time_argument_refuses_it(store: Store) -> None:
    with pytest.raises(StoreError):
        store.set_cursor("main", high_water_mark=datetime(2026, 1, 1))
