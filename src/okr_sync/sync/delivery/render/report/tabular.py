"""The report's data for spreadsheets (``okr-sync report --format json|csv``).

The same numbers as the HTML report: one row (CSV) or entry (JSON) per perspective,
KPI, objective and key result, with owners, units and the KRs' score history. A KR row
carries its forecast (``scoring.confidence: forecast``) and a KPI row its trend, empty
(CSV) or null (JSON) when there is none: never a made-up number.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from okr_sync.scoring.forecast_record import Forecast
from okr_sync.scoring.kpi_trend import KpiTrend, TrendPoint
from okr_sync.scoring.scorecard import TargetRange, rounded
from okr_sync.sync.delivery.render.report.data import ReportData

CSV_COLUMNS = ("kind", "id", "title", "perspective", "parent", "value", "unit", "baseline",
               "target", "score", "band", "status", "owner", "measured_at", "stale",
               "history_points", "forecast_expected_score", "forecast_p_top_band",
               "forecast_p10", "forecast_p90", "trend_previous_value", "trend_previous_delta",
               "trend_previous_direction", "trend_week_ago_value", "trend_week_ago_delta",
               "trend_week_ago_direction")


def report_rows(data: ReportData) -> list[dict[str, Any]]:
    card = data.scorecard
    rows: list[dict[str, Any]] = []
    for p in card.perspectives:
        rows.append({"kind": "perspective", "id": p.id, "title": p.title,
                     "score": rounded(p.score), "band": p.band})
    for k in card.kpis:
        kpi = data.kpis.get(k.id)
        rows.append({"kind": "kpi", "id": k.id, "title": k.title, "perspective": k.perspective,
                     "value": rounded(k.value), "unit": kpi.unit if kpi else None,
                     "status": k.status, **_trend_cells(k.trend)})
    for o in card.objectives:
        rows.append({"kind": "objective", "id": o.id, "title": o.title,
                     "perspective": o.perspective, "parent": o.parent,
                     "score": rounded(o.score), "band": o.band, "status": o.confidence,
                     "owner": data.objective_owners.get(o.id)})
        for kr in o.key_results:
            info = data.krs.get(kr.id)
            measured = getattr(kr, "measured_at", None) or data.scored_at
            rows.append({
                "kind": "key_result", "id": kr.id, "title": kr.title, "perspective": o.perspective,
                "parent": o.id, "value": rounded(kr.value), "unit": info.unit if info else None,
                "baseline": rounded(kr.baseline), "target": _target(kr.target),
                "score": rounded(kr.score), "band": kr.band, "status": kr.confidence,
                "owner": info.owner if info else None,
                "measured_at": measured.isoformat() if measured else None,
                "stale": bool(getattr(kr, "stale", False)),
                "history_points": len(data.history.get(kr.id, ())),
                **_forecast_cells(kr.forecast),
            })
    return [{column: row.get(column) for column in CSV_COLUMNS} for row in rows]


def _forecast_cells(forecast: Forecast | None) -> dict[str, Any]:
    if forecast is None:
        return {}
    return {"forecast_expected_score": rounded(forecast.expected_score),
            "forecast_p_top_band": rounded(forecast.p_top_band),
            "forecast_p10": rounded(forecast.p10), "forecast_p90": rounded(forecast.p90)}


def _trend_cells(trend: KpiTrend | None) -> dict[str, Any]:
    cells: dict[str, Any] = {}
    if trend is None:
        return cells
    points: tuple[tuple[str, TrendPoint | None], ...] = (
        ("previous", trend.previous), ("week_ago", trend.week_ago))
    for name, point in points:
        if point is not None:
            cells[f"trend_{name}_value"] = rounded(point.value)
            cells[f"trend_{name}_delta"] = rounded(point.delta)
            cells[f"trend_{name}_direction"] = point.direction
    return cells


def _target(target: float | TargetRange) -> float | int | str | None:
    """A range KR's target as ``min..max`` (one cell, as spreadsheets want it)."""
    if isinstance(target, TargetRange):
        return f"{rounded(target.min)}..{rounded(target.max)}"
    return rounded(target)


def report_json(data: ReportData) -> str:
    """The rows, plus the cycle and each KR's history, as one JSON document."""
    history = {
        kr_id: [{"as_of": p.as_of.isoformat(), "value": rounded(p.value),
                 "score": rounded(p.score)} for p in points]
        for kr_id, points in data.history.items()
    }
    doc = {"cycle": data.scorecard.cycle.to_json(),
           "scored_at": data.scored_at.isoformat() if data.scored_at else None,
           "rows": report_rows(data), "history": history}
    return json.dumps(doc, ensure_ascii=False, indent=2) + "\n"


def _cell(value: object) -> str:
    if value is None:
        return ""
    text = str(value).lower() if isinstance(value, bool) else str(value)
    # A cell starting like a formula would run in a spreadsheet (CSV injection).
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") and not _numeric(
        value) else text


def _numeric(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def report_csv(data: ReportData) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in report_rows(data):
        writer.writerow([_cell(row[column]) for column in CSV_COLUMNS])
    return out.getvalue()
