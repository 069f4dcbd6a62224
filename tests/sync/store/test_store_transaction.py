"""Store: the unit of work (snapshot + history + outbox + cursor commit together or not at all)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from okr_sync.sync.store.store import HistoryEntry, OutboxItem, Store, StoreError

T0 = datetime(2026, 11, 15, 8, 0, tzinfo=UTC)


class Boom(Exception):
    """Stands for anything failing in the middle of a pass's commit."""


def write_pass_results(store: Store, *, fail_after_outbox: bool) -> None:
    with store.transaction() as tx:
        run_id = tx.start_run("run", started_at=T0)
        snapshot_id = tx.save_snapshot(cycle="2026-Q4", as_of=T0, document={"changes": []})
        tx.add_history(
            snapshot_id,
            cycle="2026-Q4",
            as_of=T0,
            entries=[HistoryEntry("KR1", 0.4, 0.4, "progress", "at_risk")],
        )
        tx.enqueue(
            OutboxItem("k1", "enterprise", "slack:C1", "scorecard", {"text": "x"}, snapshot_id)
        )
        if fail_after_outbox:
            raise Boom
        tx.set_cursor("main", high_water_mark=T0)
        tx.upsert_issues("main", [{"id": "1", "key": "ENT-1", "project": "ENT", "updated": T0}])
        tx.finish_run(run_id, "ok")


def test_transaction_given_success_commits_every_write(store: Store) -> None:
    write_pass_results(store, fail_after_outbox=False)

    snapshot = store.last_published_snapshot()
    assert snapshot is not None
    assert [h.snapshot_id for h in store.get_history("KR1")] == [snapshot.id]
    assert [r.snapshot_id for r in store.list_outbox()] == [snapshot.id]
    cursor = store.get_cursor("main")
    assert cursor is not None and cursor.high_water_mark == T0
    assert store.issue_ids("main") == {"1"}
    last = store.last_run()
    assert last is not None and last.outcome == "ok"


def test_transaction_given_failure_midway_leaves_nothing_written(store: Store) -> None:
    with pytest.raises(Boom):
        write_pass_results(store, fail_after_outbox=True)

    assert store.last_run() is None
    assert store.latest_snapshot() is None
    assert store.get_history("KR1") == []
    assert store.list_outbox() == []
    assert store.get_cursor("main") is None


def test_transaction_given_database_error_midway_rolls_back_earlier_writes(store: Store) -> None:
    store.set_cursor("main", high_water_mark=T0)
    later = datetime(2026, 11, 16, tzinfo=UTC)

    with pytest.raises(StoreError), store.transaction() as tx:
        tx.set_cursor("main", high_water_mark=later)
        tx.save_snapshot(cycle="c", as_of=T0, document={})
        tx.finish_run(12345, "ok")  # no such run: NotFoundError after two writes

    cursor = store.get_cursor("main")
    assert cursor is not None and cursor.high_water_mark == T0
    assert store.latest_snapshot() is None


def test_transaction_given_direct_store_call_inside_refuses_it(store: Store) -> None:
    with store.transaction() as tx:
        tx.set_cursor("main", high_water_mark=T0)
        with pytest.raises(StoreError, match="transaction is open"):
            store.get_cursor("main")
        with pytest.raises(StoreError, match="do not nest"), store.transaction():
            pass

    assert store.get_cursor("main") is not None


def test_transaction_given_block_ended_makes_the_object_unusable(store: Store) -> None:
    with store.transaction() as tx:
        pass

    with pytest.raises(StoreError, match="ended"):
        tx.get_cursor("main")
