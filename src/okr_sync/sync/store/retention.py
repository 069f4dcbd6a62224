"""Retention: what the store may forget once it is older than the retention window.

Every pass with news stores a snapshot (the whole scorecard with the explanations
of every KR: tens of KB for a few hundred issues), a run row and its outbox rows;
nothing else ever removed them. :meth:`RetentionOps.prune` deletes, of what is
older than the cut-off:

* **outbox rows** that are done: ``sent`` or ``superseded``. Pending, sending and
  failed rows stay whatever their age (``status`` reports them, and a failed
  scorecard row tells message planning the target still lacks its scorecard), and so
  does the newest digest and reminder row of each target: its idempotency key is how
  a scheduled slot is known to be sent (a monthly digest's row can be a month old, and
  without it the slot would be sent again).
* **snapshots**, except: the latest and the last published one (what the next pass
  diffs against and keeps stale values from), the first published one (scheduled
  messages count only slots after it), every one an outbox row still points at, and
  of older published ones the last of each day per cycle, so "what were people told
  on day X" (the digest's comparison with a week earlier, a past cycle's final
  scorecard) keeps an answer at a day's resolution.
* **runs** that have finished, except the latest of each outcome (``status``,
  ``/readyz``) and those a kept snapshot names.

Kept whatever their age: the per-KR score history and per-KPI history (``explain``, the report's
burn-up charts, ``too_easy`` across cycles), check-ins, the Jira mirror, cursors,
standing-message refs and lock epochs. A pruned snapshot's history rows stay, with
their snapshot link cleared.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa

from okr_sync.sync.store.base import StoreOps, chunks
from okr_sync.sync.store.tables import (
    kpi_history,
    kr_history,
    kr_item_ids,
    kr_items,
    outbox,
    runs,
    snapshots,
)

_DONE = ("sent", "superseded")
#: Kinds sent once per cron slot: their newest row per target marks the slot as sent.
_SCHEDULED = ("digest", "reminder")


@dataclass(frozen=True)
class PruneCounts:
    """Rows deleted (or, for a dry run, that would be)."""

    runs: int = 0
    snapshots: int = 0
    outbox: int = 0

    @property
    def total(self) -> int:
        return self.runs + self.snapshots + self.outbox


class _RolledBack(Exception):
    """Ends a dry run's transaction, carrying what it would have deleted."""

    def __init__(self, counts: PruneCounts) -> None:
        super().__init__("dry run")
        self.counts = counts


def _kept_snapshots(conn: sa.Connection, cutoff: datetime) -> tuple[set[int], set[int]]:
    """(kept, doomed) ids among snapshots created before ``cutoff``."""
    old = conn.execute(
        sa.select(snapshots.c.id, snapshots.c.cycle, snapshots.c.created_at,
                  snapshots.c.published)
        .where(snapshots.c.created_at < cutoff)
        .order_by(snapshots.c.id)
    ).all()
    if not old:
        return set(), set()
    keep: set[int] = set()
    newest = conn.execute(sa.select(sa.func.max(snapshots.c.id))).scalar_one_or_none()
    published = conn.execute(
        sa.select(sa.func.max(snapshots.c.id), sa.func.min(snapshots.c.id))
        .where(snapshots.c.published.is_(True))
    ).one()
    keep |= {i for i in (newest, *published) if i is not None}
    keep |= set(conn.execute(
        sa.select(outbox.c.snapshot_id).where(outbox.c.snapshot_id.is_not(None)).distinct()
    ).scalars())
    last_of_day: dict[tuple[str, date], int] = {}
    for row in old:
        if row.published:
            # Ordered by id, so the last one written wins its (cycle, day).
            last_of_day[(row.cycle, row.created_at.date())] = row.id
    keep |= set(last_of_day.values())
    ids = {row.id for row in old}
    return ids & keep, ids - keep


def _delete_ids(conn: sa.Connection, table: sa.Table, ids: Iterable[int]) -> int:
    deleted = 0
    for part in chunks(sorted(ids)):
        deleted += conn.execute(sa.delete(table).where(table.c.id.in_(part))).rowcount
    return deleted


def _prune(conn: sa.Connection, cutoff: datetime) -> PruneCounts:
    newest_scheduled = [
        int(i) for i in conn.execute(
            sa.select(sa.func.max(outbox.c.id)).where(outbox.c.kind.in_(_SCHEDULED))
            .group_by(outbox.c.kind, outbox.c.target)
        ).scalars()
    ]
    done_outbox = conn.execute(
        sa.delete(outbox).where(outbox.c.status.in_(_DONE), outbox.c.created_at < cutoff,
                                outbox.c.id.not_in(newest_scheduled))
    ).rowcount
    _, doomed = _kept_snapshots(conn, cutoff)
    for part in chunks(sorted(doomed)):
        for history in (kr_history, kpi_history):
            conn.execute(
                sa.update(history).where(history.c.snapshot_id.in_(part))
                .values(snapshot_id=None)
            )
    gone_snapshots = _delete_ids(conn, snapshots, doomed)
    if gone_snapshots:
        _prune_items(conn)
    latest_per_outcome = (
        sa.select(sa.func.max(runs.c.id)).group_by(runs.c.outcome).scalar_subquery()
    )
    named = sa.select(snapshots.c.run_id).where(snapshots.c.run_id.is_not(None))
    old_runs = conn.execute(
        sa.select(runs.c.id).where(
            runs.c.outcome.is_not(None),
            runs.c.started_at < cutoff,
            runs.c.id.not_in(latest_per_outcome),
            runs.c.id.not_in(named),
        )
    ).scalars().all()
    gone_runs = _delete_ids(conn, runs, old_runs)
    return PruneCounts(runs=gone_runs, snapshots=gone_snapshots, outbox=done_outbox)


def _prune_items(conn: sa.Connection) -> None:
    """Delete the ``kr_items`` rows no remaining snapshot names (a kept snapshot's
    unchanged KRs name rows an older, pruned one wrote: those stay)."""
    refs = snapshots.c.document["explain_refs"]
    named: set[tuple[str, str]] = set()
    for value in conn.execute(sa.select(refs).where(refs.is_not(None))).scalars():
        if isinstance(value, dict):
            named.update(value.items())
    stored = conn.execute(sa.select(kr_items.c.owner, kr_items.c.hash)).all()
    unnamed = [(row.owner, row.hash) for row in stored if (row.owner, row.hash) not in named]
    for part in chunks(unnamed, 400):
        conn.execute(sa.delete(kr_item_ids).where(
            sa.tuple_(kr_item_ids.c.owner, kr_item_ids.c.hash).in_(part)))
        conn.execute(sa.delete(kr_items).where(
            sa.tuple_(kr_items.c.owner, kr_items.c.hash).in_(part)))


class RetentionOps(StoreOps):
    """:meth:`prune` (see the module docstring)."""

    def prune(self, *, before: datetime, dry_run: bool = False) -> PruneCounts:
        """Delete what the retention policy lets go of, created before ``before``, in one
        transaction; ``dry_run`` counts the same rows and rolls back."""
        cutoff = self._now(before)
        try:
            with self._connection() as conn:
                counts = _prune(conn, cutoff)
                if dry_run:
                    raise _RolledBack(counts)
        except _RolledBack as rolled_back:
            return rolled_back.counts
        return counts

    def row_counts(self) -> dict[str, Any]:
        """Rows per table that retention touches (for ``db prune`` and its tests)."""
        with self._connection() as conn:
            return {
                table.name: int(conn.execute(sa.select(sa.func.count()).select_from(table))
                                .scalar_one())
                for table in (runs, snapshots, kr_history, outbox)
            }
