"""Per-KPI history (issue 13 item 5): each KPI's value and status at every pass that
stores a snapshot, as the KRs' score history; trends and ``explain KPI_ID`` read it."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import sqlalchemy as sa

from okr_sync.sync.store.base import StoreOps
from okr_sync.sync.store.records import KpiHistoryRecord
from okr_sync.sync.store.tables import kpi_history


def _record(r: sa.Row[object]) -> KpiHistoryRecord:
    return KpiHistoryRecord(r.kpi_id, r.cycle, r.as_of, r.value, r.status, r.snapshot_id)


class KpiHistoryOps(StoreOps):
    def add_kpi_history(self, snapshot_id: int | None, *, cycle: str, as_of: datetime,
                        entries: Iterable[tuple[str, float, str | None]]) -> int:
        """Append each measured KPI's (id, value, status) at ``as_of``; returns the count."""
        when = self._now(as_of)
        rows = [{"kpi_id": kpi_id, "cycle": cycle, "as_of": when, "value": value,
                 "status": status, "snapshot_id": snapshot_id}
                for kpi_id, value, status in entries]
        if rows:
            with self._connection() as conn:
                conn.execute(sa.insert(kpi_history), rows)
        return len(rows)

    def get_kpi_history(self, kpi_id: str, *, cycle: str | None = None,
                        limit: int | None = None) -> list[KpiHistoryRecord]:
        """A KPI's history, oldest first (the newest ``limit`` entries when given)."""
        h = kpi_history
        query = sa.select(h).where(h.c.kpi_id == kpi_id)
        if cycle is not None:
            query = query.where(h.c.cycle == cycle)
        query = query.order_by(h.c.as_of.desc(), h.c.id.desc())
        if limit is not None:
            query = query.limit(limit)
        with self._connection() as conn:
            rows = conn.execute(query).all()
        return [_record(r) for r in reversed(rows)]

    def kpi_history_for_cycle(self, cycle: str) -> dict[str, list[KpiHistoryRecord]]:
        """Every KPI's history in ``cycle``: ``{kpi_id: [oldest .. newest]}``."""
        h = kpi_history
        query = sa.select(h).where(h.c.cycle == cycle).order_by(h.c.as_of, h.c.id)
        result: dict[str, list[KpiHistoryRecord]] = {}
        with self._connection() as conn:
            for r in conn.execute(query):
                result.setdefault(r.kpi_id, []).append(_record(r))
        return result
