"""Which plans a ``serve --plans`` replica should take or give back (pure rules).

Each live replica runs at most its *fair share* of the plans, ``ceil(plans / live
replicas)``. A replica under its share takes free plans (no lease, or an expired one:
a dead replica's plans are free once its leases expire); one over its share - a
replica has joined, so the share went down - gives back the excess, which its plan
workers do only once their current pass has finished. Plans that left the folder
are given back too.

Replicas that start together would all reach for the same free plans; each orders
them by a hash of (replica, plan) instead (rendezvous hashing), so they mostly reach
for different ones, and the database settles what they still race for.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from okr_sync.sync.store.plan_leases import PlanLease

#: A lease outlives at least this many missed heartbeats, so one slow poll keeps it.
HEARTBEATS_PER_LEASE = 3
MIN_HEARTBEAT = timedelta(milliseconds=200)
MAX_HEARTBEAT = timedelta(seconds=5)
#: A lease never lasts longer than this, however long the schedule's interval.
MAX_LEASE = timedelta(seconds=30)


@dataclass(frozen=True)
class Moves:
    take: tuple[str, ...] = ()
    release: tuple[str, ...] = ()


def fair_share(plans: int, live_replicas: int) -> int:
    """The most plans one replica should run: ``ceil(plans / live replicas)``."""
    if plans <= 0:
        return 0
    return math.ceil(plans / max(1, live_replicas))


def heartbeat_period(period: timedelta) -> timedelta:
    """How often a replica renews its heartbeat and leases: a quarter of the schedule's
    period, between 0.2 and 5 seconds."""
    return max(MIN_HEARTBEAT, min(MAX_HEARTBEAT, period / 4))


def lease_ttl(period: timedelta, heartbeat: timedelta) -> timedelta:
    """How long a lease lasts unless renewed: one schedule period (at most 30 s) but no
    less than three heartbeats. A dead replica's plans are then free after at most
    ``ttl`` and taken at a survivor's next heartbeat: within 1.25 periods for periods of
    1 s to 30 s, within 35 s for longer ones - two periods either way."""
    return max(heartbeat * HEARTBEATS_PER_LEASE, min(period, MAX_LEASE))


def preference(replica: str, plan: str) -> bytes:
    """Rendezvous order: every replica ranks the plans differently, but stably."""
    return hashlib.sha256(f"{replica}\0{plan}".encode()).digest()


def plan_moves(
    replica: str,
    plans: Collection[str],
    leases: Mapping[str, PlanLease],
    live: Collection[str],
    now: datetime,
    *,
    releasing: Collection[str] = (),
) -> Moves:
    """What ``replica`` should take and give back now.

    ``plans``: the plans in the folder that loaded; ``leases``: every lease row;
    ``live``: the live replicas (this one counted even when its own heartbeat failed);
    ``releasing``: plans this replica is already giving back (not counted as held).
    """
    replicas = set(live) | {replica}
    share = fair_share(len(plans), len(replicas))
    held = sorted(
        (plan for plan, lease in leases.items()
         if lease.replica == replica and lease.live(now) and plan not in releasing),
        key=lambda plan: preference(replica, plan),
    )
    gone = [plan for plan in held if plan not in plans]
    kept = [plan for plan in held if plan in plans]
    release = list(gone)
    if len(kept) > share:
        # Keep the ones ranked first; give back the rest.
        release += kept[share:]
        return Moves(release=tuple(release))
    free = sorted(
        (plan for plan in plans
         if (lease := leases.get(plan)) is None or not lease.live(now)),
        key=lambda plan: preference(replica, plan),
    )
    wanted = max(0, share - len(kept))
    return Moves(take=tuple(free[:wanted]), release=tuple(release))
