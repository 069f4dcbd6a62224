"""Store: snapshot explanations kept per KR and content hash (``kr_items``), read back
as the same document; old inline documents still read; prune keeps named rows."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from okr_sync.sync.store.records import InvalidRecordError
from okr_sync.sync.store.snapshot_items import INDEXED, ITEM_BATCH, LOOKUP_IDS, SPLIT_VERSIONS
from okr_sync.sync.store.store import Store
from okr_sync.sync.store.tables import kr_item_ids, kr_items, snapshots

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _entry(jql: str, items: list[str]) -> dict[str, Any]:
    return {"jql": jql, "error": None, "count": None, "reasons": [],
            "items": [{"id": i, "key": i} for i in items]}


def _document(explain: Mapping[str, Any], version: int = 2) -> dict[str, Any]:
    return {"version": version, "scorecard": {"objectives": []}, "explain": explain,
            "fetch": {}}


def _item_rows(store: Store) -> set[tuple[str, str]]:
    with store.engine.connect() as conn:
        return {(r.owner, r.hash) for r in conn.execute(sa.select(kr_items.c.owner,
                                                                  kr_items.c.hash))}


def test_save_snapshot_given_one_kr_changed_writes_one_row_and_reads_back_the_same(
    store: Store,
) -> None:
    first = _document({"KR1": _entry("a", ["1"]), "KR2": _entry("b", ["2", "3"])})
    second = _document({"KR1": _entry("a", ["1", "4"]), "KR2": _entry("b", ["2", "3"])})
    first_id = store.save_snapshot(cycle="c", as_of=NOW, document=first)
    assert len(_item_rows(store)) == 2

    second_id = store.save_snapshot(cycle="c", as_of=NOW, document=second)

    assert len(_item_rows(store)) == 3  # KR2's row is named again, not written again
    assert store.get_snapshot(first_id).document == first
    assert store.get_snapshot(second_id).document == second
    assert store.snapshot_explanations(second_id, ["KR1"]) == {"KR1": second["explain"]["KR1"]}


def test_get_snapshot_given_old_inline_document_reads_it_as_before(store: Store) -> None:
    old = _document({"KR1": _entry("a", ["1"])})
    with store.engine.begin() as conn:
        snapshot_id = conn.execute(
            sa.insert(snapshots).values(created_at=NOW, cycle="c", as_of=NOW, document=old,
                                        published=True).returning(snapshots.c.id)
        ).scalar_one()

    assert store.get_snapshot(snapshot_id).document == old
    assert store.snapshot_explanations(snapshot_id, ["KR1"]) == {"KR1": old["explain"]["KR1"]}
    assert store.snapshot_explained_owners(snapshot_id) == ["KR1"]
    assert store.snapshot_item_refs(snapshot_id) == {}


def test_prune_given_pruned_snapshot_keeps_rows_a_kept_snapshot_names(store: Store) -> None:
    old_at, new_at = NOW - timedelta(days=60), NOW - timedelta(days=1)
    # Two old unpublished passes (pruned) and a recent published one (kept).
    for at, kr1 in ((old_at, ["1"]), (old_at + timedelta(hours=1), ["1", "5"]),
                    (new_at, ["1", "4"])):
        store.save_snapshot(cycle="c", as_of=at, created_at=at, published=at == new_at,
                            document=_document(
            {"KR1": _entry("a", kr1), "KR2": _entry("b", ["2"])}))
    latest_id = store.latest_snapshot_id()
    assert latest_id is not None
    expected = store.get_snapshot(latest_id).document

    counts = store.prune(before=NOW - timedelta(days=30))

    assert counts.snapshots == 2
    # KR2's row was written by the oldest snapshot and is still named by the latest;
    # KR1's rows of the pruned snapshots are gone.
    assert store.get_snapshot(latest_id).document == expected
    remaining = {owner for owner, _ in _item_rows(store)}
    assert remaining == {"KR1", "KR2"}
    with store.engine.connect() as conn:
        kept_docs = conn.execute(sa.select(snapshots.c.document)).scalars().all()
    named = {(o, h) for d in kept_docs for o, h in (d.get("explain_refs") or {}).items()}
    assert _item_rows(store) == named


def _id_rows(store: Store, *, markers: bool = False) -> set[tuple[str, str, str]]:
    """The ids index's rows: the issue ids, or the rows marking a row indexed."""
    with store.engine.connect() as conn:
        return {(r.owner, r.hash, r.issue_id) for r in conn.execute(sa.select(
            kr_item_ids.c.owner, kr_item_ids.c.hash, kr_item_ids.c.issue_id))
            if (r.issue_id == INDEXED) == markers}


