"""What a pass reads from and writes to the score history (KRs and KPIs).

Forecasts (``scoring.confidence: forecast``) read each KR's measurements of the cycle
through the store's history API, so backfilled rows count as live ones; KPI trends read
the KPIs' history. Kept apart from :mod:`okr_sync.sync.pipeline` (its size).
"""

from __future__ import annotations

from datetime import tzinfo
from typing import Protocol

from okr_sync.config.plan import Plan
from okr_sync.scoring.forecast import Measurement, ratio_parts
from okr_sync.scoring.scorecard import Scorecard
from okr_sync.sync.store.records import HistoryEntry, HistoryRecord, KpiHistoryRecord


class HistoryReader(Protocol):
    def history_for_cycle(self, cycle: str, zone: tzinfo | None = None
                          ) -> dict[str, list[HistoryRecord]]: ...
    def kpi_history_for_cycle(self, cycle: str) -> dict[str, list[KpiHistoryRecord]]: ...


def stored_measurements(store: HistoryReader, plan: Plan) -> dict[str, list[Measurement]]:
    """This cycle's stored measurements per KPI (trends), and per KR when the plan
    forecasts (the only reader of KR history in a pass: pace plans read none)."""
    cycle = plan.cycle.name
    result: dict[str, list[Measurement]] = {}
    if plan.kpis:
        for kpi_id, rows in store.kpi_history_for_cycle(cycle).items():
            result[kpi_id] = [Measurement(r.as_of, r.value) for r in rows]
    if plan.scoring.confidence == "forecast":
        for kr_id, records in store.history_for_cycle(cycle, plan.cycle.zone).items():
            result[kr_id] = [Measurement(r.as_of, r.value, r.done, r.total)
                             for r in records if r.value is not None]
    return result


def kr_history_entries(plan: Plan, scorecard: Scorecard) -> list[HistoryEntry]:
    """History is what was measured: a stale or unmeasured KR adds nothing."""
    krs = {kr.id: kr for _, kr in plan.key_results()}
    entries = []
    for kr in scorecard.key_results():
        if kr.score is None or kr.band is None or kr.confidence is None or kr.stale:
            continue
        planned = krs.get(kr.id)
        done, total = (ratio_parts(planned, kr.items, kr.value)
                       if planned is not None and kr.value is not None else (None, None))
        entries.append(HistoryEntry(kr.id, kr.value, kr.score, kr.band, kr.confidence,
                                    done, total))
    return entries


def kpi_history_entries(scorecard: Scorecard) -> list[tuple[str, float, str | None]]:
    """Each measured KPI's (id, value, status); an unmeasured KPI adds nothing."""
    return [(k.id, k.value, k.status) for k in scorecard.kpis if k.value is not None]
