"""Store: lock epochs (fencing) and outbox rows whose post may still be in flight."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from okr_sync.sync.store.fencing import (
    RUN_LOCK,
    active_claimer,
    fenced_run_lock,
    may_be_in_flight,
    process_identity,
)
from okr_sync.sync.store.locks import LockLostError
from okr_sync.sync.store.store import InvalidStateError, OutboxItem, Store

T0 = datetime(2026, 11, 15, 8, 0, tzinfo=UTC)
GRACE = timedelta(minutes=15)


def _item(key: str, target: str = "slack:C0123456789") -> OutboxItem:
    return OutboxItem(idempotency_key=key, route="r", target=target, kind="scorecard",
                      payload={"text": key})


def test_advance_epoch_given_successive_acquisitions_counts_up_per_lock(store: Store) -> None:
    first = store.advance_epoch(RUN_LOCK, "host:1")
    second = store.advance_epoch(RUN_LOCK, "host:2")
    other = store.advance_epoch("migrate", "host:3")

    assert (first.epoch, second.epoch, other.epoch) == (1, 2, 1)
    assert store.current_epoch(RUN_LOCK) == 2


def test_transaction_given_fence_of_an_earlier_holder_raises_and_writes_nothing(
    store: Store,
) -> None:
    stale = store.advance_epoch(RUN_LOCK, "host:1")
    store.advance_epoch(RUN_LOCK, "host:2")  # the lock changed hands

    with pytest.raises(LockLostError) as caught, store.transaction(fence=stale) as tx:
        tx.enqueue(_item("k1"))

    assert store.list_outbox() == []
    assert (caught.value.epoch, caught.value.current, caught.value.holder) == (1, 2, "host:2")
    assert "lost the 'run' lock" in str(caught.value)


def test_transaction_given_current_fence_commits(store: Store) -> None:
    fence = store.advance_epoch(RUN_LOCK, "host:1")

    with store.transaction(fence=fence) as tx:
        tx.enqueue(_item("k1"))

    assert [r.idempotency_key for r in store.list_outbox()] == ["k1"]


def test_claim_deliverable_given_stale_fence_claims_nothing(store: Store) -> None:
    stale = store.advance_epoch(RUN_LOCK, "host:1")
    store.enqueue(_item("k1"), at=T0)
    store.advance_epoch(RUN_LOCK, "host:2")

    with pytest.raises(LockLostError):
        store.claim_deliverable(claimer="deliver:a", now=T0, fence=stale)

    assert [r.status for r in store.list_outbox()] == ["pending"]


def test_fenced_run_lock_given_each_acquisition_takes_a_new_epoch(
    migrated_database_url: str,
) -> None:
    with Store(migrated_database_url) as store:
        with fenced_run_lock(store, migrated_database_url, holder="host:1") as first:
            pass
        with fenced_run_lock(store, migrated_database_url, holder="host:2") as second:
            store.check_fence(second)
            with pytest.raises(LockLostError):
                store.check_fence(first)

    assert (first.epoch + 1, second.holder) == (second.epoch, "host:2")


def test_claim_deliverable_given_row_sending_by_a_running_delivery_of_this_process_holds_it(
    store: Store,
) -> None:
    row_id = store.enqueue(_item("k1"), at=T0)
    store.enqueue(_item("k2"), at=T0)  # behind it, same target
    later = T0 + timedelta(hours=1)
    with active_claimer() as sender:
        store.claim_deliverable(claimer=sender, now=T0)

        held = store.claim_deliverable(claimer="deliver:next", now=later, in_flight_grace=GRACE)
    again = store.claim_deliverable(claimer="deliver:next", now=later, in_flight_grace=GRACE)

    assert held == []  # the post may be on the wire: neither it nor the row behind it
    assert [(c.row.id, c.uncertain) for c in again] == [(row_id, True)]


def test_claim_deliverable_given_sender_process_alive_holds_row_until_the_grace_passes(
    store: Store,
) -> None:
    row_id = store.enqueue(_item("k1"), at=T0)
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]) as other:
        try:
            host, namespace, _ = process_identity().split("/")
            sender = f"deliver:x@{host}/{namespace}/{other.pid}"
            store.claim_deliverable(claimer=sender, now=T0)

            within = store.claim_deliverable(claimer="deliver:b", now=T0 + GRACE / 2,
                                             in_flight_grace=GRACE)
            after = store.claim_deliverable(claimer="deliver:b", now=T0 + GRACE * 2,
                                            in_flight_grace=GRACE)
        finally:
            other.kill()

    assert within == []
    assert [(c.row.id, c.uncertain) for c in after] == [(row_id, True)]


def test_claim_deliverable_given_sender_process_dead_claims_row_at_once(store: Store) -> None:
    row_id = store.enqueue(_item("k1"), at=T0)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    host, namespace, _ = process_identity().split("/")
    store.claim_deliverable(claimer=f"deliver:x@{host}/{namespace}/{dead.stdout.strip()}",
                            now=T0)

    again = store.claim_deliverable(claimer="deliver:b", now=T0 + timedelta(seconds=1),
                                    in_flight_grace=GRACE)

    assert [(c.row.id, c.uncertain) for c in again] == [(row_id, True)]


def test_may_be_in_flight_given_sender_on_another_host_waits_for_the_grace() -> None:
    sender = "deliver:x@elsewhere.example/4026531836/12"

    assert may_be_in_flight(sender, T0, T0 + GRACE / 2, GRACE) is True
    assert may_be_in_flight(sender, T0, T0 + GRACE, GRACE) is False
    assert may_be_in_flight(sender, None, T0, GRACE) is False  # claimed before claims were timed


def test_mark_sent_given_row_reclaimed_by_another_sender_refuses(store: Store) -> None:
    row_id = store.enqueue(_item("k1"), at=T0)
    assert row_id is not None
    store.claim_deliverable(claimer="deliver:a", now=T0)
    store.claim_deliverable(claimer="deliver:b", now=T0 + timedelta(hours=1))

    with pytest.raises(InvalidStateError, match="claimed by another sender"):
        store.mark_sent(row_id, claimer="deliver:a")
    store.mark_sent(row_id, claimer="deliver:b")

    assert store.get_outbox(row_id).status == "sent"