def test_snapshot_owners_holding_given_items_stored_apart_names_owners_of_that_snapshot(
    store: Store,
) -> None:
    first_id = store.save_snapshot(cycle="c", as_of=NOW, document=_document(
        {"KR1": _entry("a", ["1", "2"]), "KR2": _entry("b", ["3"]), "KR3": _entry("c", [])}))
    # KR2 no longer holds issue 3 in the second snapshot; its old row still does.
    second_id = store.save_snapshot(cycle="c", as_of=NOW, document=_document(
        {"KR1": _entry("a", ["1", "2"]), "KR2": _entry("b", ["4"]), "KR3": _entry("c", [])}))

    assert store.snapshot_owners_holding(first_id, {"2", "3", "9"}) == {"KR1", "KR2"}
    assert store.snapshot_owners_holding(second_id, {"2", "3", "9"}) == {"KR1"}
    assert store.snapshot_owners_holding(second_id, {"4"}) == {"KR2"}
    assert store.snapshot_owners_holding(second_id, set()) == set()
    # One ids row per item of each stored explanation row (KR1's written once), and
    # each row marked indexed (KR3's too, holding no items).
    assert len(_id_rows(store)) == 4
    assert {(owner, digest) for owner, digest, _ in _id_rows(store, markers=True)} == (
        _item_rows(store))


def test_snapshot_owners_holding_given_old_inline_document_cannot_tell(store: Store) -> None:
    with store.engine.begin() as conn:
        snapshot_id = conn.execute(
            sa.insert(snapshots).values(created_at=NOW, cycle="c", as_of=NOW, published=True,
                                        document=_document({"KR1": _entry("a", ["1"])}))
            .returning(snapshots.c.id)
        ).scalar_one()

    assert store.snapshot_owners_holding(snapshot_id, {"1"}) is None


def test_prune_given_pruned_rows_drops_their_ids_too(store: Store) -> None:
    old_at, new_at = NOW - timedelta(days=60), NOW - timedelta(days=1)
    for at, kr1 in ((old_at, ["1"]), (old_at + timedelta(hours=1), ["1", "5"]),
                    (new_at, ["1", "4"])):
        store.save_snapshot(cycle="c", as_of=at, created_at=at, published=at == new_at,
                            document=_document({"KR1": _entry("a", kr1)}))

    store.prune(before=NOW - timedelta(days=30))

    assert {(owner, digest) for owner, digest, _ in _id_rows(store, markers=True)} == (
        _item_rows(store))
    assert {issue_id for _, _, issue_id in _id_rows(store)} == {"1", "4"}


class _CountingExplain(Mapping[str, Any]):
    """Builds each owner's entry when it is read, and counts the entries built."""

    def __init__(self, owners: int) -> None:
        self.owners = [f"KR{n}" for n in range(owners)]
        self.built = 0

    def __getitem__(self, owner: str) -> Any:
        self.built += 1
        return _entry(owner, [owner, f"{owner}-x"])

    def __iter__(self) -> Iterator[str]:
        return iter(self.owners)

    def __len__(self) -> int:
        return len(self.owners)


@pytest.mark.parametrize("version", SPLIT_VERSIONS)
def test_save_snapshot_given_a_lazy_explain_writes_rows_a_batch_at_a_time(
    store: Store, version: int,
) -> None:
    explain = _CountingExplain(3 * ITEM_BATCH + 5)
    bound: list[int] = []

    def count(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any,
              executemany: bool) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO KR_ITEMS"):
            bound.append(len(parameters) if executemany else 1)

    sa.event.listen(store.engine, "before_cursor_execute", count)
    try:
        snapshot_id = store.save_snapshot(cycle="c", as_of=NOW,
                                          document=_document(explain, version))
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", count)

    assert explain.built == len(explain)  # each owner's JSON built once, when its turn came
    assert sum(bound) == len(explain)
    assert max(bound) <= ITEM_BATCH
    expected = _document({owner: _entry(owner, [owner, f"{owner}-x"])
                          for owner in explain.owners}, version)
    assert store.get_snapshot(snapshot_id).document == expected


def test_snapshot_owners_holding_given_items_given_as_tuples_finds_their_owner(
    store: Store,
) -> None:
    # Version 3 rows handed in as tuples: stored as JSON lists, and indexed all the same.
    row = ("7", "K-7", "s", "Done", "P", True, 1.0, None, "points")
    entry = {"jql": "a", "error": None, "count": None, "reasons": [], "items": [row]}
    snapshot_id = store.save_snapshot(cycle="c", as_of=NOW,
                                      document=_document({"KR1": entry}, 3))

    assert store.snapshot_owners_holding(snapshot_id, {"7"}) == {"KR1"}
    assert store.get_snapshot(snapshot_id).document["explain"]["KR1"]["items"] == [list(row)]


@pytest.mark.parametrize("key", [1, True, None, 1.5])
def test_save_snapshot_given_a_non_string_key_in_an_explanation_refuses_it(
    store: Store, key: Any,
) -> None:
    entry = {"jql": "a", "error": None, "count": None, "reasons": [], "items": [],
             "extra": {key: "x"}}

    with pytest.raises(InvalidRecordError, match="keys must be strings"):
        store.save_snapshot(cycle="c", as_of=NOW, document=_document({"KR1": entry}, 3))
    assert _item_rows(store) == set()


