"""Store operations on the per-KR score history: live rows and backfilled ones.

A *live* row is what a pass measured (with its snapshot). A *backfilled* row is what
``okr-sync backfill`` reconstructed from Jira's changelog for the end of one day
(``backfilled`` true, no snapshot, never notified). They never overwrite each other:

* Re-running backfill replaces the backfilled rows it covers (same KRs, cycle, days)
  and never touches a live row.
* Readers (:meth:`HistoryOps.get_history`, :meth:`HistoryOps.history_for_cycle`) see
  one series: live rows always, and a backfilled row only for a day that has no live
  row of that KR (live wins: it is what was measured and shown then). A backfilled row
  stands for the day ending at its ``as_of`` (the last second of the day in the plan's
  zone): a live row on the same local date in the cycle's zone is "that day" (a DST
  day has 23 or 25 hours). Without a zone, the 24 hours up to it.
* :meth:`HistoryOps.final_scores_by_cycle` (``too_easy``) takes a cycle's latest row:
  its last live score, unless a backfilled row is later than it (backfill ran to the
  cycle's end after the live passes stopped).
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Iterable, Sequence
from datetime import datetime, timedelta, tzinfo
from typing import Any

import sqlalchemy as sa

from okr_sync.sync.store.base import StoreOps, chunks
from okr_sync.sync.store.records import HistoryEntry, HistoryRecord, InvalidRecordError
from okr_sync.sync.store.tables import CONFIDENCES, kr_history

#: The span a backfilled row stands for, ending at its ``as_of``.
BACKFILL_DAY = timedelta(days=1)
#: Live rows up to this long after a backfilled row's ``as_of`` still count as its day.
_SLACK = timedelta(seconds=1)


def _check_confidence(value: str) -> None:
    if value not in CONFIDENCES:
        raise InvalidRecordError(f"unknown confidence {value!r}")


def _record(r: sa.Row[Any]) -> HistoryRecord:
    return HistoryRecord(r.id, r.kr_id, r.cycle, r.as_of, r.value, r.score, r.band,
                         r.confidence, r.snapshot_id, bool(r.backfilled), r.done, r.total)


def _same_day(backfilled_as_of: datetime, live_as_of: datetime, zone: tzinfo | None) -> bool:
    """Whether a live row falls in the day a backfilled row stands for."""
    if backfilled_as_of < live_as_of <= backfilled_as_of + _SLACK:
        return True
    if zone is None:
        return backfilled_as_of - BACKFILL_DAY < live_as_of <= backfilled_as_of
    return live_as_of.astimezone(zone).date() == backfilled_as_of.astimezone(zone).date()


def merged_history(records: Sequence[HistoryRecord], zone: tzinfo | None = None
                   ) -> list[HistoryRecord]:
    """One KR's rows (any order) as readers see them, oldest first: every live row, and
    each backfilled row whose day (a local date in the cycle's ``zone``) has no live row
    of the same cycle."""
    live: dict[str, list[datetime]] = {}
    for r in records:
        if not r.backfilled:
            live.setdefault(r.cycle, []).append(r.as_of)
    kept = [
        r for r in records
        if not r.backfilled or not any(
            _same_day(r.as_of, at, zone) for at in live.get(r.cycle, ()))
    ]
    return sorted(kept, key=lambda r: (r.as_of, r.id))


class HistoryOps(StoreOps):
    def add_history(
        self,
        snapshot_id: int | None,
        *,
        cycle: str,
        as_of: datetime,
        entries: Iterable[HistoryEntry],
    ) -> int:
        """Append each KR's value, score, band and confidence at ``as_of``; returns the count."""
        when = self._now(as_of)
        entries = list(entries)
        for entry in entries:
            _check_confidence(entry.confidence)
        rows = [
            {
                "kr_id": e.kr_id,
                "cycle": cycle,
                "as_of": when,
                "value": e.value,
                "score": e.score,
                "band": e.band,
                "confidence": e.confidence,
                "snapshot_id": snapshot_id,
                "backfilled": False,
                "done": e.done,
                "total": e.total,
            }
            for e in entries
        ]
        if rows:
            with self._connection() as conn:
                conn.execute(sa.insert(kr_history), rows)
        return len(rows)

    def replace_backfilled(
        self,
        *,
        cycle: str,
        kr_ids: Collection[str],
        since: datetime,
        days: Iterable[tuple[datetime, Iterable[HistoryEntry]]],
    ) -> int:
        """Replace the backfilled rows of ``kr_ids`` in ``cycle`` from ``since`` on with
        ``days`` (each: the day's end and its entries); live rows stay. Returns the count."""
        rows = []
        for as_of, entries in days:
            when = self._now(as_of)
            for e in entries:
                _check_confidence(e.confidence)
                rows.append({"kr_id": e.kr_id, "cycle": cycle, "as_of": when,
                             "value": e.value, "score": e.score, "band": e.band,
                             "confidence": e.confidence, "snapshot_id": None,
                             "backfilled": True, "done": e.done, "total": e.total})
        with self._connection() as conn:
            if kr_ids:
                conn.execute(sa.delete(kr_history).where(
                    kr_history.c.backfilled.is_(True),
                    kr_history.c.cycle == cycle,
                    kr_history.c.kr_id.in_(sorted(kr_ids)),
                    kr_history.c.as_of >= self._now(since),
                ))
            if rows:
                conn.execute(sa.insert(kr_history), rows)
        return len(rows)

    def get_history(
        self, kr_id: str, *, cycle: str | None = None, limit: int | None = None,
        zone: tzinfo | None = None,
    ) -> list[HistoryRecord]:
        """A KR's history, oldest first (the newest ``limit`` entries when given); a
        backfilled row only for a day without a live row (module doc)."""
        query = sa.select(kr_history).where(kr_history.c.kr_id == kr_id)
        if cycle is not None:
            query = query.where(kr_history.c.cycle == cycle)
        with self._connection() as conn:
            records = [_record(r) for r in conn.execute(query)]
        merged = merged_history(records, zone)
        return merged[-limit:] if limit is not None and limit > 0 else (
            [] if limit is not None else merged)

    def history_for_cycle(self, cycle: str, zone: tzinfo | None = None
                          ) -> dict[str, list[HistoryRecord]]:
        """Every KR's history in ``cycle`` in one read: ``{kr_id: [oldest .. newest]}``
        (the report's burn-up charts), merged as :meth:`get_history` does (``zone``: the
        cycle's time zone, whose local dates are the backfilled rows' days)."""
        query = sa.select(kr_history).where(kr_history.c.cycle == cycle)
        by_kr: dict[str, list[HistoryRecord]] = {}
        with self._connection() as conn:
            for r in conn.execute(query):
                by_kr.setdefault(r.kr_id, []).append(_record(r))
        ordered = sorted(by_kr.items(), key=lambda item: min(r.id for r in item[1]))
        return {kr_id: merged_history(records, zone) for kr_id, records in ordered}

    def final_scores_by_cycle(
        self, kr_ids: Collection[str] | None = None, *, except_cycle: str | None = None,
    ) -> dict[str, dict[str, float]]:
        """Each KR's last recorded score per cycle: ``{kr_id: {cycle: score}}`` (for
        ``too_easy``: 1.0 in each of the last two cycles), cycles in the order they
        were last scored (oldest first); ``except_cycle`` is left out (a pass's own). A
        cycle's latest row: its last live score, or the last backfilled one when that is
        later (more than the slack after it), e.g. live passes stopped early and
        backfill ran to the cycle's end.

        Every pass asks this while the current cycle's history grows by a row per KR
        per stored snapshot: each (cycle, KR) pair's latest rows are found by index
        seeks (:func:`_final_rows`) rather than by grouping every row, so the cost is
        the number of pairs, never the length of the history.
        """
        params: dict[str, Any] = {}
        if except_cycle is not None:
            params["except_cycle"] = except_cycle
        if kr_ids is not None:
            params["kr_ids"] = sorted(kr_ids)
        query = _final_rows(kr_ids is not None, except_cycle is not None)
        chosen: dict[tuple[str, str], tuple[datetime, int, float]] = {}
        with self._connection() as conn:
            finals = conn.execute(query, params).all()
            later = [row.backfilled_id for row in finals if row.backfilled_id is not None]
            backfilled = {r.id: r for part in chunks(later) for r in conn.execute(
                sa.select(kr_history.c.id, kr_history.c.as_of, kr_history.c.score)
                .where(kr_history.c.id.in_(part)))}
        for row in finals:
            key = (row.kr_id, row.cycle)
            if row.live_id is not None:
                chosen[key] = (row.live_as_of, row.live_id, row.live_score)
            # The latest backfilled row after the live one; it replaces it only when
            # later by more than the slack (then no earlier one can be).
            late = backfilled.get(row.backfilled_id)
            if late is not None and (key not in chosen or late.as_of > chosen[key][0] + _SLACK):
                chosen[key] = (late.as_of, late.id, late.score)
        result: dict[str, dict[str, float]] = {}
        for (kr_id, cycle), (_, _, score) in sorted(chosen.items(), key=lambda i: i[1][:2]):
            result.setdefault(kr_id, {})[cycle] = score
        return result


@functools.cache
def _final_rows(filtered: bool, excluding: bool) -> sa.Select[Any]:
    """Per (cycle, KR) pair: its latest live row (the highest id: history is appended in
    time order) and the id of its latest backfilled row (by ``as_of``, then id) later
    than that. ``filtered``: only the KRs bound as ``kr_ids``; ``excluding``: not the
    cycle bound as ``except_cycle``. Built once (the statement's compiled form is cached).

    The pairs are found by a skip scan of the ``(cycle, kr_id, backfilled, id)`` index
    (a recursive step per cycle and per KR, each one index seek), and each pair's rows
    by a seek too: no step reads a row per pass that ever stored history.
    """
    h = kr_history
    step = h.alias("step")
    cycles = sa.select(sa.func.min(h.c.cycle).label("cycle")).cte("cycles", recursive=True)
    cycles = cycles.union_all(
        sa.select(sa.select(sa.func.min(step.c.cycle)).where(step.c.cycle > cycles.c.cycle)
                  .scalar_subquery())
        .where(cycles.c.cycle.is_not(None)))
    pairs = sa.select(
        cycles.c.cycle,
        sa.select(sa.func.min(step.c.kr_id)).where(step.c.cycle == cycles.c.cycle)
        .scalar_subquery().label("kr_id"),
    ).where(cycles.c.cycle.is_not(None),
            cycles.c.cycle != sa.bindparam("except_cycle") if excluding else sa.true(),
            ).cte("pairs", recursive=True)
    pairs = pairs.union_all(sa.select(
        pairs.c.cycle,
        sa.select(sa.func.min(step.c.kr_id))
        .where(step.c.cycle == pairs.c.cycle, step.c.kr_id > pairs.c.kr_id).scalar_subquery(),
    ).where(pairs.c.kr_id.is_not(None)))
    latest = sa.select(
        pairs.c.cycle, pairs.c.kr_id,
        sa.select(sa.func.max(step.c.id)).where(
            step.c.cycle == pairs.c.cycle, step.c.kr_id == pairs.c.kr_id,
            step.c.backfilled == sa.false(),
        ).scalar_subquery().label("live_id"),
    ).where(pairs.c.kr_id.is_not(None),
            pairs.c.kr_id.in_(sa.bindparam("kr_ids", expanding=True)) if filtered
            else sa.true()).cte("latest")
    live = h.alias("live")

    def backfilled(*after: sa.ColumnElement[bool]) -> sa.ScalarSelect[Any]:
        return (sa.select(step.c.id)
                .where(step.c.kr_id == latest.c.kr_id, step.c.cycle == latest.c.cycle,
                       step.c.backfilled == sa.true(), *after)
                .order_by(step.c.as_of.desc(), step.c.id.desc()).limit(1).scalar_subquery())

    # Most pairs have no backfilled row: one seek says so, before any is looked for.
    any_backfilled = sa.exists().where(
        step.c.cycle == latest.c.cycle, step.c.kr_id == latest.c.kr_id,
        step.c.backfilled == sa.true())
    return sa.select(
        latest.c.cycle, latest.c.kr_id, live.c.id.label("live_id"),
        live.c.as_of.label("live_as_of"), live.c.score.label("live_score"),
        sa.case((~any_backfilled, sa.null()),
                (live.c.id.is_(None), backfilled()),
                else_=backfilled(step.c.as_of > live.c.as_of)).label("backfilled_id"),
    ).select_from(latest.outerjoin(live, live.c.id == latest.c.live_id))
