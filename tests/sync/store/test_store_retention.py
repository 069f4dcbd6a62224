"""Store: the retention policy (``prune``): what goes, what must stay, dry runs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from okr_sync.sync.store.store import HistoryEntry, OutboxItem, Store

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
CUTOFF = NOW - timedelta(days=30)


def _pass(store: Store, at: datetime, *, published: bool, cycle: str = "2026-Q4",
          outcome: str = "ok") -> tuple[int, int]:
    """A finished run with its snapshot and one history row; returns (run id, snapshot id)."""
    run_id = store.start_run("run", started_at=at)
    snapshot_id = store.save_snapshot(cycle=cycle, as_of=at, document={"at": at.isoformat()},
                                      run_id=run_id, published=published, created_at=at)
    store.add_history(snapshot_id, cycle=cycle, as_of=at,
                      entries=[HistoryEntry("KR1", 1.0, 0.5, "amber", "on_track")])
    store.finish_run(run_id, outcome, ended_at=at)  # type: ignore[arg-type]
    return run_id, snapshot_id


def _row(store: Store, key: str, at: datetime, snapshot_id: int, status: str) -> int:
    row_id = store.enqueue(OutboxItem(key, "r", "slack:C1", "change_note", {"text": key},
                                      snapshot_id=snapshot_id), at=at)
    assert row_id is not None
    if status != "pending":
        store.claim_deliverable(claimer=f"c-{key}", now=at)
        if status == "sent":
            store.mark_sent(row_id, at=at)
        elif status == "failed":
            store.mark_failed(row_id, error="channel_not_found")
        else:
            store.mark_retry(row_id, next_attempt_at=at, error="x")
    return row_id


def _seeded(store: Store) -> dict[str, int]:
    ids: dict[str, int] = {}
    # The first published scorecard stays (scheduled messages count slots after it).
    ids["run45"], ids["snap45"] = _pass(store, NOW - timedelta(days=45), published=True)
    day40 = NOW - timedelta(days=40)
    # Day 40: three passes, two published; the last published of the day stays.
    ids["run40a"], ids["snap40a"] = _pass(store, day40, published=True)
    ids["run40b"], ids["snap40b"] = _pass(store, day40 + timedelta(hours=1), published=False)
    ids["run40c"], ids["snap40c"] = _pass(store, day40 + timedelta(hours=2), published=True)
    # Day 35: an unpublished snapshot that a failed outbox row still names.
    ids["run35"], ids["snap35"] = _pass(store, NOW - timedelta(days=35), published=False)
    ids["failed35"] = _row(store, "failed35", NOW - timedelta(days=35), ids["snap35"], "failed")
    ids["sent40"] = _row(store, "sent40", day40, ids["snap40a"], "sent")
    # A run that failed long ago and never stored a snapshot: the latest failed run stays.
    old_failed = store.start_run("run", started_at=NOW - timedelta(days=50))
    store.finish_run(old_failed, "failed", ended_at=NOW - timedelta(days=50))
    ids["failed_run"] = old_failed
    # Recent passes: all stay.
    ids["run5"], ids["snap5"] = _pass(store, NOW - timedelta(days=5), published=True)
    ids["sent5"] = _row(store, "sent5", NOW - timedelta(days=5), ids["snap5"], "sent")
    ids["run1"], ids["snap1"] = _pass(store, NOW - timedelta(days=1), published=False)
    return ids


def test_prune_given_passes_over_two_months_keeps_what_commands_need(store: Store) -> None:
    ids = _seeded(store)
    before = store.row_counts()

    counts = store.prune(before=CUTOFF)

    snapshot_ids = {s for s in ids.values() if store_has_snapshot(store, s)}
    assert snapshot_ids >= {ids["snap45"], ids["snap40c"], ids["snap35"], ids["snap5"],
                            ids["snap1"]}
    assert not store_has_snapshot(store, ids["snap40a"])  # an earlier one of its day
    assert not store_has_snapshot(store, ids["snap40b"])  # unpublished, old, unreferenced
    assert {r.idempotency_key for r in store.list_outbox(limit=None)} == {"failed35", "sent5"}
    runs = {r for r in (ids["run40a"], ids["run40b"], ids["run40c"], ids["run35"],
                        ids["failed_run"], ids["run5"], ids["run1"]) if store_has_run(store, r)}
    assert runs == {ids["run40c"], ids["run35"], ids["failed_run"], ids["run5"], ids["run1"]}
    assert (counts.runs, counts.snapshots, counts.outbox) == (2, 2, 1)
    after = store.row_counts()
    assert after["kr_history"] == before["kr_history"] == 7  # score history all stays
    assert store.first_published_at() == NOW - timedelta(days=45)
    links = [h.snapshot_id for h in store.get_history("KR1")]
    assert links[:3] == [ids["snap45"], None, None]  # pruned snapshots' rows stay, unlinked
    assert store.last_published_snapshot() is not None
    assert store.last_published_snapshot().id == ids["snap5"]  # type: ignore[union-attr]
    assert store.latest_snapshot().id == ids["snap1"]  # type: ignore[union-attr]
    day = store.published_snapshot_at(NOW - timedelta(days=39))
    assert day is not None and day.id == ids["snap40c"]


def store_has_snapshot(store: Store, snapshot_id: int) -> bool:
    from okr_sync.sync.store.store import NotFoundError

    try:
        store.get_snapshot(snapshot_id)
    except NotFoundError:
        return False
    return True


def store_has_run(store: Store, run_id: int) -> bool:
    from okr_sync.sync.store.store import NotFoundError

    try:
        store.get_run(run_id)
    except NotFoundError:
        return False
    return True


def test_prune_given_dry_run_counts_the_same_rows_and_deletes_nothing(store: Store) -> None:
    _seeded(store)
    before = store.row_counts()

    dry = store.prune(before=CUTOFF, dry_run=True)

    assert store.row_counts() == before
    assert dry.total > 0
    assert store.prune(before=CUTOFF) == dry


def test_prune_given_only_the_latest_snapshots_keeps_them_whatever_their_age(
    store: Store,
) -> None:
    _, published = _pass(store, NOW - timedelta(days=90), published=True)
    _, latest = _pass(store, NOW - timedelta(days=80), published=False)

    store.prune(before=NOW)

    assert store_has_snapshot(store, published) and store_has_snapshot(store, latest)
    assert store.prune(before=NOW).total == 0  # nothing more to forget


def test_prune_given_monthly_digest_keeps_each_targets_newest_scheduled_row(
    store: Store,
) -> None:
    _, snapshot = _pass(store, NOW - timedelta(days=70), published=True)

    def digest(key: str, target: str, days: int) -> None:
        at = NOW - timedelta(days=days)
        row_id = store.enqueue(OutboxItem(key, "r", target, "digest", {"text": key},
                                          snapshot_id=snapshot), at=at)
        assert row_id is not None
        store.claim_deliverable(claimer=f"c-{key}", now=at)
        store.mark_sent(row_id, at=at)

    digest("digest-oct", "slack:C1", 65)
    digest("digest-nov", "slack:C1", 35)  # the latest monthly slot: sent 35 days ago
    digest("digest-nov-teams", "teams_workflow:T", 35)

    store.prune(before=CUTOFF)

    kept = {r.idempotency_key for r in store.list_outbox(limit=None)}
    assert kept == {"digest-nov", "digest-nov-teams"}
    assert store.existing_keys({"digest-nov"}) == {"digest-nov"}  # the slot stays sent
