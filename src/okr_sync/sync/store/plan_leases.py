"""Store operations of ``serve --plans``: replica heartbeats and plan leases.

Several replicas share the plans of a folder out among themselves through two tables
in the configured database (not in any plan's store): ``replicas`` (one row per live
replica, renewed every poll) and ``plan_leases`` (which replica runs which plan, until
when, and the lease's epoch). Who *should* take what is decided by
:mod:`okr_sync.sync.service.shares`; here every change of hands is one conditional
statement, so two replicas racing for the same free plan cannot both win.

A lease is a clock-based claim, and clocks can stall: it is never what keeps a plan's
writer single. That stays the plan's own run lock and fencing epochs
(:mod:`okr_sync.sync.store.fencing`), which guard every pass commit and outbox claim
whatever the leases say.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from okr_sync.sync.store.base import StoreOps, insert_ignore, upsert
from okr_sync.sync.store.records import InvalidRecordError
from okr_sync.sync.store.tables import plan_leases, replicas, seen_requests

#: A replica's row is deleted once it has been expired this long (it is not coming back).
FORGET_REPLICAS_AFTER = timedelta(hours=1)


@dataclass(frozen=True)
class PlanLease:
    plan: str
    replica: str
    epoch: int
    acquired_at: datetime
    expires_at: datetime

    def live(self, now: datetime) -> bool:
        return self.expires_at > now


class PlanLeaseOps(StoreOps):
    """Replica heartbeats and plan leases (see the module docstring)."""

    def heartbeat_replica(self, replica: str, ttl: timedelta, *,
                          now: datetime | None = None) -> None:
        """Say that ``replica`` is alive until ``now + ttl``; forget long-dead replicas."""
        if ttl <= timedelta(0):
            raise InvalidRecordError("a heartbeat needs a positive ttl")
        when = self._now(now)
        values = {"replica": replica[:255], "started_at": when, "heartbeat_at": when,
                  "expires_at": when + ttl}
        with self._connection() as conn:
            conn.execute(upsert(conn, replicas, ["replica"], ["heartbeat_at", "expires_at"]),
                         values)
            conn.execute(sa.delete(replicas).where(
                replicas.c.expires_at < when - FORGET_REPLICAS_AFTER))

    def live_replicas(self, *, now: datetime | None = None) -> set[str]:
        when = self._now(now)
        with self._connection() as conn:
            rows = conn.execute(sa.select(replicas.c.replica).where(replicas.c.expires_at > when))
            return {str(r) for r in rows.scalars()}

    def retire_replica(self, replica: str) -> None:
        """A replica that stops gracefully leaves at once (its share goes to the others)."""
        with self._connection() as conn:
            conn.execute(sa.delete(replicas).where(replicas.c.replica == replica))

    def plan_leases(self) -> dict[str, PlanLease]:
        with self._connection() as conn:
            rows = conn.execute(sa.select(plan_leases)).all()
        return {str(r.plan): PlanLease(str(r.plan), str(r.replica), int(r.epoch),
                                       r.acquired_at, r.expires_at) for r in rows}

    def take_plan_lease(self, plan: str, replica: str, ttl: timedelta, *,
                        now: datetime | None = None) -> PlanLease | None:
        """Take ``plan`` if no live lease holds it; the lease, or None when another has it.

        A new row starts at epoch 1; an expired (or released) one passes to us with the
        next epoch, in one ``UPDATE ... WHERE expires_at <= now``: of two replicas that
        race, the second finds the row already unexpired and changes nothing.
        """
        if ttl <= timedelta(0):
            raise InvalidRecordError("a lease needs a positive ttl")
        when = self._now(now)
        with self._connection() as conn:
            # RETURNING, not rowcount: PostgreSQL's driver reports no count for
            # ``ON CONFLICT DO NOTHING``.
            inserted = conn.execute(
                insert_ignore(conn, plan_leases, ["plan"]).returning(plan_leases.c.plan),
                {"plan": plan, "replica": replica[:255], "epoch": 1, "acquired_at": when,
                 "expires_at": when + ttl},
            ).first() is not None
            if not inserted:
                taken = conn.execute(
                    sa.update(plan_leases)
                    .where(plan_leases.c.plan == plan, plan_leases.c.expires_at <= when)
                    .values(replica=replica[:255], epoch=plan_leases.c.epoch + 1,
                            acquired_at=when, expires_at=when + ttl)
                ).rowcount
                if not taken:
                    return None
            row = conn.execute(sa.select(plan_leases).where(plan_leases.c.plan == plan)).one()
        if row.replica != replica[:255]:
            return None
        return PlanLease(plan, str(row.replica), int(row.epoch), row.acquired_at, row.expires_at)

    def renew_plan_leases(self, replica: str, held: dict[str, int], ttl: timedelta, *,
                          now: datetime | None = None) -> set[str]:
        """Extend the leases ``held`` (plan -> epoch) that are still ours; returns those.

        A lease that expired but that nobody took is still ours and renewed; one taken
        by another replica (a new epoch) is not, and the caller stops that plan's work.
        """
        when = self._now(now)
        kept: set[str] = set()
        with self._connection() as conn:
            for plan, epoch in sorted(held.items()):
                if conn.execute(
                    sa.update(plan_leases)
                    .where(plan_leases.c.plan == plan, plan_leases.c.replica == replica[:255],
                           plan_leases.c.epoch == epoch)
                    .values(expires_at=when + ttl)
                ).rowcount:
                    kept.add(plan)
        return kept

    def release_plan_lease(self, plan: str, replica: str, epoch: int, *,
                           now: datetime | None = None) -> bool:
        """Hand ``plan`` back (its work has stopped): the row expires now, epoch kept."""
        when = self._now(now)
        with self._connection() as conn:
            return bool(conn.execute(
                sa.update(plan_leases)
                .where(plan_leases.c.plan == plan, plan_leases.c.replica == replica[:255],
                       plan_leases.c.epoch == epoch)
                .values(expires_at=when)
            ).rowcount)

    def first_sighting(self, key: str, ttl: timedelta, *, now: datetime | None = None) -> bool:
        """Record ``key`` until ``now + ttl``; True when no replica recorded it within its
        ttl (the request is new), False for a replay. Expired keys are pruned first, in
        the same transaction; of two replicas racing with one key, one insert wins."""
        if ttl <= timedelta(0):
            raise InvalidRecordError("a sighting needs a positive ttl")
        when = self._now(now)
        with self._connection() as conn:
            conn.execute(sa.delete(seen_requests).where(seen_requests.c.expires_at <= when))
            return conn.execute(
                insert_ignore(conn, seen_requests, ["key"]).returning(seen_requests.c.key),
                {"key": key[:255], "expires_at": when + ttl},
            ).first() is not None

    def forget_sighting(self, key: str) -> None:
        """Forget ``key`` (its request was not carried out): a retry of it is new again."""
        with self._connection() as conn:
            conn.execute(sa.delete(seen_requests).where(seen_requests.c.key == key[:255]))