def test_snapshot_owners_holding_given_a_row_stored_without_ids_cannot_tell(
    store: Store,
) -> None:
    snapshot_id = store.save_snapshot(cycle="c", as_of=NOW, document=_document(
        {"KR1": _entry("a", ["1"]), "KR2": _entry("b", ["2"])}))
    # KR2's row as a process predating the index stores it (still running after
    # `db upgrade`): no ids, so nothing tells whether it holds issue 1.
    with store.engine.begin() as conn:
        conn.execute(sa.delete(kr_item_ids).where(kr_item_ids.c.owner == "KR2"))

    assert store.snapshot_owners_holding(snapshot_id, {"1"}) is None


def test_save_snapshot_given_ids_left_by_a_deleted_row_stores_the_row_again(
    store: Store,
) -> None:
    document = _document({"KR1": _entry("a", ["1", "2"])})
    store.save_snapshot(cycle="c", as_of=NOW, document=document)
    # Deleted by a prune predating the index (or by hand): its ids stay behind.
    with store.engine.begin() as conn:
        conn.execute(sa.delete(kr_items))

    snapshot_id = store.save_snapshot(cycle="c", as_of=NOW, document=document)

    assert store.get_snapshot(snapshot_id).document == document
    assert store.snapshot_owners_holding(snapshot_id, {"2"}) == {"KR1"}
    assert {issue_id for _, _, issue_id in _id_rows(store)} == {"1", "2"}


def test_snapshot_owners_holding_given_many_stored_versions_reads_only_the_snapshots_rows(
    store: Store,
) -> None:
    # Every version of KR1 holds issue 1: only the one the snapshot names is read.
    for n in range(5):
        snapshot_id = store.save_snapshot(cycle="c", as_of=NOW, document=_document(
            {"KR1": _entry("a", ["1", str(10 + n)]), "KR2": _entry("b", ["2"])}))
    before = store.kr_item_id_rows_read

    assert store.snapshot_owners_holding(snapshot_id, {"1", "2", "10"}) == {"KR1", "KR2"}
    assert store.kr_item_id_rows_read - before == 2


def test_snapshot_items_given_sqlite_reads_rows_by_primary_key_never_a_scan(
    store: Store,
) -> None:
    if store.engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL's planner picks by table statistics, empty here")
    statements: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any,
               executemany: bool) -> None:
        if "kr_item" in statement and not statement.lstrip().startswith("INSERT"):
            statements.append((statement, parameters[0] if executemany else parameters))

    sa.event.listen(store.engine, "before_cursor_execute", record)
    try:
        for kr1 in (["1"], ["1", "2"], ["1"]):
            snapshot_id = store.save_snapshot(cycle="c", as_of=NOW, document=_document(
                {"KR1": _entry("a", kr1), "KR2": _entry("b", ["3"])}))
        store.snapshot_explanations(snapshot_id, ["KR1"])
        store.snapshot_owners_holding(snapshot_id, {"1"})
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", record)

    assert len(statements) >= 4
    with store.engine.connect() as conn:
        plans = [row[-1] for statement, parameters in statements
                 for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)]
    assert not [step for step in plans if step.startswith(("SCAN kr_items", "SCAN kr_item_ids"))]


def test_snapshot_owners_holding_given_more_ids_than_one_lookup_reads_the_rows_whole(
    store: Store,
) -> None:
    snapshot_id = store.save_snapshot(cycle="c", as_of=NOW, document=_document(
        {"KR1": _entry("a", ["1", "2"]), "KR2": _entry("b", ["3"]), "KR3": _entry("c", [])}))
    many = {str(n) for n in range(3, 3 + LOOKUP_IDS + 1)}
    before = store.kr_item_id_rows_read

    assert store.snapshot_owners_holding(snapshot_id, many) == {"KR2"}
    assert store.kr_item_id_rows_read - before == 3  # every id of the snapshot's rows


def test_snapshot_owners_holding_given_owners_reads_only_their_rows(store: Store) -> None:
    ids = [str(n) for n in range(LOOKUP_IDS + 50)]
    snapshot_id = store.save_snapshot(cycle="c", as_of=NOW, document=_document(
        {"KR1": _entry("a", ids[:100]), "KR2": _entry("b", ids[100:]),
         "KR3": _entry("c", ["1", "x"])}))
    before = store.kr_item_id_rows_read

    # More ids than one lookup takes: the asked owners' rows are read whole, no other.
    assert store.snapshot_owners_holding(snapshot_id, ids, ["KR3", "KR9"]) == {"KR3"}
    assert store.kr_item_id_rows_read - before == 2
    assert store.snapshot_owners_holding(snapshot_id, ids, []) == set()
    assert store.snapshot_owners_holding(snapshot_id, {"150"}, ["KR1", "KR2"]) == {"KR2"}
