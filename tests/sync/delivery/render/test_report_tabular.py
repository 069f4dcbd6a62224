"""The report's CSV/JSON export: each KR's forecast and each KPI's trend as columns,
empty (CSV) or null (JSON) where there is none."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import replace
from datetime import date, timedelta

from okr_sync.scoring.forecast_record import Forecast
from okr_sync.scoring.kpi_trend import KpiTrend, TrendPoint
from okr_sync.sync.delivery.render.report import report_csv, report_json
from okr_sync.sync.delivery.render.report.data import ReportData
from support.reports import report_data
from support.scorecards import AS_OF

FORECAST = Forecast(expected_score=0.8, p_top_band=0.72, p10=0.62, p90=0.95, runs=2000,
                    history_days=12, remaining_days=30, model="done_and_scope",
                    mean_daily=0.4, mean_daily_scope=0.1, threshold=0.7,
                    horizon=date(2026, 12, 31), seed=7)
TREND = KpiTrend(previous=TrendPoint(108.0, AS_OF - timedelta(days=1), 2.0), week_ago=None)


def _data() -> ReportData:
    card = report_data().scorecard
    first_kr = card.key_results()[0].id
    objectives = tuple(
        replace(o, key_results=tuple(replace(kr, forecast=FORECAST) if kr.id == first_kr
                                     else kr for kr in o.key_results))
        for o in card.objectives)
    kpi, *more = card.kpis
    card = replace(card, objectives=objectives, kpis=(replace(kpi, trend=TREND), *more))
    return report_data(scorecard=card)


def test_report_csv_given_forecast_and_kpi_trend_writes_their_columns_empty_when_absent(
) -> None:
    data = _data()
    rows = {(r["kind"], r["id"]): r for r in csv.DictReader(io.StringIO(report_csv(data)))}
    krs = [kr.id for kr in data.scorecard.key_results()]
    with_forecast = rows[("key_result", krs[0])]
    assert (with_forecast["forecast_expected_score"], with_forecast["forecast_p_top_band"],
            with_forecast["forecast_p10"], with_forecast["forecast_p90"]) == (
        "0.8", "0.72", "0.62", "0.95")
    assert rows[("key_result", krs[1])]["forecast_expected_score"] == ""
    kpi_id = data.scorecard.kpis[0].id
    kpi = rows[("kpi", kpi_id)]
    assert (kpi["trend_previous_value"], kpi["trend_previous_delta"],
            kpi["trend_previous_direction"]) == ("108", "2", "up")
    assert kpi["trend_week_ago_delta"] == "" and kpi["trend_week_ago_direction"] == ""


def test_report_json_given_forecast_and_kpi_trend_writes_them_null_when_absent() -> None:
    data = _data()
    rows = json.loads(report_json(data))["rows"]
    krs = [r for r in rows if r["kind"] == "key_result"]
    assert krs[0]["forecast_p_top_band"] == 0.72 and krs[0]["forecast_p90"] == 0.95
    assert all(r["forecast_expected_score"] is None for r in krs[1:])
    kpi = next(r for r in rows if r["kind"] == "kpi")
    assert kpi["trend_previous_direction"] == "up" and kpi["trend_previous_delta"] == 2
    assert kpi["trend_week_ago_value"] is None
