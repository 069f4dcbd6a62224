"""Store: outbox (enqueue, supersede, per-target claims, settling), message refs, leases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from okr_sync.sync.store.store import (
    InvalidRecordError,
    InvalidStateError,
    NotFoundError,
    OutboxItem,
    OutboxKind,
    Store,
)

T0 = datetime(2026, 11, 15, 8, 0, tzinfo=UTC)
RUN = "run:1"


def item(
    key: str,
    target: str = "slack:C0123456789",
    kind: OutboxKind = "scorecard",
    *,
    snapshot_id: int | None = None,
) -> OutboxItem:
    return OutboxItem(
        idempotency_key=key,
        route="enterprise",
        target=target,
        kind=kind,
        payload={"text": f"message {key}", "blocks": [{"type": "section"}]},
        snapshot_id=snapshot_id,
    )


def claim_ids(store: Store, now: datetime = T0, claimer: str = RUN) -> list[int]:
    return [c.row.id for c in store.claim_deliverable(claimer=claimer, now=now)]


def test_enqueue_given_new_key_stores_pending_row(store: Store) -> None:
    snap = store.save_snapshot(cycle="c", as_of=T0, document={})

    row_id = store.enqueue(item("k1", snapshot_id=snap), at=T0)

    assert row_id is not None
    row = store.get_outbox(row_id)
    assert (row.status, row.attempts, row.target, row.kind, row.snapshot_id) == (
        "pending",
        0,
        "slack:C0123456789",
        "scorecard",
        snap,
    )
    assert row.payload == {"text": "message k1", "blocks": [{"type": "section"}]}
    assert row.created_at == T0


def test_enqueue_given_existing_idempotency_key_returns_none_and_keeps_one_row(
    store: Store,
) -> None:
    first = store.enqueue(item("same"))

    assert store.enqueue(item("same", target="slack:COTHER")) is None
    assert [r.id for r in store.list_outbox()] == [first]


def test_enqueue_given_url_target_refuses_to_store_a_secret(store: Store) -> None:
    with pytest.raises(InvalidRecordError, match="URL"):
        store.enqueue(item("k", target="teams_workflow:https://prod.logic.azure.com/x?sig=abc"))
    with pytest.raises(InvalidRecordError):
        store.enqueue(item("k", kind="poster"))  # type: ignore[arg-type]

    assert store.list_outbox() == []


def test_supersede_pending_given_newer_scorecard_retires_older_pending_only(store: Store) -> None:
    sending = store.enqueue(item("s1"))
    claimed = store.claim_deliverable(claimer=RUN, now=T0)
    older = store.enqueue(item("s2"))
    note = store.enqueue(item("n1", kind="change_note"))
    other_target = store.enqueue(item("t1", target="slack:COTHER"))
    newest = store.enqueue(item("s3"))
    assert newest is not None and [c.row.id for c in claimed] == [sending]

    assert store.supersede_pending("slack:C0123456789", "scorecard", older_than=newest) == 1

    statuses = {r.id: r.status for r in store.list_outbox()}
    assert statuses == {
        sending: "sending",
        older: "superseded",
        note: "pending",
        other_target: "pending",
        newest: "pending",
    }


def test_claim_deliverable_given_rows_for_two_targets_claims_each_target_head_in_order(
    store: Store,
) -> None:
    a1 = store.enqueue(item("a1"))
    b1 = store.enqueue(item("b1", target="teams_bot:19:abc@thread.tacv2"))
    a2 = store.enqueue(item("a2", kind="change_note"))

    first = store.claim_deliverable(claimer=RUN, now=T0)
    assert [(c.row.id, c.row.status, c.row.attempts, c.uncertain) for c in first] == [
        (a1, "sending", 1, False),
        (b1, "sending", 1, False),
    ]
    assert claim_ids(store) == []  # a2 waits behind a1, which is in flight

    assert a1 is not None and b1 is not None
    store.mark_sent(a1, result_ref="C0123456789:1700000000.000100", at=T0)
    store.mark_sent(b1, at=T0)

    assert claim_ids(store) == [a2]
    assert claim_ids(store) == []


def test_claim_deliverable_given_head_backing_off_holds_back_later_rows(store: Store) -> None:
    head = store.enqueue(item("h"))
    store.enqueue(item("later", kind="change_note"))
    assert head is not None and claim_ids(store) == [head]

    store.mark_retry(head, next_attempt_at=T0 + timedelta(minutes=5), error="ratelimited")

    row = store.get_outbox(head)
    assert (row.status, row.last_error) == ("pending", "ratelimited")
    assert claim_ids(store, T0 + timedelta(minutes=4)) == []
    retried = store.claim_deliverable(claimer=RUN, now=T0 + timedelta(minutes=5))
    assert [(c.row.id, c.row.attempts) for c in retried] == [(head, 2)]


def test_claim_deliverable_given_row_left_sending_by_crash_returns_it_as_uncertain(
    store: Store,
) -> None:
    row_id = store.enqueue(item("x"))
    store.claim_deliverable(claimer="run:1", now=T0)  # run 1 dies before settling the row

    again = store.claim_deliverable(claimer="run:2", now=T0 + timedelta(minutes=1))

    assert [(c.row.id, c.uncertain, c.row.attempts, c.row.claimed_by) for c in again] == [
        (row_id, True, 2, "run:2")
    ]
    assert claim_ids(store, claimer="run:2") == []


def test_claim_deliverable_given_no_claimer_refuses(store: Store) -> None:
    with pytest.raises(InvalidRecordError):
        store.claim_deliverable(claimer="")


def test_claim_deliverable_given_limit_claims_at_most_that_many_targets(store: Store) -> None:
    for n in range(3):
        store.enqueue(item(f"k{n}", target=f"slack:C{n}"))

    assert len(store.claim_deliverable(claimer=RUN, now=T0, limit=2)) == 2
    assert len(store.claim_deliverable(claimer=RUN, now=T0)) == 1


def test_mark_failed_given_permanent_error_unblocks_next_row(store: Store) -> None:
    bad = store.enqueue(item("bad"))
    nxt = store.enqueue(item("next", kind="change_note"))
    assert bad is not None
    store.claim_deliverable(claimer=RUN, now=T0)

    store.mark_failed(bad, error="channel_not_found")

    row = store.get_outbox(bad)
    assert (row.status, row.last_error) == ("failed", "channel_not_found")
    assert claim_ids(store) == [nxt]


def test_mark_sent_given_row_not_sending_refuses(store: Store) -> None:
    row_id = store.enqueue(item("p"))
    assert row_id is not None

    with pytest.raises(InvalidStateError, match="pending"):
        store.mark_sent(row_id)
    with pytest.raises(InvalidStateError):
        store.mark_retry(row_id, next_attempt_at=T0, error="x")
    with pytest.raises(NotFoundError):
        store.mark_sent(row_id + 100)
    store.mark_failed(row_id, error="route removed from the plan")
    with pytest.raises(InvalidStateError):
        store.mark_failed(row_id, error="again")


def test_mark_sent_given_claimed_row_records_result(store: Store) -> None:
    row_id = store.enqueue(item("ok"))
    assert row_id is not None
    store.claim_deliverable(claimer=RUN, now=T0)

    store.mark_sent(row_id, result_ref="C1:1.2", at=T0 + timedelta(seconds=1))

    row = store.get_outbox(row_id)
    assert (row.status, row.result_ref, row.sent_at) == (
        "sent",
        "C1:1.2",
        T0 + timedelta(seconds=1),
    )


def test_delivery_summary_given_mixed_rows_counts_and_lists_them(store: Store) -> None:
    sent = store.enqueue(item("a", target="slack:A"))
    failed = store.enqueue(item("b", target="slack:B"))
    pending = store.enqueue(item("c", target="slack:C"))
    assert sent is not None and failed is not None
    store.claim_deliverable(claimer=RUN, now=T0)
    store.mark_sent(sent)
    store.mark_failed(failed, error="invalid_auth")
    store.mark_retry(pending or 0, next_attempt_at=T0, error="503")

    summary = store.delivery_summary()

    assert summary.counts == {"sent": 1, "failed": 1, "pending": 1}
    assert [r.id for r in summary.pending] == [pending]
    assert [(r.id, r.last_error) for r in summary.failed] == [(failed, "invalid_auth")]
    assert [r.id for r in store.list_outbox(status="sent")] == [sent]
    assert [r.id for r in store.list_outbox(target="slack:B")] == [failed]


def test_set_message_ref_given_slack_and_teams_refs_round_trips_and_replaces(store: Store) -> None:
    assert store.get_message_ref("slack:C1") is None
    store.set_message_ref("slack:C1", channel="C1", message_id="1700000000.000100", at=T0)
    store.set_message_ref(
        "teams_bot:19:abc@thread.tacv2", channel="19:abc@thread.tacv2", message_id="1:act", at=T0
    )

    replaced = store.set_message_ref("slack:C1", channel="C1", message_id="1700000001.000200")

    assert store.get_message_ref("slack:C1") == replaced
    teams = store.get_message_ref("teams_bot:19:abc@thread.tacv2")
    assert teams is not None and (teams.channel, teams.message_id) == (
        "19:abc@thread.tacv2",
        "1:act",
    )
    assert store.get_message_ref("slack:C1", kind="digest") is None
    assert store.delete_message_ref("slack:C1") is True
    assert store.delete_message_ref("slack:C1") is False


def test_acquire_lease_given_holder_and_expiry_grants_one_holder_at_a_time(store: Store) -> None:
    ttl = timedelta(minutes=1)

    assert store.acquire_lease("digest", "a", ttl, now=T0) is True
    assert store.acquire_lease("digest", "b", ttl, now=T0 + timedelta(seconds=59)) is False
    assert store.renew_lease("digest", "a", ttl, now=T0 + timedelta(seconds=30)) is True
    assert store.acquire_lease("digest", "b", ttl, now=T0 + timedelta(seconds=89)) is False
    assert store.acquire_lease("digest", "b", ttl, now=T0 + timedelta(seconds=90)) is True
    assert store.renew_lease("digest", "a", ttl, now=T0 + timedelta(seconds=91)) is False

    lease = store.get_lease("digest")
    assert lease is not None and (lease.holder, lease.expires_at) == (
        "b",
        T0 + timedelta(seconds=150),
    )
    assert store.release_lease("digest", "a") is False
    assert store.release_lease("digest", "b") is True
    assert store.get_lease("digest") is None
    with pytest.raises(InvalidRecordError):
        store.acquire_lease("digest", "a", timedelta(0))


def test_target_messages_given_refs_and_queued_rows_reports_each_target(store: Store) -> None:
    store.set_message_ref("slack:C1", channel="C1", message_id="1.0")
    store.set_message_ref("slack:C4", "note", channel="C4", message_id="2.0")
    store.enqueue(OutboxItem("k-2", "r", "slack:C2", "scorecard", {}))
    store.enqueue(OutboxItem("k-3", "r", "slack:C3", "change_note", {}))

    known = store.target_messages(["slack:C1", "slack:C2", "slack:C3", "slack:C4"])

    assert {t: (m.scorecard_ref is not None, m.scorecard_queued, m.has_standing)
            for t, m in known.items()} == {
        "slack:C1": (True, False, True),
        "slack:C2": (False, True, True),
        "slack:C3": (False, False, False),
        "slack:C4": (False, False, False),
    }
    assert store.target_messages([]) == {}



def test_existing_keys_given_some_enqueued_returns_only_those(store: Store) -> None:
    store.enqueue(item("k-1"))
    store.enqueue(item("k-2", kind="digest"))
    assert store.existing_keys({"k-1", "k-2", "k-3"}) == {"k-1", "k-2"}
    assert store.existing_keys(set()) == set()
