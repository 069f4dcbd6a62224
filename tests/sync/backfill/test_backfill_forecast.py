"""Backfilled history feeds forecasts exactly as the live history of the same days does:
done and total are stored beside each backfilled value (the done-and-scope model)."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from okr_sync.config.plan import Plan
from okr_sync.scoring.forecast import (
    Measurement,
    NoForecast,
    daily_series,
    forecast_key_result,
)
from okr_sync.scoring.forecast_record import Forecast
from okr_sync.sync.backfill.run import BackfillOptions, backfill
from okr_sync.sync.store.records import HistoryRecord
from okr_sync.sync.store.store import Store
from okr_sync.sync.store.tables import kr_history
from support.backfill_world import simulation

RATIO_KRS = ("O1.KR1", "O1.KR2", "O2.KR2")  # done_ratio by issues, by points, by labels


def _forecasts(plan: Plan, history: dict[str, list[HistoryRecord]]
               ) -> dict[str, Forecast | NoForecast]:
    krs = {kr.id: kr for _, kr in plan.key_results()}
    cycle = plan.cycle
    result: dict[str, Forecast | NoForecast] = {}
    for kr_id in RATIO_KRS:
        measurements = [Measurement(r.as_of, r.value, r.done, r.total)
                        for r in history[kr_id] if r.value is not None]
        last = measurements[-1].at
        series = daily_series(measurements, cycle.zone, last.astimezone(cycle.zone).date())
        result[kr_id] = forecast_key_result(krs[kr_id], cycle, last, series,
                                            plan.scoring.bands, 500)
    return result


def test_backfill_given_ratio_krs_stores_done_total_and_forecasts_equal_live_ones(
    tmp_path: Path,
) -> None:
    with simulation(tmp_path, days=10) as sim:
        store = sim.runtime.store
        assert isinstance(store, Store)
        plan = sim.runtime.plan
        live = store.history_for_cycle("2026-Q4")
        with store.engine.begin() as conn:
            conn.execute(sa.delete(kr_history))
        backfill(plan, store, sim.runtime.jira, BackfillOptions(), now=sim.clock())
        rebuilt = store.history_for_cycle("2026-Q4")

    for kr_id in RATIO_KRS:
        assert all(not r.backfilled and r.done is not None for r in live[kr_id]), kr_id
        assert all(r.backfilled for r in rebuilt[kr_id]), kr_id
        assert [(r.value, r.done, r.total) for r in rebuilt[kr_id]] == [
            (r.value, r.done, r.total) for r in live[kr_id]], kr_id
    from_live = _forecasts(plan, live)
    from_backfill = _forecasts(plan, rebuilt)
    for kr_id in RATIO_KRS:
        forecast = from_live[kr_id]
        assert isinstance(forecast, Forecast) and forecast.model == "done_and_scope", kr_id
    assert from_backfill == from_live
