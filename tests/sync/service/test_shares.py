"""The fair-share rules of ``serve --plans`` (pure: no database, no clock)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from okr_sync.sync.service.shares import fair_share, heartbeat_period, lease_ttl, plan_moves
from okr_sync.sync.store.plan_leases import PlanLease

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
PLANS = [f"p{n}" for n in range(8)]


def _lease(plan: str, replica: str, *, expires_in: float = 10.0) -> PlanLease:
    return PlanLease(plan, replica, 1, NOW - timedelta(seconds=1),
                     NOW + timedelta(seconds=expires_in))


@pytest.mark.parametrize(("plans", "replicas", "share"),
                         [(8, 3, 3), (8, 2, 4), (8, 1, 8), (3, 8, 1), (0, 3, 0), (8, 0, 8)])
def test_fair_share_given_plans_and_replicas_is_the_ceiling_of_the_ratio(
    plans: int, replicas: int, share: int,
) -> None:
    assert fair_share(plans, replicas) == share


def test_plan_moves_given_three_replicas_starting_together_share_out_all_eight_plans() -> None:
    leases: dict[str, PlanLease] = {}
    live = ["a", "b", "c"]
    for _ in range(3):  # rounds: each replica takes what it wants of what is still free
        for replica in live:
            for plan in plan_moves(replica, PLANS, leases, live, NOW).take:
                leases.setdefault(plan, _lease(plan, replica))
    held = {r: sorted(p for p, lease in leases.items() if lease.replica == r) for r in live}
    assert sorted(p for ps in held.values() for p in ps) == PLANS
    assert all(len(ps) <= 3 for ps in held.values()), held


def test_plan_moves_given_a_dead_replicas_expired_leases_takes_them_up_to_the_share() -> None:
    leases = {p: _lease(p, "a") for p in PLANS[:3]}
    leases |= {p: _lease(p, "b") for p in PLANS[3:6]}
    leases |= {p: _lease(p, "dead", expires_in=-1) for p in PLANS[6:]}
    moves_a = plan_moves("a", PLANS, leases, ["a", "b"], NOW)
    assert moves_a.release == ()
    assert set(moves_a.take) <= {"p6", "p7"} and len(moves_a.take) == 1  # share 4, holds 3


def test_plan_moves_given_a_new_replica_over_the_share_releases_the_excess() -> None:
    leases = {p: _lease(p, "a") for p in PLANS[:4]} | {p: _lease(p, "b") for p in PLANS[4:]}
    moves = plan_moves("a", PLANS, leases, ["a", "b", "c"], NOW)
    assert len(moves.release) == 1 and moves.take == ()
    # Plans already being given back are not counted again.
    again = plan_moves("a", PLANS, leases, ["a", "b", "c"], NOW, releasing=moves.release)
    assert again == type(again)()
    # The newcomer takes nothing until something is free.
    assert plan_moves("c", PLANS, leases, ["a", "b", "c"], NOW).take == ()


def test_plan_moves_given_a_plan_removed_from_the_folder_releases_it() -> None:
    leases = {"p0": _lease("p0", "a"), "gone": _lease("gone", "a")}
    moves = plan_moves("a", ["p0"], leases, ["a"], NOW)
    assert moves.release == ("gone",)
    assert moves.take == ()


def test_plan_moves_given_its_own_heartbeat_missing_still_counts_itself() -> None:
    moves = plan_moves("a", PLANS[:2], {}, [], NOW)
    assert sorted(moves.take) == ["p0", "p1"]


def test_lease_ttl_given_short_and_long_periods_lets_a_takeover_fit_in_two_periods() -> None:
    for period_s in (1, 2, 4, 10, 30, 60, 300, 3600):
        period = timedelta(seconds=period_s)
        heartbeat = heartbeat_period(period)
        ttl = lease_ttl(period, heartbeat)
        assert ttl >= heartbeat * 3
        # Leaves a quarter period (or more) for the round that takes the plan over.
        assert ttl + heartbeat <= period * 1.25 or ttl + heartbeat <= period / 2
