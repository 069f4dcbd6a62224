"""Replica heartbeats and plan leases in the store (both backends)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from okr_sync.sync.store.store import Store

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
TTL = timedelta(seconds=6)


def test_take_plan_lease_given_a_free_plan_then_a_racer_only_the_first_wins(store: Store) -> None:
    first = store.take_plan_lease("sales", "a", TTL, now=NOW)
    assert first is not None and first.epoch == 1 and first.replica == "a"
    assert store.take_plan_lease("sales", "b", TTL, now=NOW + timedelta(seconds=1)) is None
    assert store.plan_leases()["sales"].replica == "a"


def test_take_plan_lease_given_an_expired_lease_passes_it_on_with_the_next_epoch(
    store: Store,
) -> None:
    store.take_plan_lease("sales", "a", TTL, now=NOW)
    later = NOW + TTL
    taken = store.take_plan_lease("sales", "b", TTL, now=later)
    assert taken is not None and taken.epoch == 2 and taken.replica == "b"
    # The former holder can neither renew nor release its successor's lease.
    assert store.renew_plan_leases("a", {"sales": 1}, TTL, now=later) == set()
    assert not store.release_plan_lease("sales", "a", 1, now=later)
    assert store.renew_plan_leases("b", {"sales": 2}, TTL, now=later) == {"sales"}


def test_release_plan_lease_given_our_lease_frees_it_at_once(store: Store) -> None:
    store.take_plan_lease("sales", "a", TTL, now=NOW)
    assert store.release_plan_lease("sales", "a", 1, now=NOW + timedelta(seconds=1))
    taken = store.take_plan_lease("sales", "b", TTL, now=NOW + timedelta(seconds=1))
    assert taken is not None and taken.epoch == 2


def test_live_replicas_given_heartbeats_counts_only_unexpired_ones(store: Store) -> None:
    store.heartbeat_replica("a", TTL, now=NOW)
    store.heartbeat_replica("b", TTL, now=NOW - TTL)
    assert store.live_replicas(now=NOW) == {"a"}
    store.heartbeat_replica("b", TTL, now=NOW)
    assert store.live_replicas(now=NOW) == {"a", "b"}
    store.retire_replica("b")
    assert store.live_replicas(now=NOW) == {"a"}


def test_first_sighting_given_a_key_seen_within_its_ttl_is_false_and_after_expiry_true(
    store: Store,
) -> None:
    key_ttl = timedelta(minutes=10)
    assert store.first_sighting("slack:1:v0=abc", key_ttl, now=NOW) is True
    assert store.first_sighting("slack:1:v0=abc", key_ttl, now=NOW + timedelta(minutes=9)) \
        is False
    # Expired rows are pruned by the next sighting: the key is new again.
    assert store.first_sighting("slack:1:v0=abc", key_ttl, now=NOW + timedelta(minutes=11)) \
        is True
